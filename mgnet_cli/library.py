"""mgnet from Python: the models ``mgnet train`` builds and trains, without the command line.

``build_model`` composes the same configs as the CLI (so it takes the same overrides and the same
checks); ``load_model`` rebuilds a trained model through the same safe path as ``mgnet eval``: the
checkpoint is read with ``weights_only=True`` and its config rebuilt on the schemas, so a file
never picks the code that runs.
"""

import shlex
from collections.abc import Sequence
from pathlib import Path

from torch import nn


def overrides_of(overrides: str | Sequence[str]) -> list[str]:
    """``"a=1 b=2"`` or ``["a=1", "b=2"]`` -> ``["a=1", "b=2"]``."""
    return shlex.split(overrides) if isinstance(overrides, str) else list(overrides)


def build_model(overrides: str | Sequence[str] = ()) -> nn.Module:
    """The model ``mgnet train <overrides>`` would build, untrained (e.g. ``"smoother=chebyshev"``)."""
    from hydra import compose, initialize_config_dir

    from mgnet_cli import schema
    from mgnet_cli.cli import config_dir, register_configs
    from mgnet_cli.cli.build import build_model as build
    from mgnet_cli.cli.build import data_shape
    from mgnet_cli.cli.preflight import check_overrides

    register_configs()
    overrides = overrides_of(overrides)
    check_overrides(config_dir(), "info", overrides)  # one-line ConfigErrors, as the CLI gives
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("info", overrides=overrides)
    schema.check(cfg, "info")
    shape = data_shape(cfg)
    return build(cfg, shape["channels"], shape["num_classes"])


def create_model(preset: str, overrides: str | Sequence[str] = ()) -> nn.Module:
    """A preset of ``configs/experiment/`` (``"mgnet_cifar10"``, ``"resnet18_cifar100"``, ...)."""
    return build_model([f"experiment={preset}", *overrides_of(overrides)])


def load_model(checkpoint: str | Path, device: str = "cpu") -> nn.Module:
    """A trained model in evaluation mode, from a checkpoint or a run folder (its ``best.pt``)."""
    from mgnet_cli.cli.build import build_model as build
    from mgnet_cli.cli.build import data_shape
    from mgnet_cli.cli.resume import saved_config
    from mgnet_cli.train.checkpoint import load_checkpoint, load_weights

    path = Path(checkpoint).expanduser()
    path = path / "best.pt" if path.is_dir() else path
    state = load_checkpoint(path)
    cfg = saved_config(state, path)
    shape = data_shape(cfg)
    model = build(cfg, shape["channels"], shape["num_classes"])
    load_weights(model, state["model"], path)
    return model.to(device).eval()
