"""Running a command as a Hydra app: bad input costs one line and exit code 2, before or after
Hydra starts; a command refused before training leaves nothing behind."""

import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mgnet_cli.cli import START_UP, config_dir, hydra_subdir, quiet_stdout, reader_gone, reader_left
from mgnet_cli.cli.torchrun import launched_rank

if TYPE_CHECKING:
    from omegaconf import DictConfig

log = logging.getLogger(__name__)
RECORDED = ("train", "solve")  # the commands whose run folder keeps Hydra's record, .hydra/


class Console(logging.StreamHandler):
    """Log lines on stdout (configs/hydra/job_logging/); once a pipe's reader has left
    (``mgnet train ... | head``), the rest goes nowhere, with no "Logging error" per line."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], BrokenPipeError) and reader_left():
            quiet_stdout()
            return
        super().handleError(record)


def write_record(config_name: str, cfg: "DictConfig", run_dir: Path) -> None:
    """Hydra's record of a run (``config.yaml``, ``hydra.yaml``, ``overrides.yaml`` in ``.hydra/``,
    a resume's in ``.hydra/resume-<time>/``, by ``cli.train.record_resume``), written here rather than by Hydra (the configs set
    ``hydra.output_subdir: null``) so that it is atomic, never follows a link out of the run
    folder, and a full disk is one line. Ranks > 0 of a torchrun write none."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from mgnet_cli.storage import write_text_atomic

    if config_name not in RECORDED or launched_rank() > 0:
        return
    subdir = hydra_subdir(cfg.get("resume"))
    if subdir is None:  # a resume: cli/train.py's record_resume writes it once the resume is accepted
        return
    hydra_cfg = HydraConfig.instance().cfg
    folder = run_dir / subdir
    for name, node in (("config.yaml", cfg), ("hydra.yaml", hydra_cfg),
                       ("overrides.yaml", hydra_cfg.hydra.overrides.task)):
        write_text_atomic(folder / name, OmegaConf.to_yaml(node), root=run_dir)


def in_sweep() -> bool:
    """True inside a job of ``-m`` (multirun)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def preflight(name: str, argv: list[str]) -> None:
    """Bad overrides, an unwritable or busy run folder, a resume that would be refused: one line
    and exit code 2, before Hydra runs (so nothing is written)."""
    from mgnet_cli.cli.preflight import check_overrides, check_resume, check_writable
    from mgnet_cli.errors import MgnetError

    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return  # let Hydra show its full report
    try:
        check_overrides(config_dir(), name, argv)
        if name == "train":
            check_writable(argv)
            check_resume(argv)
        if START_UP.received:  # a Ctrl-C so far: stop while nothing is written
            START_UP.honour()
    except MgnetError as error:
        fail(name, error)
    except KeyboardInterrupt:
        stopped_early(name)


def resolved_latest(name: str, argv: list[str]) -> list[str]:
    """``mgnet train resume=latest``: the newest run's folder in its place (one line if none)."""
    from mgnet_cli.cli.resume import with_latest
    from mgnet_cli.errors import MgnetError

    try:
        return with_latest(argv) if name == "train" else argv
    except MgnetError as error:
        fail(name, error)


def fail(name: str, error: BaseException) -> None:
    print(f"mgnet {name}: error: {str(error).strip() or type(error).__name__}", file=sys.stderr)
    sys.exit(2)


def stopped_early(name: str) -> None:
    print(f"mgnet {name}: interrupted before it started; nothing was written", file=sys.stderr)
    sys.exit(130)


def remove_new_run_folder(run_dir: Path, created: bool) -> None:
    """A new run refused before training leaves no folder (Hydra made it for its log and record),
    nor the parents it made that are now empty (``outputs/<date>/``)."""
    if not created or not run_dir.is_dir() or any(
            (run_dir / name).exists() for name in ("results.json", "last.pt", "best.pt")):
        return
    logging.shutdown()  # the log file is in there
    shutil.rmtree(run_dir, ignore_errors=True)
    here = Path.cwd().resolve()
    for parent in run_dir.resolve().parents:
        if parent == here or here not in parent.parents or any(parent.iterdir()):
            break
        parent.rmdir()


def hydra_app(task: Callable, config_name: str) -> Callable[[], None]:
    """Wraps ``task(cfg)`` as a Hydra app whose user errors print one line and exit with code 2."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    from mgnet_cli.cli.sweep import JobFailure
    from mgnet_cli.errors import MgnetError
    from mgnet_cli.train.guards import Interrupted, resume_command

    def guarded(cfg: DictConfig):
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        new = config_name == "train" and not cfg.get("resume") and not in_sweep() and \
            not (run_dir / "results.json").exists()
        try:
            START_UP.honour()  # a Ctrl-C during Hydra's job set-up (its imports) stops here
            write_record(config_name, cfg, run_dir)
            return task(cfg)
        except Interrupted as stop:  # a checkpoint is saved; the message says how to resume
            if launched_rank() == 0:  # under torchrun, one line for the run
                print(f"mgnet {config_name}: {stop}", file=sys.stderr)
            sys.exit(stop.exit_code)
        except KeyboardInterrupt:  # a second Ctrl-C (training) or one outside training
            if (run_dir / "last.pt").is_file():
                print(f"mgnet {config_name}: interrupted; the last complete checkpoint is "
                      f"{run_dir / 'last.pt'}. Resume with: {resume_command(run_dir)}", file=sys.stderr)
            else:
                remove_new_run_folder(run_dir, new)
                print(f"mgnet {config_name}: interrupted", file=sys.stderr)
            sys.exit(130)
        except Exception as error:
            if isinstance(error, BrokenPipeError) and reader_left():
                reader_gone()  # `mgnet info | head -1`
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            if in_sweep():  # recorded (results.json, summary.csv); the other jobs still run
                log.error("job failed: %s", error, exc_info=not isinstance(error, MgnetError))
                return JobFailure(str(error).strip() or type(error).__name__)
            if not isinstance(error, MgnetError):
                raise
            log.debug("user error", exc_info=True)
            remove_new_run_folder(run_dir, new)
            fail(config_name, error)

    guarded.__name__ = config_name  # Hydra names the job after the task function
    return hydra.main(config_path=str(config_dir()), config_name=config_name,
                      version_base="1.3")(guarded)
