"""Grouping runs by the overrides that differ between them, and summarising each group."""

import math
import statistics
from dataclasses import dataclass

import numpy as np

from mgnet_cli.report.runs import Run
from mgnet_cli.schema import PLACES, REPLICAS

NOT_A_DIFFERENCE = PLACES + REPLICAS  # replicas and places, not conditions
SEED_KEYS = {"train": "seed", "solve": "problem.seed"}


@dataclass(frozen=True)
class Group:
    """Completed runs of one command that share every varying override but the seed."""

    label: str
    runs: tuple[Run, ...]

    def mean_std(self, key: str) -> tuple[float, float]:
        """Mean and standard deviation over the runs that report ``key`` (NaN where none does;
        the deviation is NaN where a value is not finite, as a diverged solve's factor)."""
        values = [float(run.results[key]) for run in self.runs if run.results.get(key) is not None]
        if not values:
            return float("nan"), float("nan")
        if len(values) == 1:
            return values[0], 0.0
        spread = statistics.stdev(values) if all(map(math.isfinite, values)) else float("nan")
        return statistics.fmean(values), spread

    def means(self, *keys: str) -> dict[str, float]:
        """``<key>_mean`` of each key: a table's columns."""
        return {f"{key}_mean": self.mean_std(key)[0] for key in keys}

    def spread(self, key: str) -> dict[str, float]:
        """``<key>_mean`` and ``<key>_std``."""
        return dict(zip((f"{key}_mean", f"{key}_std"), self.mean_std(key)))

    def heading(self) -> dict[str, int | str]:
        """A row's first columns: the group's label, its run count and its seeds."""
        key = SEED_KEYS[self.runs[0].command]
        return {"group": self.label, "runs": len(self.runs),
                "seeds": " ".join(sorted({run.overrides.get(key, "0") for run in self.runs}))}

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean test accuracy per epoch over the runs (epochs all runs reached)."""
        histories = [run.results.get("history", []) for run in self.runs]
        epochs = min(len(history) for history in histories)
        accuracy = np.array([[h[i]["test_acc"] for i in range(epochs)] for h in histories])
        return np.arange(1, epochs + 1), accuracy.reshape(len(histories), epochs).mean(axis=0)

    def residual_curve(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Geometric mean relative residual per cycle over the runs (cycles all runs reached);
        None when no run recorded its history."""
        histories = [run.results["relative_residuals"] for run in self.runs
                     if run.results.get("relative_residuals")]
        if not histories:
            return None
        cycles = min(len(history) for history in histories)
        values = np.array([history[:cycles] for history in histories], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.arange(cycles), np.exp(np.log(values).mean(axis=0))


def rounded(value: str, digits: int | None) -> str:
    """An override value as a label shows it: a float to ``digits`` significant digits (None:
    the shortest text that reads back as the same float)."""
    try:
        int(value)
        return value
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):
        return value
    return repr(number) if digits is None else f"{number:.{digits}g}"


def shown_values(values: set[str]) -> dict[str, str]:
    """Each value -> its label: floats to the fewest digits (6 or more) that keep them apart, so
    ``0.30000000000000004`` reads 0.3 unless 0.3 is a value too."""
    for digits in (*range(6, 16), None):
        shown = {value: rounded(value, digits) for value in values}
        if len(set(shown.values())) == len(values):
            return shown
    return {value: value for value in values}


def varying_keys(runs: list[Run]) -> list[str]:
    """Override keys whose value is not the same in every run (seeds and paths excluded)."""
    keys = sorted({key for run in runs for key in run.overrides})
    return [key for key in keys if not key.startswith(NOT_A_DIFFERENCE)
            and len({run.overrides.get(key, "(default)") for run in runs}) > 1]


def group_runs(runs: list[Run], command: str = "train") -> list[Group]:
    """The completed runs of ``command`` grouped by the overrides that vary between its runs
    (failed ones too); when none varies, the one group is labelled with the overrides they share."""
    runs = [run for run in runs if run.command == command]
    completed = [run for run in runs if run.completed]
    keys = varying_keys(runs) or sorted({key for run in completed for key in run.overrides
                                         if not key.startswith(NOT_A_DIFFERENCE)})
    shown = {key: shown_values({run.overrides[key] for run in runs if key in run.overrides})
             for key in keys}
    groups: dict[str, list[Run]] = {}
    for run in completed:
        label = ", ".join(f"{key}={shown[key][run.overrides[key]]}" for key in keys if key in run.overrides)
        groups.setdefault(label or "defaults", []).append(run)
    return [Group(label, tuple(members)) for label, members in groups.items()]


def summary_rows(groups: list[Group]) -> list[dict[str, float | int | str]]:
    """One row per training group: mean and std over seeds of the accuracies, size, length, time."""
    return [group.heading() | group.spread("best_test_acc") | group.spread("final_test_acc")
            | {"parameters": int(group.mean_std("parameters")[0]), "epochs": int(group.mean_std("epochs")[0])}
            | group.means("wall_time_s", "train_images_per_s")  # the last epoch's throughput
            for group in groups]


def solve_rows(groups: list[Group]) -> list[dict[str, float | int | str]]:
    """One row per solve group: what the runs recorded, mean (and std of the factor) over seeds;
    NaN where no run of the group recorded a key."""
    return [group.heading() | {"status": " ".join(sorted({run.status for run in group.runs})),
                               "n": group.mean_std("n")[0]}
            | group.spread("convergence_factor")
            | group.means("cycles", "final_relative_residual", "setup_time_s", "solve_time_s")
            for group in groups]
