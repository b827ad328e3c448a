"""A training checkpoint's parts, each checked whole when the file is loaded, before anything uses
them: the weights (and the EMA's), the optimizer and schedule, the random states, the progress and
the record (state.py writes them). Each check returns what is wrong as a phrase, or None; one
crafted or damaged value must never reach ``load_state_dict``, ``set_state`` or results.json."""

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import torch

from mgnet_cli.train.epoch import EpochProgress
from mgnet_cli.train.results import RunRecord
from mgnet_cli.untrusted import is_count, is_finite, plain_fault, tensor_fault

NON_NEGATIVE = ("lr", "initial_lr", "weight_decay", "momentum", "dampening", "eps")  # optimizer settings
SCHEDULER_KEYS = {"base_lrs": "rates", "_last_lr": "rates", "last_epoch": "step", "_step_count": "count",
                  "_is_initial": "flag", "_get_lr_called_within_step": "flag", "verbose": "flag",
                  "lr_lambdas": "nones"}  # LambdaLR's state (a lambda's is None), by what it must be
SCALER_KEYS = ("scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker")
HISTORY_KEYS = ("epoch", "test_acc", "test_loss", "test_top5", "train_throughput")  # what summary() reads


def weights_fault(weights: Any) -> str | None:
    """A state dict: string keys, dense tensors of real numbers, floats finite."""
    if not isinstance(weights, dict) or not weights:
        return "is not a dict of tensors"
    for key, tensor in weights.items():
        fault = f"the key {key!r} is not a string" if not isinstance(key, str) else \
            tensor_fault(tensor, floating=False)
        if fault is not None:
            return f"{key} {fault}" if isinstance(key, str) else fault
    return None


def ema_fault(ema: Any, model: dict[str, torch.Tensor]) -> str | None:
    """The EMA's weights (an ``AveragedModel``): the model's keys and shapes under ``module.``."""
    if not isinstance(ema, dict) or set(ema) != {"n_averaged", *(f"module.{key}" for key in model)}:
        return "does not hold the model's weights (n_averaged and module.<each weight>)"
    count = ema["n_averaged"]
    if tensor_fault(count, (), floating=False) is not None or count.is_floating_point() or int(count) < 0:
        return "n_averaged is not a count"
    return shapes_fault(ema, model, "module.", floating=False)


def lookahead_fault(slow: Any, model: dict[str, torch.Tensor]) -> str | None:
    """Lookahead's slow weights: the model's floating-point entries, each of its shape."""
    floating = {key: tensor for key, tensor in model.items() if tensor.is_floating_point()}
    if not isinstance(slow, dict) or set(slow) != set(floating):
        return "does not hold the model's floating-point weights and statistics"
    return shapes_fault(slow, floating, "", floating=True)


def shapes_fault(copy: dict[str, Any], model: dict[str, torch.Tensor], prefix: str, floating: bool) -> str | None:
    """The first entry ``prefix + key`` of a copy of ``model``'s weights (its keys checked) that is
    not a tensor of the model's shape (of floats if ``floating``)."""
    for key, tensor in model.items():
        fault = tensor_fault(copy[prefix + key], tuple(tensor.shape), floating)
        if fault is not None:
            return f"{prefix}{key} {fault}"
    return None


def setting_fault(key: str, value: Any) -> str | None:
    """An optimizer group's setting: None, a flag, a word, finite numbers (some non-negative)."""
    if isinstance(value, torch.Tensor):  # a tensor learning rate
        fault = tensor_fault(value, ())
        if fault is not None:
            return fault
        value = value.item()
    if isinstance(value, (list, tuple)) and len(value) <= 8 and all(is_finite(item) for item in value):
        return None  # betas
    if value is None or isinstance(value, (bool, str)):
        return None
    if not is_finite(value) or (key in NON_NEGATIVE and value < 0):
        return f"is {value!r}, not a finite{' non-negative' if key in NON_NEGATIVE else ''} number"
    return None


