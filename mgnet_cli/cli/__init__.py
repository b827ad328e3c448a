"""The ``mgnet`` command: ``mgnet <subcommand> [hydra overrides]``, each subcommand a Hydra app.

This package is the only code that sees ``DictConfig``: each subcommand module turns the composed
config into typed arguments for the library below it.
"""

import contextlib
import hashlib
import importlib
import io
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from mgnet_cli.shipped import config_dir  # noqa: F401 (the commands' configs folder)

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


def run_dir(resume: str | None, default: str) -> str:
    """``hydra.run.dir``: a resumed run continues in its own folder, a new one gets ``default``."""
    if resume in (None, "", "None", "null"):
        return default
    target = Path(str(resume)).expanduser()
    return str(target if target.is_dir() else target.parent)


NAME_BYTES = 255  # the longest file name ext4, XFS, btrfs and APFS allow, in bytes
DIGEST_CHARACTERS = 12  # of the SHA-256 of the overrides that ends a shortened folder name


def job_folder(number: int, overrides: str, seed: int) -> str:
    """A training sweep job's folder (``hydra.sweep.subdir``): ``<number>_<overrides>_seed=<seed>``.
    A name over NAME_BYTES keeps as much of the overrides as fits and ends ``~<digest>_seed=<seed>``,
    the digest of all of them, so it can be made and tells sweeps apart; the job's overrides are
    whole in summary.csv and its .hydra/overrides.yaml."""
    name = f"{number}_{overrides}_seed={seed}"
    if len(name.encode()) <= NAME_BYTES:
        return name
    tail = f"~{hashlib.sha256(overrides.encode()).hexdigest()[:DIGEST_CHARACTERS]}_seed={seed}"
    head = f"{number}_{overrides}".encode()[:NAME_BYTES - len(tail.encode())]
    return head.decode(errors="ignore") + tail  # a character cut in two is dropped


def hydra_subdir(resume: str | None) -> str | None:
    """``hydra.output_subdir``: a resume keeps the run's own ``.hydra`` record, and adds its own
    only once it is accepted (``mgnet_cli.cli.train.record_resume``): none from Hydra."""
    return ".hydra" if resume in (None, "", "None", "null") else None


def register_configs() -> None:
    """The schemas mgnet's YAML extends and the resolvers it uses (idempotent)."""
    from omegaconf import OmegaConf

    from mgnet_cli import schema

    schema.register()
    if not OmegaConf.has_resolver("mgnet_run_dir"):
        OmegaConf.register_new_resolver("mgnet_run_dir", run_dir)
    if not OmegaConf.has_resolver("mgnet_job_folder"):
        OmegaConf.register_new_resolver("mgnet_job_folder", job_folder)
    if not OmegaConf.has_resolver("mgnet_not_the_experiment"):  # what sweep folders leave out of their names
        OmegaConf.register_new_resolver("mgnet_not_the_experiment", lambda: [
            *(key for key in schema.PLACES + schema.REPLICAS if not key.endswith(".")), "search"])


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


COMPLETION_FLAGS = ("-sc", "--shell-completion")


def complete(line: str) -> None:
    """Shell completion (the script ``mgnet <command> --shell-completion install=bash`` prints):
    the commands after ``mgnet``, then the command's own groups and keys, from Hydra."""
    words = line.split()
    if len(words) < 2 or (len(words) == 2 and not line.endswith(" ")):
        typed = words[1] if len(words) == 2 else ""
        print(" ".join(name for name in COMMANDS if name.startswith(typed)))
        return
    name = words[1]
    if name in COMMANDS and not line.endswith(" "):
        from mgnet_cli.cli.help import group_choices

        if (choices := group_choices(name, words[-1])) is not None:
            print(" ".join(choices))  # `dataset=c<TAB>` from the configs folder, without torch
            return
    module = importlib.import_module(f"mgnet_cli.cli.{name}") if name in COMMANDS else None
    if module is None or not hasattr(module, "run"):
        return  # report parses its own arguments: the shell completes its paths
    from mgnet_cli.cli.app import hydra_app

    os.environ["COMP_LINE"] = "mgnet " + line.split(None, 2)[2] if len(line.split(None, 2)) > 2 else "mgnet "
    sys.argv = ["mgnet", "-sc", "query=bash"]
    register_configs()
    printed_by_hydra(hydra_app(module.run, config_name=name))


