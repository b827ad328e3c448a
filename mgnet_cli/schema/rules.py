"""The range rules a schema's ``__post_init__`` states, each raising ``Invalid`` with what is allowed.

``Invalid`` carries the field's name inside its dataclass; the checker that walks a config adds the
path (``trainer.`` + ``epochs``) and turns it into the one-line ``<key>=<value>: <rule>`` error.
"""

import importlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import MISSING, Field, field
from enum import Enum
from typing import Any

LARGEST_COUNT = 10**9  # epochs, batches, steps: anything larger is a typo, not a plan
LARGEST_EPOCHS = 100_000  # a run's epochs, and what its schedules span
LARGEST_BATCH = 2**20  # images in a training or evaluation batch


def typed_as(kind: Any, default: Any, help: str) -> Any:
    """A field whose type OmegaConf cannot state (a union with a list: ``int | list[int]``; the one
    reference a key may hold: ``Literal["${smoother}"]``): annotated ``Any`` for OmegaConf, ``kind``
    for the check of configs read from files (``mgnet_cli.schema.stored``) and for the messages."""
    return field(default=default, metadata={"type": kind, "help": help})


def setting(default: Any, help: str) -> Any:
    """A key's default and its one-line help (``mgnet <command> --help`` prints it), written once,
    here, instead of restated in the command's YAML; a list or dict default is copied per config."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def target(default: str) -> Any:
    """A ``_target_`` key: the code its option builds."""
    return setting(default, "the code this option builds: one that a shipped option of its schema names")


def partial(what: str) -> Any:
    """A ``_partial_: true`` key: ``what`` is passed in when the object is built."""
    return setting(True, f"stays true: {what} passed in when it is built")


def default(owner: type, name: str) -> Any:
    """The default ``owner`` gives its key ``name`` (a fresh copy of a list), for library code to
    take as its own: ``MgNet()`` is what the schema's defaults build, written once, here."""
    found = owner.__dataclass_fields__[name]
    return found.default if found.default_factory is MISSING else found.default_factory()


def default_code(owner: type) -> Any:
    """The code ``owner``'s default ``_target_`` names (``MgNet()``'s stem and smoother), imported."""
    module, _, name = default(owner, "_target_").rpartition(".")
    return getattr(importlib.import_module(module), name)


def help_of(owner: type, name: str) -> str:
    """The help of ``owner``'s key ``name``: its own ``setting``'s, else the one of the class it
    overrides the default of (a subclass restates no help)."""
    for cls in owner.__mro__:
        for owner_field in getattr(cls, "__dataclass_fields__", {}).values():
            if owner_field.name == name and "help" in owner_field.metadata:
                return owner_field.metadata["help"]
    return ""


def group(name: str) -> Any:
    """A field holding the config group ``name``: typed by the schema its option extends, which
    ``mgnet_cli.schema.typed`` picks (OmegaConf cannot state a union of schemas)."""
    return field(default=None, metadata={"group": name})


def declared(owner_field: Field) -> Any:
    """The type a field takes: its annotation, or what ``typed_as`` says OmegaConf cannot state."""
    return owner_field.metadata.get("type", owner_field.type)


class Choice(str, Enum):
    """A key's choices, written once: compares equal to its value and prints as it (``bf16``)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


def choices(kind: type[Enum]) -> str:
    """``none, flip``: a choice key's values, as its messages and ``--help`` list them."""
    return ", ".join(member.value for member in kind)


class Invalid(ValueError):
    """A value outside its range: ``field`` (dotted within its dataclass), ``value`` and ``rule``."""

    def __init__(self, field: str, value: Any, rule: str) -> None:
        super().__init__(f"{field}={shown(value)}: {rule}")
        self.field, self.value, self.rule = field, value, rule


