"""``mgnet train``: compose the config, build data, model and optimizer, and fit (or resume)."""

import logging
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import hydra.utils
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mgnet_cli import schema
from mgnet_cli.cli.build import build_data, build_model, flat_hyperparameters, plain
from mgnet_cli.cli.resume import resume_config
from mgnet_cli.cli.torchrun import launched_rank
from mgnet_cli.schema.train import TrainConfig, TrainerConfig
from mgnet_cli.storage import RunLock
from mgnet_cli.train.checkpoint import load_checkpoint, write_text_atomic
from mgnet_cli.train.distributed import check_batch_sizes, this_process
from mgnet_cli.train.loop import fit
from mgnet_cli.train.settings import TrainSettings, resolve_device
from mgnet_cli.train.tracking import Tracker

log = logging.getLogger(__name__)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seeds Python, NumPy and torch (all devices): each sweep job starts from its own seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic


def trainer_settings(cfg: DictConfig) -> TrainSettings:
    """The config, checked by its schema (``mgnet_cli.schema``), as the loop's settings."""
    checked: TrainConfig = schema.check(cfg, "train")
    trainer: TrainerConfig = checked.trainer
    return TrainSettings(
        epochs=trainer.epochs, batch_size=trainer.batch_size, eval_batch_size=trainer.eval_batch_size,
        device=resolve_device(trainer.device), limit_train_batches=trainer.limit_train_batches,
        limit_eval_batches=trainer.limit_eval_batches, checkpoints=trainer.checkpoints,
        seed=checked.seed, precision=trainer.precision.value, channels_last=trainer.channels_last,
        compile=trainer.compile, tta=checked.eval.tta.value, skip_nonfinite=trainer.skip_nonfinite,
        sync_bn=trainer.sync_bn, deterministic=trainer.deterministic,
    )


def run(cfg: DictConfig) -> float:
    """Trains one model; returns the best test accuracy (the value sweepers maximise).

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
    checkpoint: dict[str, Any] | None = None
    if cfg.get("resume"):  # every rank reads the checkpoint (a shared file system across nodes)
        path = checkpoint_path(Path(cfg.resume))
        checkpoint = load_checkpoint(path)
        cfg = resume_config(checkpoint, path, HydraConfig.get().overrides.task)
    settings = trainer_settings(cfg)
    world = this_process(settings.device)
    settings = replace(settings, device=world.device)  # cuda:LOCAL_RANK under torchrun
    check_batch_sizes(world, settings.batch_size, settings.eval_batch_size)
    seed_everything(settings.seed, settings.deterministic)
    data, augmentation = build_data(cfg, settings.seed)
    model = build_model(cfg, data.in_channels, data.num_classes)
    optimizer = hydra.utils.instantiate(cfg.optimizer)(model.parameters())
    schedule = hydra.utils.instantiate(cfg.scheduler)
    batches = data.batches(settings.batch_size, settings.eval_batch_size, settings.device,
                           augmentation, settings.seed, channels_last=settings.channels_last,
                           shard=world.shard)
    if world.is_main:
        write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    metadata = {"config": plain(cfg), "config_source": plain(cfg, resolve=False),
                "choices": dict(HydraConfig.get().runtime.choices)}
    results = fit(model, optimizer, schedule, batches, settings, run_dir, metadata, checkpoint, world)
    if not world.is_main:
        return results["best_test_acc"]
    record_hyperparameters(cfg, run_dir, results)
    log.info("best test accuracy %.2f%% (epoch %d), final %.2f%%; results in %s",
             100 * results["best_test_acc"], results["best_epoch"],
             100 * results["final_test_acc"], run_dir / "results.json")
    return results["best_test_acc"]


def record_hyperparameters(cfg: DictConfig, run_dir: Path, results: dict[str, Any]) -> None:
    """Hyperparameters and final metrics into the run's own event folder (HParams tab)."""
    choices = dict(HydraConfig.get().runtime.choices)
    metrics = {key: results[key] for key in ("best_test_acc", "final_test_acc", "final_test_loss")}
    with Tracker(run_dir) as tracker:
        tracker.hparams(flat_hyperparameters(cfg, choices), metrics, results["epochs"])


def checkpoint_path(target: Path) -> Path:
    """``resume=`` takes a run folder (its last.pt) or a checkpoint file."""
    return target / "last.pt" if target.is_dir() else target