class StartUpSignal:
    """A Ctrl-C during start-up (imports, composing the config, Hydra's job set-up), recorded
    rather than raised: raised inside a library's import it can be swallowed by a broad ``except``
    there, and the run would go on. ``honour()`` raises it where mgnet handles it (one line,
    exit code 130, a new run folder removed) and hands SIGINT back to Python's own handler; the
    task's first step calls it, and so does every way out of ``command``."""

    def __init__(self) -> None:
        self.received = False
        self.previous: object = None

    def _record(self, number: int, frame: object) -> None:
        self.received = True

    def install(self) -> None:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread() and self.previous is None:
            self.previous = signal.signal(signal.SIGINT, self._record)

    def honour(self) -> None:
        """Start-up is over: SIGINT raises KeyboardInterrupt again, and one received so far is
        raised now."""
        import signal

        if self.previous is not None:
            if signal.getsignal(signal.SIGINT) == self._record:  # nobody took it over since
                signal.signal(signal.SIGINT, self.previous)
            self.previous = None
        if self.received:
            self.received = False
            raise KeyboardInterrupt


START_UP = StartUpSignal()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``mgnet`` console script: a Ctrl-C outside training is one line."""
    try:
        command(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        print(f"mgnet {(argv or sys.argv[1:] or ['?'])[0]}: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # `mgnet ... | head`: the reader is gone, nothing left to say
        reader_gone()


HYDRA_PRINTS = ("--cfg", "-c", "--info", "-i", "--hydra-help", *COMPLETION_FLAGS)  # Hydra prints, runs nothing


def printed_by_hydra(app: Callable[[], None]) -> None:
    """Runs an app that only prints (``--cfg job``, completion) with its output held back and
    written here, where a reader that left is quiet (Hydra would report the BrokenPipeError)."""
    held = io.StringIO()
    try:
        with contextlib.redirect_stdout(held):
            app()
    finally:
        sys.stdout.write(held.getvalue())
        sys.stdout.flush()


def reader_left() -> bool:
    """True when stdout is a pipe whose reader has gone (``mgnet info | head -1``), not when some
    other pipe broke (a data loader's worker)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (OSError, ValueError):  # no stdout at all
        return False


def quiet_stdout() -> None:
    """What is left to print goes nowhere, the buffered rest too (Python's "Note on SIGPIPE")."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def reader_gone() -> None:
    """Every command ends the same way when its reader leaves: quietly, with exit code 0."""
    quiet_stdout()
    sys.exit(0)


def command(argv: list[str]) -> None:
    """Runs ``mgnet <argv>``; a Ctrl-C during its start-up is recorded and honoured
    (``StartUpSignal``)."""
    START_UP.install()
    try:
        started(argv)
    finally:
        START_UP.honour()  # one not yet honoured (a command that printed only, or failed first)


def started(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return
    if argv[0] in ("-V", "--version"):
        print(version())
        return
    if argv[0] in COMPLETION_FLAGS:  # the shell asks what may follow COMP_LINE
        complete(os.environ.get("COMP_LINE", "mgnet "))
        return
    name = argv[0]
    if name not in COMMANDS:
        print(f"mgnet: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}",
              file=sys.stderr)
        sys.exit(2)
    from mgnet_cli.cli.app import hydra_app, preflight, resolved_latest
    from mgnet_cli.cli.torchrun import launched_world_size, rank_overrides, refuse_outside_training

    if launched_world_size() > 1:
        refuse_outside_training(name, argv[1:])
    module = importlib.import_module(f"mgnet_cli.cli.{name}")
    if hasattr(module, "main"):
        module.main(argv[1:])
        return
    from mgnet_cli.cli.help import print_help, wants_help

    if wants_help(argv[1:]):
        print_help(name, argv[1:])
        return
    argv = [name, *resolved_latest(name, argv[1:])]
    completing = any(arg.split("=")[0] in COMPLETION_FLAGS for arg in argv[1:])
    sys.argv = ["mgnet" if completing else f"mgnet {name}", *argv[1:]]  # completion is for `mgnet`
    register_configs()
    preflight(name, argv[1:])
    if launched_world_size() <= 1:
        if any(arg.split("=")[0] in HYDRA_PRINTS for arg in argv[1:]):
            printed_by_hydra(hydra_app(module.run, config_name=name))
            return
        hydra_app(module.run, config_name=name)()
        return
    from mgnet_cli.train.distributed import process_group

    with process_group():  # torchrun started several ranks: one run, one folder
        sys.argv += rank_overrides(argv[1:])
        hydra_app(module.run, config_name=name)()
