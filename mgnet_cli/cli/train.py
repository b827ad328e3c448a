"""``mgnet train``: compose the config, build data, model and optimizer, and fit (or resume)."""

import logging
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mgnet_cli.cli.build import build_training, flat_hyperparameters, plain, trainer_settings
from mgnet_cli.cli.resume import resume_config
from mgnet_cli.cli.torchrun import launched_rank
from mgnet_cli.storage import RunLock, write_text_atomic
from mgnet_cli.train.checkpoint import load_checkpoint
from mgnet_cli.train.distributed import check_batch_sizes, this_process
from mgnet_cli.train.loop import fit
from mgnet_cli.train.tracking import Tracker

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> float:
    """Trains one model; returns what sweepers maximise: the best validation accuracy when the run
    holds out a validation split (``dataset.val_size > 0``), else the best test accuracy.

    Under torchrun every rank runs this with the same config and run folder (see ``mgnet_cli.cli``);
    each trains on its part of every batch and only rank 0 writes.
    """
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if launched_rank() > 0:  # rank 0 holds the folder's lock for the run
        return train(cfg, run_dir)
    with RunLock(run_dir):
        return train(cfg, run_dir)


def train(cfg: DictConfig, run_dir: Path) -> float:
    """Resume or build, fit, record (``run``'s body, with the run folder locked)."""
    if launched_rank() == 0:
        log.info("run folder %s", run_dir)
    checkpoint: dict[str, Any] | None = None
    if cfg.get("resume"):  # every rank reads the checkpoint (a shared file system across nodes)
        path = checkpoint_path(Path(cfg.resume))
        checkpoint = load_checkpoint(path)
        cfg = resume_config(checkpoint, path, HydraConfig.get().overrides.task)
    settings = trainer_settings(cfg)
    world = this_process(settings.device)
    check_batch_sizes(world, settings.batch_size, settings.eval_batch_size)
    training = build_training(cfg, world, settings)
    if world.is_main:
        write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    metadata = {"config": plain(cfg), "config_source": plain(cfg, resolve=False),
                "choices": dict(HydraConfig.get().runtime.choices)}
    results = fit(training.model, training.optimizer, training.schedule, training.batches,
                  training.settings, run_dir, metadata, checkpoint, world)
    choice = str(cfg.get("objective", "auto"))  # auto: never select on the test set if we can help it
    objective = results["best_test_acc"] if choice == "test" else results.get("best_val_acc", results["best_test_acc"])
    if not world.is_main:
        return objective
    record_hyperparameters(cfg, run_dir, results)
    log.info("best test accuracy %.2f%% (epoch %d), final %.2f%%; results in %s",
             100 * results["best_test_acc"], results["best_epoch"],
             100 * results["final_test_acc"], run_dir / "results.json")
    return objective


def record_hyperparameters(cfg: DictConfig, run_dir: Path, results: dict[str, Any]) -> None:
    """Hyperparameters and final metrics into the run's own event folder (HParams tab)."""
    choices = dict(HydraConfig.get().runtime.choices)
    metrics = {key: results[key] for key in ("best_test_acc", "final_test_acc", "final_test_loss")}
    with Tracker(run_dir) as tracker:
        tracker.hparams(flat_hyperparameters(cfg, choices), metrics, results["epochs"])


def checkpoint_path(target: Path) -> Path:
    """``resume=`` takes a run folder (its last.pt) or a checkpoint file."""
    return target / "last.pt" if target.is_dir() else target
