"""PNG figures: confusion matrices, accuracy curves, accuracy against size, residual histories.

Every figure is drawn the same way (``figure_file``): a ``Figure`` on its own Agg canvas (no pyplot,
so no global backend and no figure registry to close), saved atomically and cropped to what was
drawn, so a legend outside the axes is kept whole however many groups there are.
"""

import contextlib
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mgnet_cli.storage import write_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 120
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@contextlib.contextmanager
def figure_file(path: Path, size: tuple[float, float], root: Path | None = None) -> Iterator["Axes"]:
    """Axes to draw on; when the block ends, the figure is written to ``path`` as a PNG (no link
    followed below ``root``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    FigureCanvasAgg(figure)
    yield figure.subplots()
    write_atomic(path, lambda file: figure.savefig(file, format="png", dpi=DPI, bbox_inches="tight"), root)


def style(index: int) -> dict[str, Any]:
    """Colour, marker and line style of the ``index``-th group: 20 colours (tab20, its dark half
    first), then the marker and line style change, so no two of 160 groups look alike."""
    import matplotlib

    tab20 = matplotlib.colormaps["tab20"].colors
    colours = tab20[0::2] + tab20[1::2]
    turn = index // len(colours)
    return {"color": colours[index % len(colours)], "marker": MARKERS[turn % len(MARKERS)],
            "linestyle": LINE_STYLES[turn % len(LINE_STYLES)]}


def wrap(label: str, width: int = 48) -> str:
    """A legend label over lines of at most ``width`` characters."""
    return "\n".join(textwrap.wrap(label, width, break_on_hyphens=False)) or label


def outside_legend(axes: "Axes", entries: int) -> None:
    """The legend to the right of the axes, in two columns beyond 20 entries."""
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
                ncols=1 if entries <= 20 else 2)


def parameter_axis(axes: "Axes", counts: Sequence[int]) -> None:
    """A log axis when the counts span a decade or more; else a linear one (log ticks of a narrow
    range would print over each other). Labels are whole numbers with thousands separators."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    low, high = min(counts), max(counts)
    if low > 0 and high >= 10 * low:
        axes.set_xscale("log")
        axes.xaxis.set_minor_formatter(NullFormatter())
    else:
        axes.xaxis.set_major_locator(MaxNLocator(nbins=5))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))


def confusion_heatmap(matrix: np.ndarray, classes: Sequence[str], title: str, path: Path,
                      root: Path | None = None) -> "Figure":
    """Row-normalised confusion matrix (true class down, predicted across) as a heat map, written
    to ``path`` (no link followed below ``root``)."""
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    size = max(4.0, 0.45 * len(classes) + 2)
    with figure_file(path, (size + 1, size), root) as axes:
        image = axes.imshow(share, cmap="viridis", vmin=0, vmax=1)
        axes.figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true class")
        if len(classes) <= 30:
            axes.set_xticks(range(len(classes)), classes, rotation=90, fontsize=8)
            axes.set_yticks(range(len(classes)), classes, fontsize=8)
        if len(classes) <= 12:
            for i in range(len(classes)):
                for j in range(len(classes)):
                    axes.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                              color="white" if share[i, j] < 0.5 else "black")
        axes.set(xlabel="predicted", ylabel="true", title=title)
    return axes.figure


def line_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, xlabel: str, ylabel: str,
                title: str, log: bool = False) -> "Figure":
    """One line per group, ``{label: (x, y)}``, over whole numbers (epochs, cycles); ``log``: on a log
    axis, where values it cannot show (zero, negative, NaN, infinite) leave a gap."""
    with figure_file(path, (11, 4.5)) as axes:
        for index, (label, (x, y)) in enumerate(curves.items()):
            shown = np.where(np.isfinite(y) & (y > 0), y, np.nan) if log else y
            axes.plot(x, shown, label=wrap(label), markevery=max(1, len(x) // 15), **style(index))
        if log:
            axes.set_yscale("log")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
        axes.grid(alpha=0.3, which="both" if log else "major")
        outside_legend(axes, len(curves))
    return axes.figure


def accuracy_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> "Figure":
    """Test accuracy (%) per epoch, one line per group: ``{label: (epochs, accuracy)}``."""
    return line_figure({label: (epochs, 100 * accuracy) for label, (epochs, accuracy) in curves.items()}, path,
                       "epoch", "test accuracy (%)", "Test accuracy per epoch (mean over seeds)")


def accuracy_vs_parameters(points: dict[str, tuple[int, float, float]], path: Path) -> "Figure":
    """Final test accuracy (%) against parameters: ``{label: (parameters, mean, std)}``."""
    with figure_file(path, (11, 4.5)) as axes:
        for index, (label, (parameters, mean, std)) in enumerate(points.items()):
            look = style(index)
            axes.errorbar(parameters, 100 * mean, yerr=100 * std, capsize=3, linestyle="none",
                          color=look["color"], marker=look["marker"], label=f"{index + 1}: {wrap(label)}")
            axes.annotate(str(index + 1), (parameters, 100 * mean), textcoords="offset points",
                          xytext=(5, 5), fontsize=8)
        parameter_axis(axes, [parameters for parameters, _, _ in points.values()])
        axes.set(xlabel="parameters", ylabel="final test accuracy (%)",
                 title="Final test accuracy against model size")
        axes.grid(alpha=0.3, which="both")
        outside_legend(axes, len(points))
    return axes.figure


def residual_histories(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> "Figure":
    """Relative residual per cycle on a log axis, one line per group: ``{label: (cycles, residual)}``."""
    return line_figure(curves, path, "cycle", "||f - Au|| / ||f||",
                       "Relative residual per cycle (geometric mean over seeds)", log=True)


def drawable(residual: np.ndarray) -> bool:
    """Whether a residual history has a value a log axis can show."""
    return bool(np.any(np.isfinite(residual) & (residual > 0)))


def residual_history(relative_residuals: Sequence[float], tol: float, title: str, path: Path) -> None:
    """One solve's relative residual per cycle on a log scale, with the tolerance (``mgnet solve``)."""
    from matplotlib.ticker import MaxNLocator

    with figure_file(path, (6, 4)) as axes:
        axes.semilogy(range(len(relative_residuals)), relative_residuals, "o-", label="||f - Au|| / ||f||")
        axes.axhline(tol, color="grey", linestyle="--", label=f"tol {tol:g}")
        axes.set(xlabel="cycle", ylabel="relative residual", title=title)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