def optimizer_fault(state: Any) -> str | None:
    """``optimizer.state_dict()``: groups of parameter numbers and settings, per-parameter tensors."""
    if not isinstance(state, dict) or set(state) != {"state", "param_groups"}:
        return "is not an optimizer's state (state and param_groups)"
    groups, per_parameter = state["param_groups"], state["state"]
    if not isinstance(groups, list) or not groups or not all(isinstance(group, dict) for group in groups):
        return "param_groups is not a list of settings"
    numbers: list[int] = []
    for index, group in enumerate(groups):
        params = group.get("params")
        if not isinstance(params, list) or not all(is_count(number) for number in params):
            return f"param_groups[{index}].params is not a list of parameter numbers"
        numbers += params
        for key, value in group.items():
            fault = "is not a string" if not isinstance(key, str) else \
                None if key == "params" else setting_fault(key, value)
            if fault is not None:
                return f"param_groups[{index}].{key} {fault}"
    if len(set(numbers)) != len(numbers) or not isinstance(per_parameter, dict):
        return "param_groups name a parameter twice, or state is not a dict"
    for number, entries in per_parameter.items():
        if number not in numbers or not isinstance(entries, dict):
            return f"state[{number!r}] is not the state of a parameter of param_groups"
        for name, value in entries.items():
            fault = None if value is None or is_finite(value) else tensor_fault(value)
            if fault is not None:
                return f"state[{number}].{name} {fault}"
    return None


def scheduler_fault(state: Any) -> str | None:
    """LambdaLR's state: only its own keys (``load_state_dict`` sets every key as an attribute)."""
    if not isinstance(state, dict):
        return "is not a dict"
    rules: dict[str, Callable[[Any], bool]] = {
        "rates": lambda value: isinstance(value, list) and all(is_finite(rate) and rate >= 0 for rate in value),
        "step": lambda value: is_count(value, low=-1), "count": is_count,
        "flag": lambda value: isinstance(value, bool),
        "nones": lambda value: isinstance(value, list) and all(item is None for item in value)}
    for key, value in state.items():
        if key not in SCHEDULER_KEYS:
            return f"{key!r} is not a key of the learning-rate schedule"
        if not rules[SCHEDULER_KEYS[key]](value):
            return f"{key} is {value!r}, not {SCHEDULER_KEYS[key].replace('nones', 'a list of null')}"
    return None


def generator_fault(state: Any) -> str | None:
    """A CPU ``torch.Generator``'s state: bytes, as many as this torch's."""
    return tensor_fault(state, tuple(torch.get_rng_state().shape), floating=False) or (
        None if state.dtype == torch.uint8 else f"holds {str(state.dtype).removeprefix('torch.')}, not bytes (uint8)")


def rng_fault(state: Any) -> str | None:
    """``state.rng_state``: torch's, CUDA's, NumPy's, Python's and the data order's states."""
    if not isinstance(state, dict) or set(state) != {"torch", "cuda", "numpy", "python", "data"}:
        return "is not the random states (torch, cuda, numpy, python, data)"
    for key in ("torch", "data"):
        if (fault := generator_fault(state[key])) is not None:
            return f"{key} {fault}"
    cuda = state["cuda"]
    if not isinstance(cuda, list) or len(cuda) > 1024 or any(
            tensor_fault(part, floating=False) or part.dtype != torch.uint8 or part.numel() > 1024
            for part in cuda):
        return "cuda is not a list of generator states (bytes)"
    numpy = state["numpy"]
    if not isinstance(numpy, list) or len(numpy) != 5 or numpy[0] != "MT19937" \
            or tensor_fault(numpy[1], (624,), floating=False) or numpy[1].dtype != torch.int64 \
            or not is_count(numpy[2], high=624) or not is_count(numpy[3], high=1) or not is_finite(numpy[4]):
        return "numpy is not a Mersenne Twister state (MT19937, 624 keys, position, gauss)"
    python = state["python"]
    if not isinstance(python, (list, tuple)) or len(python) != 3 or python[0] != 3 \
            or not isinstance(python[1], (list, tuple)) or len(python[1]) != 625 \
            or not all(is_count(word, high=2**32 - 1) for word in python[1]) or python[1][-1] > 624 \
            or not (python[2] is None or is_finite(python[2])):
        return "python is not a Mersenne Twister state (version 3, 625 words, gauss)"
    return None


