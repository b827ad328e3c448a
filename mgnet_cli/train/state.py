"""What a checkpoint holds to continue a run exactly: weights, optimizer, schedule, epoch, record,
and every random state (torch, CUDA, NumPy, Python, and the data order's generator)."""

import random
from typing import Any

import numpy as np
import torch
from torch import nn

from mgnet_cli.train.checkpoint import load_weights
from mgnet_cli.train.results import RunRecord


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """All random states as plain data (loadable with ``weights_only=True``)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "python": list(random.getstate()),
        "data": generator.get_state(),
    }


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    generator.set_state(state["data"])


def training_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    record: RunRecord,
    generator: torch.Generator,
) -> dict[str, Any]:
    """The checkpoint of a run after ``epoch`` complete epochs."""
    return {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "epoch": epoch,
        "record": {"parameters": record.parameters, "selection": record.selection,
                   "history": record.history, "wall_time_s": record.wall_time_s},
        "results": record.summary(), "rng": rng_state(generator),
    }


def restore_training(
    state: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> tuple[int, RunRecord]:
    """Loads a checkpoint into the run's objects; returns the epochs done and the record so far."""
    load_weights(model, state["model"], "the checkpoint")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    restore_rng(state["rng"], generator)
    if "data_order" in state:  # stopped mid-epoch: replay that epoch's order from its start
        generator.set_state(state["data_order"])
    return int(state["epoch"]), RunRecord(**state["record"])
