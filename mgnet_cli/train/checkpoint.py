"""Checkpoints and result files, written atomically (temporary file, fsync, rename).

A crash or ``kill -9`` at any moment leaves either the previous complete file or the new one.
Checkpoints hold only plain data (tensors, numbers, strings, lists, dicts), so they load with
``torch.load(weights_only=True)`` and never run code.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from mgnet_cli.errors import MgnetError

FORMAT_VERSION = 1


def write_atomic(path: Path, write: Any) -> None:
    """Calls ``write(file)`` on a temporary file beside ``path``, then renames it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes files private; results are for sharing
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Writes ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    write_atomic(Path(path), lambda file: file.write(text.encode()))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Saves a plain-data checkpoint atomically, stamped with the format version."""
    write_atomic(Path(path), lambda file: torch.save({"format_version": FORMAT_VERSION, **state}, file))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads a checkpoint with ``weights_only=True``; a file that is not one raises MgnetError."""
    path = Path(path)
    if not path.is_file():
        raise MgnetError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # unpickling refused or corrupt file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MgnetError(
            f"checkpoint {path} cannot be loaded safely (weights_only=True): {first_line}"
        ) from error
    if not isinstance(state, dict) or "format_version" not in state:
        raise MgnetError(f"{path} is not an mgnet checkpoint (no format_version)")
    if state["format_version"] > FORMAT_VERSION:
        raise MgnetError(
            f"{path} has checkpoint format {state['format_version']}, newer than this mgnet "
            f"reads ({FORMAT_VERSION}); upgrade mgnet"
        )
    return state


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path | str) -> None:
    """``model.load_state_dict(weights)``, or a MgnetError saying how the architectures differ."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in weights]
    unexpected = [key for key in weights if key not in expected]
    reshaped = [f"{key} {tuple(weights[key].shape)} vs {tuple(tensor.shape)}"
                for key, tensor in expected.items()
                if key in weights and weights[key].shape != tensor.shape]
    if missing or unexpected or reshaped:
        details = "; ".join(part for part in (
            f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
            f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else "",
            f"{len(reshaped)} of another shape (e.g. {reshaped[0]})" if reshaped else "",
        ) if part)
        raise MgnetError(f"{source} holds weights of another architecture than the model built "
                         f"from its config: {details}")
    model.load_state_dict(weights)
