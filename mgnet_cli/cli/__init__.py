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

COMMANDS: dict[str, str] = {
    # subcommand (a module under mgnet_cli.cli): one-line help. A module with `run(cfg)` is a
    # Hydra app composed from configs/<subcommand>.yaml; one with `main(argv)` parses its own.
    "train": "train a model (sweeps with -m)",
    "eval": "evaluate a checkpoint: loss, top-1/top-5, per-class accuracy, confusion matrix",
    "report": "tables and plots comparing runs and sweeps",
    "info": "print the architecture: levels, resolutions, channels, parameters, FLOPs",
    "solve": "solve the Poisson equation with the multigrid cycle",
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


def hydra_subdir(resume: str | None) -> str:
    """``hydra.output_subdir``: a resume keeps the run's own ``.hydra`` record and adds its own."""
    if resume in (None, "", "None", "null"):
        return ".hydra"
    from datetime import datetime

    return f".hydra/resume-{datetime.now():%Y-%m-%d_%H-%M-%S-%f}"


def register_resolvers() -> None:
    """The config resolvers mgnet's YAML uses (idempotent)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("mgnet_run_dir"):
        OmegaConf.register_new_resolver("mgnet_run_dir", run_dir)
        OmegaConf.register_new_resolver("mgnet_hydra_subdir", hydra_subdir)


def in_sweep() -> bool:
    """True inside a job of ``-m`` (multirun)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def record_failure(error: BaseException, status: str = "failed") -> None:
    """Marks a training run's results.json as failed (or interrupted), with the error."""
    import json

    from hydra.core.hydra_config import HydraConfig

    from mgnet_cli.train.checkpoint import write_json_atomic

    if not HydraConfig.initialized():
        return
    if HydraConfig.get().job.name != "train" or launched_rank() > 0:
        return  # only training runs keep a results.json, written by rank 0 under torchrun
    path = Path(HydraConfig.get().runtime.output_dir) / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    message = str(error).strip() or type(error).__name__
    write_json_atomic(path, results | {"status": status, "error": message})


def version() -> str:
    """mgnet's version and what it runs on: what a bug report needs."""
    import platform

    import torch

    from mgnet_cli import __version__

    if torch.cuda.is_available():
        devices = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        accelerator = f"CUDA {torch.version.cuda}: {devices}"
    else:
        accelerator = "no CUDA device (trains on the CPU)"
    return (f"mgnet {__version__} (Python {platform.python_version()}, torch {torch.__version__}, "
            f"{accelerator}, {torch.get_num_threads()} CPU threads)")


def usage() -> str:
    lines = ["usage: mgnet <command> [key=value ...] [-m] [--help | --version]", "", "commands:"]
    lines += [f"  {name:<8} {help_text}" for name, help_text in COMMANDS.items()]
    lines += ["", "`mgnet <command> --help` lists its config groups and options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``mgnet`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return
    if argv[0] in ("-V", "--version"):
        print(version())
        return
    name = argv[0]
    if name not in COMMANDS:
        print(f"mgnet: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}",
              file=sys.stderr)
        sys.exit(2)
    if launched_world_size() > 1:
        refuse_outside_training(name, argv[1:])
    module = importlib.import_module(f"mgnet_cli.cli.{name}")
    if hasattr(module, "main"):
        module.main(argv[1:])
        return
    sys.argv = [f"mgnet {name}", *argv[1:]]
    register_resolvers()
    preflight(name, argv[1:])
    if launched_world_size() <= 1:
        hydra_app(module.run, config_name=name)()
        return
    from mgnet_cli.train.distributed import process_group

    with process_group():  # torchrun started several ranks: one run, one folder
        sys.argv += rank_overrides(argv[1:])
        hydra_app(module.run, config_name=name)()


def launched_world_size() -> int:
    """How many processes torchrun started (1 without torchrun); read before importing torch."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """This process's rank in a torchrun (0 without torchrun)."""
    return int(os.environ.get("RANK", "0"))


def refuse_outside_training(name: str, argv: list[str]) -> None:
    """Under torchrun only ``mgnet train`` (one run, not a sweep) makes sense: one line, exit 2."""
    problem = None
    if name != "train":
        problem = f"mgnet {name} runs in one process: start it without torchrun"
    elif any(arg in ("-m", "--multirun") for arg in argv):
        problem = ("a sweep (-m) cannot run under torchrun: launch one torchrun per job, or sweep "
                   "with one GPU per job (README: Multiple GPUs and clusters)")
    if problem:
        print(f"mgnet {name}: error: {problem}", file=sys.stderr)
        sys.exit(2)


def rank_overrides(argv: list[str]) -> list[str]:
    """What makes the ranks of one torchrun one run: the same folder, written by rank 0 only.

    Hydra gives every process its own ``hydra.run.dir`` when the folder's name has the time (to the
    microsecond): rank 0's time goes to every rank, in the pattern of the command line or the
    config (a resume still resolves to the resumed run's folder). Ranks > 0 write no ``.hydra``
    record and no log file, and log warnings and errors only.
    """
    import re
    from datetime import datetime

    import torch.distributed as dist
    from omegaconf import OmegaConf

    from mgnet_cli.train.distributed import broadcast_object

    given = [arg.partition("=")[2].strip("'\"") for arg in argv if arg.startswith("hydra.run.dir=")]
    configured = OmegaConf.to_container(OmegaConf.load(config_dir() / "train.yaml").hydra, resolve=False)
    pattern = given[-1] if given else configured["run"]["dir"]
    extra = []
    if "${now:" in pattern:  # the same command line on every rank: all take this branch
        now = broadcast_object(datetime.now())
        folder = re.sub(r"\$\{now:([^}]*)\}", lambda match: now.strftime(match.group(1)), pattern)
        extra.append(f"hydra.run.dir='{folder}'")
    if dist.get_rank() > 0:
        extra += ["hydra.output_subdir=null", "hydra/job_logging=stdout",
                  "hydra.job_logging.root.level=WARNING"]
    return extra


def preflight(name: str, argv: list[str]) -> None:
    """Bad overrides and unwritable output folders: one line and exit code 2, before Hydra runs."""
    from mgnet_cli.cli.validate import check_overrides, check_writable
    from mgnet_cli.errors import ConfigError

    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return  # let Hydra show its full report
    try:
        check_overrides(config_dir(), name, argv)
        if name == "train":
            check_writable(argv)
    except ConfigError as error:
        print(f"mgnet {name}: error: {error}", file=sys.stderr)
        sys.exit(2)


def hydra_app(task: Callable, config_name: str) -> Callable[[], None]:
    """Wraps ``task(cfg)`` as a Hydra app whose user errors print one line and exit with code 2."""
    import hydra
    from omegaconf import DictConfig

    from mgnet_cli.errors import MgnetError
    from mgnet_cli.train.guards import Interrupted

    def guarded(cfg: DictConfig):
        try:
            return task(cfg)
        except Interrupted as stop:  # a checkpoint is saved; the message says how to resume
            record_failure(stop, status="interrupted")
            if launched_rank() == 0:  # under torchrun, one line for the run
                print(f"mgnet {config_name}: {stop}", file=sys.stderr)
            sys.exit(stop.exit_code)
        except Exception as error:
            record_failure(error)
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            if in_sweep():  # record it (results.json, summary.csv) and let the other jobs run
                log.error("job failed: %s", error, exc_info=not isinstance(error, MgnetError))
                return float("nan")
            if not isinstance(error, MgnetError):
                raise
            log.debug("user error", exc_info=True)
            print(f"mgnet {config_name}: error: {error}", file=sys.stderr)
            sys.exit(2)

    guarded.__name__ = config_name  # Hydra names the job after the task function
    return hydra.main(config_path=str(config_dir()), config_name=config_name,
                      version_base="1.3")(guarded)
