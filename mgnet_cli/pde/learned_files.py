"""A learned part's file (``learned_smoother.pt``, ``learned_prolongation.pt``,
``stencil_aware_smoother.pt``, the AMG's ``learned_interpolation.pt``) beside its weights: the record of how it was learned, checked by type
and range when the file is loaded. ``mgnet solve`` copies its settings and cycle into results.json
after the solve, so a value JSON cannot write must be refused before the solve, never after it."""

import typing
from dataclasses import fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from mgnet_cli.cycle_shape import CycleShape
from mgnet_cli.errors import MgnetError
from mgnet_cli.schema import rules
from mgnet_cli.schema.solve import GRID_SIZES
from mgnet_cli.untrusted import is_count, is_finite, plain_fault

LARGEST_GRID = GRID_SIZES[-1]  # interior points per side of the largest grid mgnet solves on


def training_keys(settings_type: type) -> dict[str, Any]:
    """A learned part's training keys (its schema's fields less the checkpoint and the optimizer
    and schedule, which are code, not a record) and their types."""
    return {field.name: field.type for field in fields(settings_type)
            if field.name != "checkpoint" and not is_dataclass(field.type)}


def training_record(settings: Any) -> dict[str, Any]:
    """The training keys of ``settings`` (a schema dataclass) as plain data, for a weights-only file."""
    def plain(value: Any) -> Any:
        return [plain(item) for item in value] if isinstance(value, (list, tuple)) else \
            value.value if isinstance(value, Enum) else value
    return {name: plain(getattr(settings, name)) for name in training_keys(type(settings))}


def value_fault(value: Any, kind: Any, choices: tuple[str, ...] | None = None) -> str | None:
    """What keeps ``value`` from being a setting of type ``kind`` (bool, int, float, str, a choice of
    the schema, or a list of ints or of choices) among ``choices``; None if nothing does."""
    if isinstance(kind, type) and issubclass(kind, Enum):
        kind, choices = str, tuple(member.value for member in kind)
    if typing.get_origin(kind) in (tuple, list):
        item = typing.get_args(kind)[0]
        if not isinstance(value, (list, tuple)) or not value or len(value) > 64:
            return "is not a list of 1 to 64 entries"
        return next((fault for fault in (value_fault(entry, item, choices) for entry in value) if fault), None)
    if kind is bool:
        return None if isinstance(value, bool) else "is not true or false"
    if kind is int:
        return None if is_count(value, high=rules.LARGEST_SEED) else "is not a non-negative integer"
    if kind is float:
        return None if is_finite(value) else "is not a finite number"
    if kind is str:
        ok = isinstance(value, str) and len(value) <= 100 and (choices is None or value in choices)
        return None if ok else f"is not one of {', '.join(choices)}" if choices else "is not a word"
    return f"is not a {getattr(kind, '__name__', kind)}"


def settings_fault(settings: Any, settings_type: type) -> str | None:
    """``settings`` as ``save_*`` wrote them: some of the training keys of ``settings_type`` (the
    part's schema), each of its type (``train_sizes``: grids mgnet solves on)."""
    kinds = training_keys(settings_type)
    if not isinstance(settings, dict) or not set(settings) <= set(kinds):
        return f"is not a dict of {', '.join(kinds)}"
    for key, value in settings.items():
        fault = value_fault(value, kinds[key])
        if fault is None and key == "train_sizes" and not all(3 <= size <= LARGEST_GRID for size in value):
            fault = f"is not a list of grid sizes from 3 to {LARGEST_GRID}"
        if fault is not None:
            return f"{key} {fault}"
    return None


def cycle_fault(cycle: Any) -> str | None:
    """The cycle a part was learned in: numbers and words only, its counts counts, its shape one."""
    if not isinstance(cycle, dict) or plain_fault(cycle, depth=1) is not None:
        return "is not a dict of numbers and words"
    counts = [key for key in ("pre_smooth", "post_smooth", "coarsest_n") if key in cycle]
    if any(not is_count(cycle[key], high=LARGEST_GRID) for key in counts) or cycle.get("shape", "v") not in tuple(CycleShape):
        return f"pre_smooth, post_smooth or coarsest_n is not a count, or its shape not one of {rules.choices(CycleShape)}"
    return None


def history_fault(state: dict[str, Any]) -> str | None:
    """The training record: losses, (step, factor) pairs, held-out factors and the time, finite."""
    losses, factors, held_out = state.get("losses", []), state.get("factors", []), state.get("held_out", {})
    if not isinstance(losses, list) or not all(is_finite(loss) for loss in losses):
        return "losses is not a list of finite numbers"
    if not isinstance(factors, list) or not all(
            isinstance(pair, (list, tuple)) and len(pair) == 2 and is_count(pair[0]) and is_finite(pair[1])
            for pair in factors):
        return "factors is not a list of (step, factor) pairs"
    if not isinstance(held_out, dict) or plain_fault(held_out, depth=1) is not None \
            or not all(is_finite(value) for value in held_out.values()):
        return "held_out is not a dict of finite factors"
    time_s = state.get("time_s", 0.0)
    return None if is_finite(time_s) and time_s >= 0 else "time_s is not a non-negative number"


def check_record(state: dict[str, Any], path: Path, settings_type: type) -> None:
    """A MgnetError naming ``path`` and the entry if the file's record is not what ``save_*`` writes."""
    faults = (("settings", settings_fault(state.get("settings", {}), settings_type)),
              ("cycle", cycle_fault(state.get("cycle", {}))), ("", history_fault(state)))
    for part, fault in faults:
        if fault is not None:
            raise MgnetError(f"{path} holds a damaged record of its training: "
                             f"{part + ' ' if part else ''}{fault}")
