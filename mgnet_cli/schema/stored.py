"""A config read from a file is data: nothing in it is evaluated, every value has its field's shape.

A checkpoint's config is checked here as plain data, before OmegaConf sees it. A string holding
``${...}`` is refused unless it is exactly what the shipped configs hold at that key
(``scheduler.epochs: ${trainer.epochs}``): OmegaConf would otherwise evaluate it, and a resolver
such as ``${oc.create:...}`` makes a node that ``instantiate`` would call. A list or a mapping is
refused where the schema's field takes none, and so is one that holds anything but plain values.
``mgnet_cli.schema.typed`` then rebuilds the config on the schemas.
"""

import os
import typing
from dataclasses import fields, is_dataclass
from enum import Enum
from types import NoneType, UnionType
from typing import Any, Literal

from mgnet_cli import shipped
from mgnet_cli.errors import ConfigError
from mgnet_cli.schema import rules

PLAIN = (str, int, float, bool, NoneType)  # what a stored value is made of: no code, no nodes
DEEPEST = 8  # levels of nesting in the deepest config mgnet writes (solver.smoother.learning.scheduler.epochs: 5)


SHIPPED_DATA_FOLDER = "${oc.env:MGNET_DATA_DIR,data}"  # the one resolver of the shipped configs


def data_folder_read(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with a ``dataset.root`` that starts with the shipped ``${oc.env:MGNET_DATA_DIR,data}``
    (runs written before mgnet recorded the folder it read) read here, in Python, as the shipped
    config reads it: so no resolver of a file ever reaches OmegaConf, this one included."""
    dataset = config.get("dataset")
    root = dataset.get("root") if isinstance(dataset, dict) else None
    if not isinstance(root, str) or not root.startswith(SHIPPED_DATA_FOLDER):
        return config
    folder = os.environ.get("MGNET_DATA_DIR", "data") + root[len(SHIPPED_DATA_FOLDER):]
    return {**config, "dataset": {**dataset, "root": folder}}


def refuse_interpolations(config: dict[str, Any], groups: tuple[str, ...], where: str) -> None:
    """Raises ConfigError (prefixed ``where``) at the first ``${...}`` of ``config`` that the
    shipped configs do not hold at the same key (any in a list, or in a key name)."""
    allowed = {key: frozenset(value for value in values if ":" not in value)  # no resolver: references only
               for key, values in shipped.interpolations(groups).items()}

    def visit(path: str, value: Any) -> None:
        if path.count(".") > DEEPEST:
            raise ConfigError(f"{where}{path[:-1]}: nested deeper than any config mgnet writes")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or "${" in key:
                    raise ConfigError(f"{where}{path}{rules.shown(key)}: not a key name mgnet writes")
                visit(f"{path}{key}.", item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(f"{path[:-1]}[{index}].", item)
        elif isinstance(value, str) and "${" in value and value not in allowed.get(path[:-1], ()):
            raise ConfigError(f"{where}{path[:-1]}={rules.shown(value)}: an interpolation the shipped "
                              "configs do not hold here (a stored config is data: nothing in it is evaluated)")

    visit("", config)


def check_shapes(values: dict[str, Any], schema: type, prefix: str, where: str) -> None:
    """Raises ConfigError for the first value of ``values`` whose shape its field of ``schema``
    does not take; groups are checked on their own schemas, unknown keys refused by the merge."""
    for field in fields(schema):
        if field.name not in values or "group" in field.metadata:
            continue
        value, kind, key = values[field.name], rules.declared(field), f"{prefix}{field.name}"
        if is_dataclass(kind) and isinstance(value, dict):
            check_shapes(value, kind, f"{key}.", where)
        elif is_dataclass(kind) or not fits(value, kind):
            wanted = f"a mapping of {kind.__name__}'s keys" if is_dataclass(kind) else text(kind)
            raise ConfigError(f"{where}{key}={rules.shown(value)}: not a value this key takes ({wanted})")


def fits(value: Any, kind: Any) -> bool:
    """``value`` has a shape ``kind`` takes: a plain value, or a list (a mapping) of plain values
    where ``kind`` is or holds a list (a dict); a ``Literal`` only its own values."""
    if typing.get_origin(kind) is Literal:
        return value in typing.get_args(kind)
    union = isinstance(kind, UnionType) or typing.get_origin(kind) is typing.Union
    options = typing.get_args(kind) if union else (kind,)
    origins = {typing.get_origin(option) for option in options}
    if isinstance(value, list):
        return list in origins and all(isinstance(item, PLAIN) for item in value)
    if isinstance(value, dict):
        return dict in origins and all(isinstance(item, PLAIN) for item in value.values())
    return isinstance(value, (*PLAIN, Enum))


def text(kind: Any) -> str:
    """``int | list[int]``, ``Precision``: a type as the messages show it."""
    return getattr(kind, "__name__", None) if isinstance(kind, type) else str(kind).replace("typing.", "")
