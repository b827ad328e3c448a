"""Checkpoints, written atomically (``mgnet_cli.storage``) and read back as untrusted data.

Checkpoints hold only plain data (tensors, numbers, strings, lists, dicts), so they load with
``torch.load(weights_only=True)`` and never run code; a training checkpoint is then checked whole
(checkpoint_parts.py) before any part of it is used.
"""

import warnings
from pathlib import Path
from typing import Any

import torch

from mgnet_cli.errors import MgnetError
from mgnet_cli.storage import write_atomic
from mgnet_cli.train.checkpoint_parts import parts_fault
from mgnet_cli.untrusted import is_count, open_regular

FORMAT_VERSION = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Saves a plain-data checkpoint atomically, stamped with the format version."""
    write_atomic(Path(path), lambda file: torch.save({"format_version": FORMAT_VERSION, **state}, file))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads a checkpoint with ``weights_only=True`` from a regular file; a file that is not one
    raises MgnetError."""
    path = Path(path)
    with open_regular(path, "checkpoint") as file, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Validating sparse tensor invariants")  # refused later
        try:
            state = torch.load(file, map_location=map_location, weights_only=True)
        except Exception as error:  # unpickling refused or corrupt file
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise MgnetError(f"checkpoint {path} cannot be loaded safely (weights_only=True): {first_line}") from error
    if not isinstance(state, dict) or "format_version" not in state:
        raise MgnetError(f"{path} is not an mgnet checkpoint (no format_version)")
    version = state["format_version"]
    if not is_count(version, low=1):
        raise MgnetError(f"{path} is not an mgnet checkpoint (format_version {version!r} is not "
                         "a positive integer)")
    if version > FORMAT_VERSION:
        raise MgnetError(f"{path} has checkpoint format {version}, newer than this mgnet reads ({FORMAT_VERSION}); "
                         "upgrade mgnet")
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


def check_training_checkpoint(state: dict[str, Any], path: Path) -> None:
    """A loaded checkpoint must be a training run's: its config a dict, its weights a dict of
    tensors, its epoch an integer, and every part whole (checkpoint_parts.py: finite weights, the
    optimizer's, schedule's and random states, the progress); a learned-smoother file
    (``mgnet solve``) says what it is."""
    if state.get("kind") is not None:
        raise MgnetError(f"{path} is a {state['kind']} file, not a training checkpoint; "
                         "mgnet solve reads it with solver.smoother.learning.checkpoint=...")
    problems = []
    if not isinstance(state.get("config"), dict):
        problems.append("no config")
    weights = state.get("model")
    if not isinstance(weights, dict) or not weights or not all(
            isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in weights.items()):
        problems.append("no model weights (a dict of tensors)")
    epoch = state.get("epoch")
    if not is_count(epoch):
        problems.append(f"epoch {epoch!r} is not a count")
    if not problems and (fault := parts_fault(state)) is not None:
        problems.append(fault)
    if problems:
        raise MgnetError(f"{path} is not a training checkpoint of mgnet: {', '.join(problems)}")
