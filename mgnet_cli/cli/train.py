"""``mgnet train``: compose the config, build data, model and optimizer, and fit (or resume)."""

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mgnet_cli import schema
from mgnet_cli.cli.build import build_training, flat_hyperparameters, placed, plain
from mgnet_cli.cli.resume import checkpoint_path, resume_config
from mgnet_cli.cli.torchrun import launched_rank
from mgnet_cli.data.files import naming
from mgnet_cli.errors import DataError
from mgnet_cli.schema.train import Objective
from mgnet_cli.storage import RunLock, write_text_atomic
from mgnet_cli.train.checkpoint import load_checkpoint, load_weights
from mgnet_cli.train.distributed import Distributed, check_batch_sizes, this_process
from mgnet_cli.train.loop import Training, fit
from mgnet_cli.train.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass
class Ready:
    """A run that nothing refused: its config, the checkpoint it resumes (or None), its rank, its training."""

    cfg: DictConfig
    checkpoint: dict[str, Any] | None
    world: Distributed
    training: Training
    objective: Objective  # what run returns to a sweeper


def run(cfg: DictConfig) -> float:
    """Trains one model; returns what sweepers maximise: the best validation accuracy when the run
    holds out a validation split (``dataset.val_size > 0``), else the best test accuracy.

    Under torchrun every rank runs this with the same config and run folder (see ``mgnet_cli.cli``);
    each trains on its part of every batch and only rank 0 writes. A resume writes nothing into its
    run folder (its log held, its lock not taken, its Hydra record not made) until nothing refused it.
    """
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if launched_rank() > 0:  # rank 0 holds the folder's lock for the run
        return train(prepare(cfg, run_dir), run_dir)
    if not cfg.get("resume"):
        with RunLock(run_dir):
            return train(prepare(cfg, run_dir), run_dir)
    with ExitStack() as locked:
        with held_log(run_dir):
            ready = prepare(cfg, run_dir)
            locked.enter_context(RunLock(run_dir))
        record_resume(run_dir, cfg)
        return train(ready, run_dir)


def prepare(cfg: DictConfig, run_dir: Path) -> Ready:
    """Everything that may refuse the run, before it writes a file: the resumed config, the
    settings, the data, the model, and the checkpoint's weights in that model."""
    if launched_rank() == 0:
        log.info("run folder %s", run_dir)
    checkpoint: dict[str, Any] | None = None
    if cfg.get("resume"):  # every rank reads the checkpoint (a shared file system across nodes)
        path = checkpoint_path(Path(cfg.resume))
        checkpoint = load_checkpoint(path)
        cfg = resume_config(checkpoint, path, HydraConfig.get().overrides.task)
    cfg = with_absolute_root(cfg)
    checked = schema.check(cfg, "train")
    world = this_process(placed(checked).device)
    check_batch_sizes(world, checked.trainer.batch_size, checked.trainer.eval_batch_size)
    try:
        training = build_training(cfg, world, checked)
    except DataError as error:  # a resume reads the folder its run recorded, not MGNET_DATA_DIR
        if checkpoint is None:
            raise
        raise naming("dataset.root", error) from None
    if checkpoint is not None:  # weights of another architecture: refused before anything is written
        load_weights(training.model, checkpoint["model"], path)
    return Ready(cfg, checkpoint, world, training, checked.objective)


def train(ready: Ready, run_dir: Path) -> float:
    """Fits and records the run ``prepare`` made ready (``run``'s body, with the run folder locked)."""
    cfg, world, training = ready.cfg, ready.world, ready.training
    if world.is_main:
        write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    metadata = {"config": plain(cfg), "config_source": plain(cfg, resolve=False),
                "choices": dict(HydraConfig.get().runtime.choices)}
    results = fit(training, run_dir, metadata, ready.checkpoint, world)
    # auto: never select on the test set if we can help it
    objective = (results["best_test_acc"] if ready.objective == Objective.test
                 else results.get("best_val_acc", results["best_test_acc"]))
    if not world.is_main:
        return objective
    record_hyperparameters(cfg, run_dir, results)
    log.info("best test accuracy %.2f%% (epoch %d), final %.2f%%; results in %s",
             100 * results["best_test_acc"], results["best_epoch"],
             100 * results["final_test_acc"], run_dir / "results.json")
    return objective


def with_absolute_root(cfg: DictConfig) -> DictConfig:
    """``dataset.root`` as the absolute folder the run reads: its config.yaml and checkpoints then
    say where its data was, and ``mgnet eval`` and a resume read it there whatever the folder they
    run from or ``MGNET_DATA_DIR`` (the YAML's default) says then."""
    root = OmegaConf.select(cfg, "dataset.root")
    if root is not None:
        cfg.dataset.root = os.path.abspath(Path(str(root)).expanduser())  # symbolic links kept
    return cfg


@contextmanager
def held_log(run_dir: Path) -> Iterator[None]:
    """Log records bound for files in ``run_dir`` (train.log) are held for the block: written when
    it ends, dropped when it raises (a refused resume leaves train.log as it was)."""
    folder = run_dir.resolve()
    handlers = [handler for handler in logging.getLogger().handlers if isinstance(handler, logging.FileHandler)
                and folder in Path(handler.baseFilename).resolve().parents]
    held = {handler: HeldRecords() for handler in handlers}
    for handler, records in held.items():
        handler.addFilter(records)
    try:
        yield
    finally:
        for handler, records in held.items():
            handler.removeFilter(records)
    for handler, records in held.items():
        for record in records.records:
            handler.handle(record)


class HeldRecords(logging.Filter):
    """A handler filter that keeps every record instead of letting it through."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


def record_resume(run_dir: Path, cfg: DictConfig) -> None:
    """The resume's own Hydra record, ``.hydra/resume-<time>/`` beside the run's ``.hydra/``,
    written once the resume is accepted (``hydra.output_subdir`` is null for a resume)."""
    folder = run_dir / ".hydra" / f"resume-{datetime.now():%Y-%m-%d_%H-%M-%S-%f}"
    hydra = HydraConfig.get()
    for name, node in (("config.yaml", cfg), ("hydra.yaml", OmegaConf.create({"hydra": hydra})),
                       ("overrides.yaml", hydra.overrides.task)):
        write_text_atomic(folder / name, OmegaConf.to_yaml(node), root=run_dir)


def record_hyperparameters(cfg: DictConfig, run_dir: Path, results: dict[str, Any]) -> None:
    """Hyperparameters and final metrics into the run's own event folder (HParams tab)."""
    choices = dict(HydraConfig.get().runtime.choices)
    metrics = {key: results[key] for key in ("best_test_acc", "final_test_acc", "final_test_loss")}
    with Tracker(run_dir) as tracker:
        tracker.hparams(flat_hyperparameters(cfg, choices), metrics, results["epochs"])
