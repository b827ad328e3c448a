"""Grouping runs by the overrides that differ between them, and summarising each group."""

import statistics
from dataclasses import dataclass

import numpy as np

from mgnet_cli.report.runs import Run

NOT_A_DIFFERENCE = ("seed", "resume", "dataset.root", "dataset.download", "trainer.device",
                    "hydra.")  # replicas and places, not experimental conditions


@dataclass(frozen=True)
class Group:
    """Completed runs that share every varying override but the seed."""

    label: str
    runs: tuple[Run, ...]

    def values(self, key: str) -> list[float]:
        return [float(run.results[key]) for run in self.runs if key in run.results]

    def mean_std(self, key: str) -> tuple[float, float]:
        """Mean and standard deviation over the runs that report ``key`` (NaN where none does)."""
        values = self.values(key)
        if not values:
            return float("nan"), float("nan")
        return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean test accuracy per epoch over the runs (epochs all runs reached)."""
        histories = [run.results.get("history", []) for run in self.runs]
        epochs = min(len(history) for history in histories)
        accuracy = np.array([[h[i]["test_acc"] for i in range(epochs)] for h in histories])
        return np.arange(1, epochs + 1), accuracy.mean(axis=0)


def varying_keys(runs: list[Run]) -> list[str]:
    """Override keys whose value is not the same in every run (seeds and paths excluded)."""
    keys = sorted({key for run in runs for key in run.overrides})
    return [key for key in keys if not key.startswith(NOT_A_DIFFERENCE)
            and len({run.overrides.get(key, "(default)") for run in runs}) > 1]


def group_runs(runs: list[Run]) -> list[Group]:
    """Completed runs grouped by the values of the overrides that vary over all ``runs``."""
    keys = varying_keys(runs)
    groups: dict[str, list[Run]] = {}
    for run in (run for run in runs if run.completed):
        label = ", ".join(f"{key}={run.overrides[key]}" for key in keys if key in run.overrides)
        label = label or ("defaults" if keys else "all runs")
        groups.setdefault(label, []).append(run)
    return [Group(label, tuple(members)) for label, members in groups.items()]


def summary_rows(groups: list[Group]) -> list[dict[str, float | int | str]]:
    """One row per group: mean and std over seeds of the accuracies, size, length and time."""
    rows = []
    for group in groups:
        best, best_std = group.mean_std("best_test_acc")
        final, final_std = group.mean_std("final_test_acc")
        rows.append({
            "group": group.label, "runs": len(group.runs),
            "seeds": " ".join(sorted({run.overrides.get("seed", "0") for run in group.runs})),
            "best_test_acc_mean": best, "best_test_acc_std": best_std,
            "final_test_acc_mean": final, "final_test_acc_std": final_std,
            "parameters": int(group.mean_std("parameters")[0]),
            "epochs": int(group.mean_std("epochs")[0]),
            "wall_time_s_mean": group.mean_std("wall_time_s")[0],
            "train_images_per_s_mean": group.mean_std("train_images_per_s")[0],  # the last epoch's
        })
    return rows
