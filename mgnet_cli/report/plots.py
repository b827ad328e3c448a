"""PNG figures: confusion matrices, accuracy curves, accuracy against parameter count."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (chosen here, not at import time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_heatmap(matrix: np.ndarray, classes: Sequence[str], title: str, path: Path) -> None:
    """Row-normalised confusion matrix (true class down, predicted across) as a heat map."""
    plt = _pyplot()
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    size = max(4.0, 0.45 * len(classes) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(share, cmap="viridis", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true class")
    if len(classes) <= 30:
        axes.set_xticks(range(len(classes)), classes, rotation=90, fontsize=8)
        axes.set_yticks(range(len(classes)), classes, fontsize=8)
        if len(classes) <= 12:
            for i in range(len(classes)):
                for j in range(len(classes)):
                    axes.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                              color="white" if share[i, j] < 0.5 else "black")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _wrap(label: str, width: int = 48) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(label, width, break_on_hyphens=False)) or label


def accuracy_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """Test accuracy (%) per epoch, one line per group: ``{label: (epochs, accuracy)}``."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(11, 4.5))
    for label, (epochs, accuracy) in curves.items():
        axes.plot(epochs, 100 * accuracy, marker="o" if len(epochs) < 20 else None, label=_wrap(label))
    axes.set_xlabel("epoch")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_ylabel("test accuracy (%)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    axes.set_title("Test accuracy per epoch (mean over seeds)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def accuracy_vs_parameters(points: dict[str, tuple[int, float, float]], path: Path) -> None:
    """Final test accuracy (%) against parameters: ``{label: (parameters, mean, std)}``."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(11, 4.5))
    for number, (label, (parameters, mean, std)) in enumerate(points.items(), 1):
        axes.errorbar(parameters, 100 * mean, yerr=100 * std, fmt="o", capsize=3,
                      label=f"{number}: {_wrap(label)}")
        axes.annotate(str(number), (parameters, 100 * mean), textcoords="offset points",
                      xytext=(5, 5), fontsize=8)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    axes.set_xscale("log")
    axes.set_xlabel("parameters")
    axes.set_ylabel("final test accuracy (%)")
    axes.grid(alpha=0.3, which="both")
    axes.set_title("Final test accuracy against model size")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
