"""What a file given by a user may hold, checked whole before any of it is used.

Every file mgnet reads back (a checkpoint, a learned part, a coefficient field) is opened as a
regular file only (a FIFO would block, a device never end), and each of its tensors must be plain
numbers: dense (no sparse, quantized or nested layout), of a real dtype, finite where they are
floats. Each check returns what is wrong as a phrase (None when nothing is), so the caller names the
file and the part in its one-line error.
"""

import math
import os
import stat
from pathlib import Path
from typing import IO, Any

import torch

from mgnet_cli.errors import MgnetError

PLAIN_TEXT = 1000  # characters: a longer string in a file's record is not a setting
PLAIN_ITEMS = 10_000  # entries of a list in a file's record (loss curves are a few thousand)


def open_regular(path: Path, what: str = "file") -> IO[bytes]:
    """``path`` opened for reading, or a MgnetError if it is missing or not a regular file.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` on that descriptor, so a FIFO is refused
    without waiting for a writer, and the file checked is the file read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise MgnetError(f"{what} {path} does not exist") from None
    except OSError as error:
        raise MgnetError(f"{what} {path} cannot be read: {error.strerror or error}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
        raise MgnetError(f"{what} {path} is {kind}, not a regular file")
    return os.fdopen(fd, "rb")


def tensor_fault(value: Any, shape: tuple[int, ...] | None = None, floating: bool = True) -> str | None:
    """What keeps ``value`` from being a dense tensor of real numbers (floats if ``floating``, finite)
    of ``shape``; None if nothing does."""
    if not isinstance(value, torch.Tensor):
        return f"is {type(value).__name__}, not a tensor"
    if value.layout != torch.strided or value.is_quantized or value.is_nested or value.is_meta:
        return f"is a {value.layout} tensor, not a dense one" if value.layout != torch.strided \
            else "is a quantized, nested or meta tensor, not a dense one of numbers"
    if value.is_complex() or value.dtype == torch.bool or (floating and not value.is_floating_point()):
        return f"holds {str(value.dtype).removeprefix('torch.')}, not {'real floats' if floating else 'real numbers'}"
    if shape is not None and tuple(value.shape) != tuple(shape):
        return f"has shape {tuple(value.shape)}, not {tuple(shape)}"
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        return "holds NaN or infinite values"
    return None


def is_count(value: Any, low: int = 0, high: int | None = None) -> bool:
    """An int (not a bool) in ``[low, high]``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low \
        and (high is None or value <= high)


def is_finite(value: Any) -> bool:
    """An int or float (not a bool), finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def plain_fault(value: Any, depth: int = 3, finite: bool = True) -> str | None:
    """What keeps ``value`` from being a record JSON writes as it is (None, bools, numbers (finite
    if ``finite``: a setting; a measured loss may be inf), short strings, and lists and string-keyed
    dicts of them, ``depth`` levels deep); None if nothing."""
    if value is None or isinstance(value, bool) or is_finite(value) or (isinstance(value, float) and not finite):
        return None
    if isinstance(value, str):
        return None if len(value) <= PLAIN_TEXT else f"a string of {len(value):,} characters"
    if isinstance(value, float):
        return f"{value} is not a finite number"
    if depth == 0 or not isinstance(value, (list, tuple, dict)):
        return f"{type(value).__name__} is not plain data" if depth else "nested too deep"
    if len(value) > PLAIN_ITEMS:
        return f"{len(value):,} entries"
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(value, dict) and not isinstance(key, str):
            return f"the key {key!r} is not a string"
        fault = plain_fault(item, depth - 1, finite)
        if fault is not None:
            return f"{key}: {fault}"
    return None


def load_finite_weights(model: torch.nn.Module, weights: dict) -> None:
    """Loads a file's ``weights`` into ``model`` (as float64) only if they are exactly its tensors,
    of its shapes, dense finite floats; else a ValueError naming the first that is not."""
    expected = model.state_dict()
    if set(weights) != set(expected):
        raise ValueError(f"expected the tensors {sorted(expected)}, got {sorted(weights)}")
    for key, tensor in weights.items():
        fault = tensor_fault(tensor, tuple(expected[key].shape))
        if fault is not None:
            raise ValueError(f"{key} {fault}: expected dense finite floats of shape {tuple(expected[key].shape)}")
    model.load_state_dict({key: tensor.to(torch.float64) for key, tensor in weights.items()})
