"""``mgnet train resume=<run folder or checkpoint>``: the run's own config, plus safe overrides."""

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
    """The checkpoint's config with the command line's allowed overrides applied on top."""
    refused_overrides(overrides)
    saved = saved_config(checkpoint, path)
    allowed = [o.lstrip("+") for o in overrides if not override_key(o).startswith("hydra.")]
    try:
        return OmegaConf.merge(saved, OmegaConf.from_dotlist(allowed))
    except OmegaConfBaseException as error:
        raise ConfigError(schema.type_error(error)) from None