def shown(value: Any) -> str:
    """A value as the user typed it: ``bf16``, ``[1, 2]``, ``null``."""
    if isinstance(value, Enum):
        return str(value.value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value) if not value or " " in value else value
    return str(value)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def count(owner: object, field: str, minimum: int = 1, maximum: int = LARGEST_COUNT) -> None:
    """An integer in ``[minimum, maximum]``."""
    value = getattr(owner, field)
    if not is_integer(value) or not minimum <= value <= maximum:
        raise Invalid(field, value, f"give an integer from {minimum} to {maximum:,}")


LARGEST_SEED = 2**63 - 1  # torch.manual_seed takes up to this


def seed(owner: object, field: str) -> None:
    """A seed: an integer from 0 to LARGEST_SEED."""
    count(owner, field, minimum=0, maximum=LARGEST_SEED)


def optional_count(owner: object, field: str, minimum: int = 1) -> None:
    """``null`` or an integer >= ``minimum``."""
    if getattr(owner, field) is not None:
        count(owner, field, minimum)


def number(owner: object, field: str, low: float, high: float, *, low_open: bool = False,
           high_open: bool = False, why: str = "") -> None:
    """A finite number in the interval ``low .. high``, each end open or closed (``why``: what
    sets an end, said after the interval)."""
    value = getattr(owner, field)
    above = is_number(value) and (value > low if low_open else value >= low)
    below = is_number(value) and (value < high if high_open else value <= high)
    if not (above and below):
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        high_text = "inf" if math.isinf(high) else f"{high:g}"
        because = f" ({why})" if why else ""
        raise Invalid(field, value, f"give a finite number in {left}{low:g}, {high_text}{right}{because}")


def positive(owner: object, field: str) -> None:
    number(owner, field, 0.0, math.inf, low_open=True, high_open=True)


def integers(owner: object, field: str, *, minimum: int = 1, length: int | None = None,
             maximum: int = 2**16) -> list[int]:
    """A non-empty list of integers in ``[minimum, maximum]`` (of ``length`` entries if given)."""
    value = getattr(owner, field)
    entries = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
    wrong_length = entries is not None and length is not None and len(entries) != length
    if (not entries or wrong_length
            or any(not is_integer(entry) or not minimum <= entry <= maximum for entry in entries)):
        size = f"{length} " if length is not None else "a non-empty list of "
        raise Invalid(field, value, f"give {size}integers from {minimum} to {maximum:,}, e.g. [2,2,2,2]")
    return entries


def per_level(owner: object, field: str, levels: int) -> None:
    """An integer (every level) or a list of one integer per level, each from 1 to 65,536."""
    value = getattr(owner, field)
    if is_integer(value):
        if not 1 <= value <= 2**16:
            raise Invalid(field, value, "give a width from 1 to 65,536 (or one per level)")
        return
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != levels:
        raise Invalid(field, value, f"give one integer, or a list of {levels} (one per level of "
                                    "model.smoothing_steps)")
    integers(owner, field, length=levels)


def one_of(owner: object, field: str, allowed: Iterable[str]) -> None:
    """A string among ``allowed`` (a ``_target_``: the code a config may name)."""
    value = getattr(owner, field)
    allowed = tuple(allowed)
    if value not in allowed:
        raise Invalid(field, value, f"use one of {', '.join(allowed)}")


def is_true(owner: object, field: str, why: str) -> None:
    if getattr(owner, field) is not True:
        raise Invalid(field, getattr(owner, field), why)


DEVICE = re.compile(r"auto|cpu|cuda(:\d{1,3})?")
DEVICES = "auto, cpu, cuda or cuda:N"  # what DEVICE takes, in words
DEVICE_HELP = f"where it runs: {DEVICES} (auto: CUDA when present, else the CPU)"


def device(owner: object, field: str) -> None:
    value = getattr(owner, field)
    if not isinstance(value, str) or not DEVICE.fullmatch(value):
        raise Invalid(field, value, f"use {DEVICES}")


def text(owner: object, field: str, optional: bool = False) -> None:
    """A non-empty string (a path), or null when ``optional``."""
    value = getattr(owner, field)
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise Invalid(field, value, "give a path" + (" or null" if optional else ""))
