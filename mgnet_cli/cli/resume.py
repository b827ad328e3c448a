"""``mgnet train resume=<run folder or checkpoint>``: the run's own config, plus safe overrides."""

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mgnet_cli import schema
from mgnet_cli.errors import ConfigError
from mgnet_cli.train.checkpoint import check_training_checkpoint

# Overrides a resumed run accepts: they change how long, where and how fast it runs, not what it
# learns (the speed switches compute the same function to float tolerance, so a run started on a
# CPU can go on on a GPU in bf16; bit-for-bit resumes need them unchanged).
MAY_CHANGE = schema.PLACES + schema.PACE


def latest_run(outputs: Path = Path("outputs")) -> Path:
    """``resume=latest``: the run under ``outputs/`` whose last.pt was written last."""
    checkpoints = sorted(outputs.rglob("last.pt"), key=lambda path: path.stat().st_mtime) if outputs.is_dir() else []
    if not checkpoints:
        raise ConfigError(f"resume=latest: no run with a last.pt under {outputs.absolute()}: give the "
                          "run folder, resume=<folder>")
    return checkpoints[-1].parent


def with_latest(argv: list[str]) -> list[str]:
    """The command line with ``resume=latest`` replaced by that run's folder (quoted for Hydra)."""
    if "resume=latest" not in argv:
        return argv
    folder = str(latest_run()).replace("\\", "\\\\").replace("'", "\\'")
    return [f"resume='{folder}'" if arg == "resume=latest" else arg for arg in argv]


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def refused_overrides(overrides: list[str]) -> None:
    """A ConfigError for overrides that would change what the resumed run learns."""
    refused = [o for o in overrides if not override_key(o).startswith(MAY_CHANGE)]
    if refused:
        raise ConfigError(
            f"resume: {', '.join(refused)} would change the run being resumed; only "
            f"{', '.join(k.rstrip('.') + ('.*' if k.endswith('.') else '') for k in MAY_CHANGE)} "
            "may change (start a new run to change anything else)"
        )


def saved_config(checkpoint: dict[str, Any], path: Path) -> DictConfig:
    """The checkpoint's config rebuilt on the package's schemas (a file never picks code)."""
    check_training_checkpoint(checkpoint, path)
    saved = checkpoint.get("config_source") or checkpoint["config"]
    if not isinstance(saved, dict):
        raise ConfigError(f"{path}: its config_source is not a config (a dict)")
    config = schema.typed(saved, "train", source=str(path))
    try:
        schema.check(config, "train")  # every _target_ among the ones its schema lists
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    return config


def resume_config(checkpoint: dict[str, Any], path: Path, overrides: list[str]) -> DictConfig:
    """The checkpoint's config with the command line's allowed overrides applied on top, once the
    resume is known to write only inside its run folder and not to shorten the run."""
    refused_overrides(overrides)
    links_leaving(path.parent)
    saved = saved_config(checkpoint, path)
    allowed = [o.lstrip("+") for o in overrides if not override_key(o).startswith("hydra.")]
    try:
        config = OmegaConf.merge(saved, OmegaConf.from_dotlist(allowed))
    except OmegaConfBaseException as error:
        raise ConfigError(schema.type_error(error)) from None
    not_shorter(config, int(checkpoint["epoch"]), path)
    return config


def not_shorter(config: DictConfig, done: int, path: Path) -> None:
    """A resume trains on to ``trainer.epochs``; fewer than the checkpoint's epochs would leave a
    config.yaml that contradicts results.json, so it is refused."""
    epochs = config.trainer.epochs
    if epochs < done:
        raise ConfigError(f"resume: trainer.epochs={epochs} is fewer than the {done} epochs {path} "
                          f"has trained: give trainer.epochs={done} or more (a run is never shortened)")


def links_leaving(folder: Path) -> None:
    """A resume writes only inside its run folder: a symbolic link in it (a file or a folder: the
    lock, train.log, .hydra, last.pt) whose target lies outside refuses it before anything is written."""
    inside = Path(os.path.realpath(folder))
    for parent, folders, files in os.walk(folder):  # links to folders are listed, not entered
        for name in folders + files:
            link = Path(parent) / name
            target = Path(os.path.realpath(link))  # realpath: a link loop ends, it does not raise
            if link.is_symlink() and target != inside and inside not in target.parents:
                raise ConfigError(f"resume: {link} is a link to {target}, outside the run folder "
                                  f"{folder}: replace it with a copy of what it points to, then resume")


def checkpoint_path(target: Path) -> Path:
    """``resume=`` takes a run folder (its last.pt) or a checkpoint file."""
    return target / "last.pt" if target.is_dir() else target
