"""A run's record: per-epoch metrics and the summary written to ``results.json``."""

from dataclasses import dataclass, field
from typing import Any

PROTOCOL = (
    "best_test_acc is the best epoch's test accuracy (the paper's protocol); "
    "final_test_acc is the last epoch's (the honest one)"
)


@dataclass
class RunRecord:
    """Accumulates epoch metrics; ``selection`` is the split that picks the best epoch."""

    parameters: int
    selection: str = "test"  # "val" when a validation split is held out
    history: list[dict[str, float]] = field(default_factory=list)
    wall_time_s: float = 0.0
    stopped_early: int | None = None  # the epoch early stopping ended the run after

    def add(self, metrics: dict[str, float], wall_time_s: float) -> bool:
        """Records an epoch; True when it is the best so far on the selection split."""
        key = f"{self.selection}_acc"
        best_before = max((epoch[key] for epoch in self.history), default=float("-inf"))
        self.history.append(dict(metrics) | {"wall_time_s": round(wall_time_s, 3)})  # at its end
        self.wall_time_s = wall_time_s
        return metrics[key] > best_before

    def summary(self, status: str = "running") -> dict[str, Any]:
        """What results.json holds: both accuracy protocols, size, time and the history."""
        if not self.history:
            return {"status": status, "epochs": 0, "parameters": self.parameters, "history": []}
        final = self.history[-1]
        best = max(self.history, key=lambda epoch: epoch[f"{self.selection}_acc"])
        best_test = max(self.history, key=lambda epoch: epoch["test_acc"])
        summary = {
            "status": status,
            "best_test_acc": best_test["test_acc"],
            "best_epoch": int(best_test["epoch"]),
            "final_test_acc": final["test_acc"],
            "final_test_top5": final["test_top5"],
            "final_test_loss": final["test_loss"],
            "epochs": int(final["epoch"]),
            "parameters": self.parameters,
            "wall_time_s": round(self.wall_time_s, 3),
            "train_images_per_s": final["train_throughput"],
            "protocol": PROTOCOL,
        }
        if self.stopped_early is not None:
            summary["stopped_early_after_epoch"] = self.stopped_early
        if self.selection == "val":
            summary |= {"best_val_acc": best["val_acc"], "best_val_epoch": int(best["epoch"]),
                        "test_acc_at_best_val": best["test_acc"]}
        return summary | {"history": self.history}
