"""Sweeps (``mgnet train -m``): jobs isolated from each other, one ``summary.csv`` row per job.

``SweepRecorder`` is a Hydra callback (``hydra.callbacks`` in configs/train.yaml). A job's row is
written as soon as it ends, so a sweep killed half-way keeps every finished row; a failed job gets
a row with its error and the others go on; the sweep exits with code 1 if any job failed.
"""

import contextlib
import csv
import io
import json
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from mgnet_cli.storage import write_atomic

try:
    import fcntl
except ImportError:  # Windows: no POSIX locks; the jobs of a local sweep run one at a time anyway
    fcntl = None

log = logging.getLogger(__name__)

METRICS = ("best_test_acc", "final_test_acc", "parameters", "epochs", "wall_time_s")  # training's
COLUMNS = ("job", "overrides", "status", *METRICS, "error", "folder")
COMPLETED = ("completed",)  # the results.json statuses of a finished job (training's)


def reset_process_state() -> None:
    """What one job may leave behind for the next in the same process: compile caches, peak
    memory counters, deterministic-mode flags, random states (each job seeds its own)."""
    torch._dynamo.reset()
    torch.use_deterministic_algorithms(False)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    random.seed()
    torch.seed()


@dataclass(frozen=True)
class JobFailure:
    """What a sweep job that raised returns in place of its objective: its error, for its summary
    row. Not a number on purpose: Optuna's sweeper tells the trial to the study as failed (a NaN
    would be told as a value, which Optuna refuses with a traceback) and asks for the next."""
    message: str

    def __str__(self) -> str:
        return self.message


def job_error(job_return: JobReturn) -> str:
    """The job's own error: the exception it raised, or the failure it returned; "" if none."""
    if job_return.status == JobStatus.FAILED or isinstance(job_return._return_value, JobFailure):
        return str(job_return._return_value)
    return ""


def job_row(config: DictConfig, job_return: JobReturn, metrics: tuple[str, ...] = METRICS,
            completed: tuple[str, ...] = COMPLETED) -> dict[str, Any]:
    """The summary row of a finished job, from its results.json and its own error: its status is
    ``completed``, or the status its results.json gives (``diverged``, ``interrupted``), or
    ``failed``."""
    folder = Path(config.hydra.runtime.output_dir)
    results_file = folder / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    error = job_error(job_return) or results.get("error") or ""
    status = "completed" if results.get("status") in completed and not error else "failed"
    if status == "failed" and results.get("status") not in (None, "running", *completed):
        status = str(results["status"])
    if status == "failed" and not error:
        error = "no results.json" if not results else f"results.json says {results.get('status')}"
    return {
        "job": config.hydra.job.num,
        "overrides": " ".join(config.hydra.overrides.task),
        "status": status,
        **{key: results.get(key, "") for key in metrics},
        "error": error.splitlines()[0] if error else "",
        "folder": str(folder),
    }


def write_rows(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, lambda file: file.write(text.getvalue().encode()))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive POSIX lock on the file ``path`` while the block runs: jobs of one sweep that end
    at the same moment in other processes or on other nodes (SLURM arrays, one sweep per GPU into
    one folder) take turns at ``summary.csv`` instead of overwriting each other's rows. NFS v4 and
    Lustre honour these locks."""
    with path.open("a") as handle:
        if fcntl is not None:
            fcntl.lockf(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.lockf(handle, fcntl.LOCK_UN)


def record_row(path: Path, row: dict[str, Any]) -> None:
    """Adds one job's row to the summary at ``path`` (or replaces the row of the same job folder),
    under the lock beside it: two sweeps into one folder number their jobs from 0 alike, so the
    folder, not the job number, says which row is whose."""
    with locked(path.with_name(".summary.lock")):
        rows = [old for old in read_rows(path) if old["folder"] != row["folder"]]
        write_rows(path, sorted([*rows, row], key=lambda r: (int(r["job"]), r["folder"])), tuple(row))


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


class SweepRecorder(Callback):
    """Isolates the jobs of a sweep and records each in ``<sweep dir>/summary.csv``: the ``metrics``
    of its results.json; a job is completed when its status is one of ``completed`` (training's
    columns and status by default; configs/solve.yaml names solve's)."""

    def __init__(self, metrics: list[str] | None = None, completed: list[str] | None = None) -> None:
        self.metrics = tuple(metrics) if metrics is not None else METRICS
        self.completed = tuple(completed) if completed is not None else COMPLETED

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        reset_process_state()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        record_row(Path(config.hydra.sweep.dir) / "summary.csv",
                   job_row(config, job_return, self.metrics, self.completed))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = Path(config.hydra.sweep.dir) / "summary.csv"
        rows = read_rows(path)
        failed = [row for row in rows if row["status"] != "completed"]
        for row in rows:
            figures = " ".join(f"{key} {row.get(key, '')}" for key in self.metrics[:2])
            log.info("job %s [%s] %s %s %s", row["job"], row["overrides"], row["status"], figures,
                     row["error"])
        log.info("sweep summary: %s (%d jobs, %d failed)", path, len(rows), len(failed))
        if failed:
            raise SystemExit(1)
