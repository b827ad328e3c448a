"""``mgnet train``: compose the config, build data, model and optimizer, and fit."""

import logging
import random
from pathlib import Path

import hydra.utils
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mgnet_cli.cli.build import build_data, build_model, plain
from mgnet_cli.train.loop import TrainSettings, fit, resolve_device

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and torch (all devices): each sweep job starts from its own seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def trainer_settings(cfg: DictConfig) -> TrainSettings:
    trainer = cfg.trainer
    return TrainSettings(
        epochs=int(trainer.epochs), batch_size=int(trainer.batch_size),
        eval_batch_size=int(trainer.eval_batch_size), device=resolve_device(str(trainer.device)),
        limit_train_batches=trainer.limit_train_batches, limit_eval_batches=trainer.limit_eval_batches,
        checkpoints=bool(trainer.checkpoints), seed=int(cfg.seed),
    )


def run(cfg: DictConfig) -> float:
    """Trains one model; returns the best test accuracy (the value sweepers maximise)."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    settings = trainer_settings(cfg)
    seed_everything(settings.seed)
    data, augmentation = build_data(cfg, settings.seed)
    model = build_model(cfg, data.in_channels, data.num_classes)
    optimizer = hydra.utils.instantiate(cfg.optimizer)(model.parameters())
    schedule = hydra.utils.instantiate(cfg.scheduler)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    results = fit(model, optimizer, schedule, data, settings, run_dir, augmentation, plain(cfg))
    log.info("best test accuracy %.2f%% (epoch %d), final %.2f%%; results in %s",
             100 * results["best_test_acc"], results["best_epoch"],
             100 * results["final_test_acc"], run_dir / "results.json")
    return results["best_test_acc"]