def progress_fault(state: dict[str, Any]) -> str | None:
    """The epochs done (at most the run's ``trainer.epochs``) and a stopped epoch's running totals."""
    epoch, config = state.get("epoch"), state.get("config")
    epochs = config.get("trainer", {}).get("epochs") if isinstance(config, dict) else None
    if is_count(epochs) and is_count(epoch) and epoch > epochs:
        return f"epoch {epoch} is past the run's trainer.epochs={epochs}"
    progress = state.get("epoch_progress", {})
    counts = {field.name: field.type is int for field in fields(EpochProgress)}
    if not isinstance(progress, dict) or not set(progress) <= set(counts) or not all(
            is_count(value) if counts[key] else is_finite(value) and value >= 0 for key, value in progress.items()):
        return "epoch_progress is not an epoch's running totals (non-negative numbers)"
    if "data_order" in state and (fault := generator_fault(state["data_order"])) is not None:
        return f"data_order {fault}"
    return None


def record_fault(record: Any, epoch: int) -> str | None:
    """``RunRecord``'s fields: one history entry per epoch done, each with what results.json reads."""
    names = {field.name for field in fields(RunRecord)}
    if not isinstance(record, dict) or not {"parameters", "selection", "history"} <= set(record) <= names:
        return f"is not a run's record ({', '.join(sorted(names))})"
    history, selection = record["history"], record["selection"]
    if not is_count(record["parameters"]) or selection not in ("test", "val") \
            or not is_finite(record.get("wall_time_s", 0.0)) or not is_count(record.get("stopped_early", 0)):
        return "parameters, selection, wall_time_s or stopped_early is of the wrong type"
    if not isinstance(history, list) or len(history) != epoch:
        return f"history is not a list of the {epoch} epochs done"
    for index, entry in enumerate(history, start=1):
        needed = (*HISTORY_KEYS, f"{selection}_acc")
        if not isinstance(entry, dict) or plain_fault(entry, 1, finite=False) is not None \
                or entry.get("epoch") != index or not all(isinstance(entry.get(key), (int, float)) for key in needed):
            return f"history entry {index} is not epoch {index}'s metrics ({', '.join(needed)})"
    return None


def scaler_fault(state: Any) -> str | None:
    """fp16's loss scale: its five numbers, the scale positive."""
    if not isinstance(state, dict) or not set(state) <= set(SCALER_KEYS) \
            or not all(is_finite(value) for value in state.values()) or not state.get("scale", 1.0) > 0:
        return f"is not a loss scaler's state ({', '.join(SCALER_KEYS)}: finite numbers)"
    return None


def parts_fault(state: dict[str, Any]) -> str | None:
    """The first fault of a training checkpoint's parts (its model weights already a dict of tensors)."""
    checks: list[tuple[str, Callable[[], str | None]]] = [
        ("model", lambda: weights_fault(state["model"])),
        ("ema", lambda: ema_fault(state["ema"], state["model"]) if "ema" in state else None),
        ("lookahead", lambda: lookahead_fault(state["lookahead"], state["model"]) if "lookahead" in state else None),
        ("optimizer", lambda: optimizer_fault(state.get("optimizer"))),
        ("scheduler", lambda: scheduler_fault(state.get("scheduler"))),
        ("rng", lambda: rng_fault(state.get("rng"))),
        ("progress", lambda: progress_fault(state)),
        ("record", lambda: record_fault(state.get("record"), state["epoch"])),
        ("grad_scaler", lambda: scaler_fault(state["grad_scaler"]) if "grad_scaler" in state else None),
        ("results", lambda: plain_fault(state.get("results"), finite=False)),
        ("choices", lambda: plain_fault(state.get("choices"))),
    ]
    for part, check in checks:
        fault = check()
        if fault is not None:
            return f"{part}: {fault}" if part != "progress" else fault
    return None
