"""The ``mgnet`` command: ``mgnet <subcommand> [hydra overrides]``, each subcommand a Hydra app.

This package is the only code that sees ``DictConfig``: each subcommand module turns the composed
config into typed arguments for the library below it.
"""

import importlib
import logging
import os
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

COMMANDS: dict[str, tuple[str, str]] = {
    # subcommand: (module under mgnet_cli.cli with a `run(cfg)` function, one-line help)
    "train": ("train", "train a model (sweeps with -m)"),
    "info": ("info", "print the architecture: levels, resolutions, channels, parameters, FLOPs"),
    "solve": ("solve", "solve the Poisson equation with the multigrid cycle"),
}

log = logging.getLogger(__name__)


def config_dir() -> Path:
    """The folder of YAML configs: ``mgnet_cli/configs`` when installed, ``configs/`` in a checkout."""
    packaged = Path(str(resources.files("mgnet_cli"))) / "configs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "configs"


def run_dir(resume: str | None, default: str) -> str:
    """``hydra.run.dir``: a resumed run continues in its own folder, a new one gets ``default``."""
    if resume in (None, "", "None", "null"):
        return default
    target = Path(str(resume)).expanduser()
    return str(target if target.is_dir() else target.parent)


def register_resolvers() -> None:
    """The config resolvers mgnet's YAML uses (idempotent)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("mgnet_run_dir"):
        OmegaConf.register_new_resolver("mgnet_run_dir", run_dir)


def usage() -> str:
    lines = ["usage: mgnet <command> [key=value ...] [-m] [--help]", "", "commands:"]
    lines += [f"  {name:<8} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "`mgnet <command> --help` lists its config groups and options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``mgnet`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return
    name = argv[0]
    if name not in COMMANDS:
        print(f"mgnet: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}",
              file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(f"mgnet_cli.cli.{COMMANDS[name][0]}")
    sys.argv = [f"mgnet {name}", *argv[1:]]
    register_resolvers()
    hydra_app(module.run, config_name=name)()


def hydra_app(task: Callable, config_name: str) -> Callable[[], None]:
    """Wraps ``task(cfg)`` as a Hydra app whose user errors print one line and exit with code 2."""
    import hydra
    from omegaconf import DictConfig

    from mgnet_cli.errors import MgnetError

    def guarded(cfg: DictConfig):
        try:
            return task(cfg)
        except MgnetError as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            log.debug("user error", exc_info=True)
            print(f"mgnet {config_name}: error: {error}", file=sys.stderr)
            sys.exit(2)

    guarded.__name__ = config_name  # Hydra names the job after the task function
    return hydra.main(config_path=str(config_dir()), config_name=config_name,
                      version_base="1.3")(guarded)
