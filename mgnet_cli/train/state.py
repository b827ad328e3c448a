"""What a checkpoint holds to continue a run exactly: weights, optimizer, schedule, epoch, record,
and every random state (torch, CUDA, NumPy, Python, and the data order's generator)."""

import random
from typing import Any

import numpy as np
import torch
from torch import nn

from mgnet_cli.errors import MgnetError
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
    """Loads a checkpoint (checked whole by ``check_training_checkpoint``) into the run's objects;
    returns the epochs done and the record so far."""
    check_optimizer_fits(state["optimizer"], optimizer)
    load_weights(model, state["model"], "the checkpoint")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    restore_rng(state["rng"], generator)
    if "data_order" in state:  # stopped mid-epoch: replay that epoch's order from its start
        generator.set_state(state["data_order"])
    return int(state["epoch"]), RunRecord(**state["record"])


def check_optimizer_fits(saved: dict[str, Any], optimizer: torch.optim.Optimizer) -> None:
    """The saved optimizer state is this optimizer's: as many groups and parameters, the same
    settings (a flag this torch added may be missing), and each parameter's state tensors of its
    shape (a scalar such as Adam's step aside); else a MgnetError before anything is loaded."""
    groups = optimizer.param_groups
    if len(saved["param_groups"]) != len(groups) or any(
            len(old["params"]) != len(new["params"]) for old, new in zip(saved["param_groups"], groups)):
        raise MgnetError("the checkpoint's optimizer state is for another number of parameters than the "
                         "model built from its config")
    parameters = {}
    for index, (old, new) in enumerate(zip(saved["param_groups"], groups)):
        unknown = set(old) - set(new)
        missing = [key for key in set(new) - set(old) if new[key] not in (None, False)]
        if unknown or missing:
            raise MgnetError(f"the checkpoint's optimizer settings param_groups[{index}] are not this "
                             f"optimizer's: {', '.join(sorted(unknown | set(missing)))}")
        parameters |= dict(zip(old["params"], new["params"]))
    for number, entries in saved["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != parameters[number].shape:
                raise MgnetError(f"the checkpoint's optimizer state {name} of parameter {number} has shape "
                                 f"{tuple(value.shape)}, the parameter {tuple(parameters[number].shape)}")
