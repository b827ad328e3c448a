"""Finding runs on disk: a run folder has ``results.json`` and/or Hydra's ``.hydra/`` record.

Files are read as data only (``json``, ``yaml.safe_load``, ``csv``): nothing read chooses what
code runs. A file that cannot be read or holds the wrong types makes its run ``unreadable`` with a
one-line reason naming the file; the other runs are reported as usual.
"""

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mgnet_cli.report.checks import COMMANDS, finished, json_kind, results_problem


class Unreadable(Exception):
    """A file of a run or sweep that the report cannot use; the message names the file."""


@dataclass
class Run:
    """One run as found on disk.

    ``command`` is ``train`` or ``solve``; ``status`` is what the run recorded (completed, running,
    failed, interrupted; converged, round_off, stalled, max_cycles, diverged for a solve), or missing (no results.json)
    or unreadable (a damaged file, named in ``error``).
    """

    folder: Path
    overrides: dict[str, str]  # the command-line overrides it ran with (key -> value)
    results: dict[str, Any] = field(default_factory=dict)
    status: str = "missing"
    error: str = ""
    command: str = "train"

    @property
    def completed(self) -> bool:
        """Whether the run's results go into a table."""
        return self.status not in ("missing", "unreadable") and finished(self.command, self.status)


@dataclass
class Survey:
    """What ``find_runs`` found: the runs, and other files or folders it could not use (path -> why)."""

    runs: list[Run]
    damaged: dict[Path, str] = field(default_factory=dict)


def one_line(message: object, width: int = 200) -> str:
    """A message on one line of at most ``width`` characters, control characters shown as ``?``
    (a file's text must not drive the terminal)."""
    line = "; ".join(part.strip() for part in str(message).splitlines() if part.strip())
    line = "".join(char if char.isprintable() else "?" for char in line)
    return line if len(line) <= width else line[:width - 1] + "…"


def read_text(path: Path, name: str) -> str:
    """The UTF-8 text of ``path``; ``name`` is how the reason calls the file."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unreadable(f"{name}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at "
                         f"offset {error.start})") from None
    except OSError as error:
        raise Unreadable(f"{name}: cannot be read ({error.strerror or error})") from None


def read_overrides(folder: Path) -> dict[str, str]:
    """``.hydra/overrides.yaml`` as ``{key: value}`` (empty when there is none)."""
    name = ".hydra/overrides.yaml"
    path = folder / name
    if not path.is_file():
        return {}
    try:
        items = yaml.safe_load(read_text(path, name))
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        raise Unreadable(f"{name}: not valid YAML ({one_line(error, 120)})") from None
    if items is None:
        return {}
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        shown = ("a list with other things than strings" if isinstance(items, list)
                 else "a mapping" if isinstance(items, dict) else json_kind(items))
        raise Unreadable(f"{name}: holds {shown}, not a list of key=value overrides")
    return dict(item.lstrip("+~").split("=", 1) for item in items if "=" in item)


def read_results(folder: Path) -> dict[str, Any] | None:
    """``results.json`` checked by ``results_problem`` (None when there is none)."""
    path = folder / "results.json"
    if not path.is_file():
        return None
    try:
        results = json.loads(read_text(path, "results.json"))
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise Unreadable(f"results.json: not valid JSON ({one_line(error, 120)})") from None
    problem = results_problem(results)
    if problem:
        raise Unreadable(problem)
    return results


def job_name(folder: Path) -> str:
    """The command Hydra recorded in ``.hydra/hydra.yaml`` (train when it says nothing usable):
    which table a run without usable results belongs beside."""
    try:
        record = yaml.safe_load(read_text(folder / ".hydra" / "hydra.yaml", "hydra.yaml"))
        name = record["hydra"]["job"]["name"]
    except (Unreadable, yaml.YAMLError, ValueError, RecursionError, TypeError, KeyError):
        return "train"
    return name if name in COMMANDS else "train"


def read_run(folder: Path) -> Run:
    """The run in ``folder``: its overrides and results, or why they cannot be used."""
    run = Run(folder, {})
    try:
        run.overrides = read_overrides(folder)
        results = read_results(folder)
    except Unreadable as error:
        run.status, run.error, run.command = "unreadable", str(error), job_name(folder)
        return run
    if results is None:
        run.command = job_name(folder)
        run.error = "no results.json (the job never reached training or was killed early)"
        return run
    run.results, run.command = results, results.get("command", "train")
    run.status = results.get("status") or "completed"
    run.error = one_line(results.get("error") or "")
    return run


def sweep_errors(path: Path) -> dict[str, str]:
    """The errors a sweep's ``summary.csv`` records, by job folder; Unreadable if it is damaged."""
    try:
        rows = list(csv.reader(io.StringIO(read_text(path, "summary.csv"), newline="")))
    except csv.Error as error:
        raise Unreadable(f"summary.csv: not CSV ({one_line(error, 120)})") from None
    if not rows or "folder" not in rows[0]:
        raise Unreadable("summary.csv: no header with a folder column")
    header = rows[0]
    short = [line for line, row in enumerate(rows[1:], 2) if len(row) != len(header)]
    if short:
        raise Unreadable(f"summary.csv: line {short[0]} has {len(rows[short[0] - 1])} fields, the header "
                         f"{len(header)} (truncated or garbled); the runs' own results.json are used")
    if "error" not in header:
        return {}
    records = [dict(zip(header, row)) for row in rows[1:]]
    return {record["folder"]: one_line(record["error"]) for record in records if record["error"]}


def survey(folder: Path, found: dict[Path, Run], damaged: dict[Path, str]) -> None:
    """Adds the runs in or below ``folder`` to ``found`` and the files it cannot use to ``damaged``."""
    candidates = {path.parent for path in folder.rglob("results.json")}
    candidates |= {path.parent for path in folder.rglob(".hydra") if path.is_dir()}
    if not candidates:
        damaged[folder] = "no run folders (results.json or .hydra/) in it"
    errors: dict[str, str] = {}
    for summary in sorted(folder.rglob("summary.csv")):
        try:
            errors |= sweep_errors(summary)
        except Unreadable as error:
            damaged[summary.parent] = str(error)
    for candidate in sorted(candidates):
        run = read_run(candidate)
        if not run.error and str(candidate) in errors:
            run.error = errors[str(candidate)]
        found[candidate.resolve()] = run


def find_runs(folders: list[Path]) -> Survey:
    """Every run in or below ``folders`` (single runs and sweep jobs, in any mix), sorted by path."""
    found: dict[Path, Run] = {}
    damaged: dict[Path, str] = {}
    for folder in folders:
        if not folder.exists():
            raise FileNotFoundError(f"{folder} does not exist")
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder} is a file, not a run or sweep folder")
        survey(folder, found, damaged)
    return Survey(sorted(found.values(), key=lambda run: str(run.folder)), damaged)
