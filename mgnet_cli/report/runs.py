"""Finding runs on disk: a run folder has ``results.json`` and/or Hydra's ``.hydra/`` record."""

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Run:
    """One training run as found on disk; ``status`` is completed, running, failed or missing."""

    folder: Path
    overrides: dict[str, str]  # the command-line overrides it ran with (key -> value)
    results: dict[str, Any] = field(default_factory=dict)
    status: str = "missing"
    error: str = ""

    @property
    def completed(self) -> bool:
        return self.status == "completed"


def read_overrides(folder: Path) -> dict[str, str]:
    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    overrides = yaml.safe_load(path.read_text()) or []
    return dict(item.lstrip("+~").split("=", 1) for item in overrides if "=" in item)


def read_run(folder: Path) -> Run:
    run = Run(folder, read_overrides(folder))
    path = folder / "results.json"
    if path.is_file():
        try:
            run.results = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            run.status, run.error = "failed", f"unreadable results.json: {error}"
            return run
        run.status = run.results.get("status", "completed")
        run.error = run.results.get("error", "")
    else:
        run.error = "no results.json (the job never reached training or was killed early)"
    return run


def sweep_errors(folder: Path) -> dict[str, str]:
    """Errors recorded in a sweep's summary.csv, by job folder."""
    path = folder / "summary.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as file:
        return {row["folder"]: row["error"] for row in csv.DictReader(file) if row.get("error")}


def find_runs(folders: list[Path]) -> list[Run]:
    """Every run in or below ``folders`` (single runs and sweep jobs, in any mix), sorted by path."""
    found: dict[Path, Run] = {}
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder")
        candidates = {p.parent for p in folder.rglob("results.json")}
        candidates |= {p.parent for p in folder.rglob(".hydra") if p.is_dir()}
        errors = {}
        for summary in [folder, *folder.rglob("*")]:
            if summary.is_dir():
                errors |= sweep_errors(summary)
        for candidate in sorted(candidates):
            run = read_run(candidate)
            if not run.error and str(candidate) in errors:
                run.error = errors[str(candidate)]
            found[candidate.resolve()] = run
    return sorted(found.values(), key=lambda run: str(run.folder))
