"""Report figures that stay readable: 25 groups, parameter counts 0.3 % apart, float labels."""

import warnings
from itertools import combinations
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from mgnet_cli.report.plots import DPI, accuracy_curves, accuracy_vs_parameters, residual_histories
from mgnet_cli.report.runs import Run
from mgnet_cli.report.table import group_runs, shown_values

GROUPS = 25
CLOSE = np.linspace(8_278_794, 8_301_924, GROUPS).astype(int)  # as a width sweep around MgNet-256


def labels() -> list[str]:
    """Long labels, as a sweep over three keys makes them."""
    return [f"smoother=chebyshev, optimizer.lr={0.01 * (i + 1):g}, model.channels=[{256 + i},{256 + i}] #{i}"
            for i in range(GROUPS)]


def drawn(plot, data: dict, path: Path):
    """The figure ``plot`` saved to ``path``, drawn with every warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = plot(data, path)
    figure.canvas.draw()
    return figure


def saved_window(figure, path: Path) -> tuple[float, float, float, float]:
    """What the PNG shows, in figure inches: (left, bottom, right, top)."""
    height, width = matplotlib.image.imread(path).shape[:2]
    tight = figure.get_tightbbox(figure.canvas.get_renderer())
    pad = 0.1  # savefig's pad_inches
    return tight.x0 - pad, tight.y0 - pad, tight.x0 - pad + width / DPI, tight.y0 - pad + height / DPI


def assert_legend_inside(figure, path: Path) -> None:
    legend = figure.axes[0].get_legend()
    box = legend.get_window_extent(figure.canvas.get_renderer()).transformed(figure.dpi_scale_trans.inverted())
    left, bottom, right, top = saved_window(figure, path)
    assert left <= box.x0 and box.x1 <= right and bottom <= box.y0 and box.y1 <= top
    assert box.x0 >= figure.axes[0].get_position().x1 * figure.get_figwidth()  # beside the axes, not on them
    assert len(legend.get_texts()) == GROUPS


def assert_tick_labels_apart(axes) -> None:
    """Every x tick label drawn is readable: non-empty ones do not overlap each other."""
    renderer = axes.figure.canvas.get_renderer()
    low, high = sorted(axes.get_xlim())
    shown = [label for label in axes.xaxis.get_ticklabels(which="both")
             if label.get_visible() and label.get_text() and low <= label.get_position()[0] <= high]
    assert len(shown) >= 2
    boxes = [label.get_window_extent(renderer) for label in shown]
    for first, second in combinations(boxes, 2):
        assert not first.overlaps(second), [label.get_text() for label in shown]


def test_accuracy_against_close_parameter_counts(tmp_path):
    path = tmp_path / "sizes.png"
    points = {label: (int(count), 0.9 + 0.001 * i, 0.002)
              for i, (label, count) in enumerate(zip(labels(), CLOSE))}
    figure = drawn(accuracy_vs_parameters, points, path)
    axes = figure.axes[0]
    assert axes.get_xscale() == "linear"  # log ticks over 0.3 % print over each other
    assert_tick_labels_apart(axes)
    assert_legend_inside(figure, path)
    handles, _ = axes.get_legend_handles_labels()
    looks = {(tuple(handle.lines[0].get_color()), handle.lines[0].get_marker()) for handle in handles}
    assert len(looks) == GROUPS


def test_parameter_counts_over_decades_get_a_log_axis_with_readable_ticks(tmp_path):
    points = {f"model.channels={c}": (c, 0.5, 0.0) for c in (1_000, 30_000, 800_000, 8_300_000)}
    figure = drawn(accuracy_vs_parameters, points, tmp_path / "sizes.png")
    assert figure.axes[0].get_xscale() == "log"
    assert_tick_labels_apart(figure.axes[0])


def test_25_accuracy_curves_look_different_and_the_legend_fits(tmp_path):
    path = tmp_path / "curves.png"
    epochs = np.arange(1, 31)
    curves = {label: (epochs, 1 - 0.5 * np.exp(-epochs / (5 + i))) for i, label in enumerate(labels())}
    figure = drawn(accuracy_curves, curves, path)
    assert_legend_inside(figure, path)
    lines = figure.axes[0].get_legend_handles_labels()[0]
    looks = [(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines]
    assert len(set(looks)) == GROUPS
    assert len({colour for colour, _, _ in looks[:20]}) == 20  # no colour comes back after 10


def test_residual_histories_on_a_log_axis(tmp_path):
    path = tmp_path / "residuals.png"
    cycles = np.arange(12)
    curves = {label: (cycles, (0.1 + 0.02 * i) ** cycles) for i, label in enumerate(labels())}
    curves[labels()[0]] = (cycles, np.array([1.0, 0.1, 0.0, np.nan, np.inf, *[1e-3] * 7]))  # a broken run
    figure = drawn(residual_histories, curves, path)
    assert figure.axes[0].get_yscale() == "log"
    assert_legend_inside(figure, path)
    assert matplotlib.image.imread(path).shape[1] > 11 * DPI  # the legend widened the image


def run(lr: str, seed: int) -> Run:
    history = [{"epoch": 1, "test_acc": 0.5}]
    results = {"status": "completed", "best_test_acc": 0.5, "final_test_acc": 0.5, "parameters": 10,
               "epochs": 1, "history": history}
    return Run(Path(f"/runs/{lr}-{seed}"), {"optimizer.lr": lr, "seed": str(seed)}, results, "completed")


def test_float_labels_are_rounded_but_kept_apart(tmp_path):
    runs = [run(lr, seed) for lr in ("0.1", "0.30000000000000004", "1e-05") for seed in (0, 1)]
    labels = [group.label for group in group_runs(runs)]
    assert labels == ["optimizer.lr=0.1", "optimizer.lr=0.3", "optimizer.lr=1e-05"]
    figure = drawn(accuracy_curves, {label: (np.arange(1, 3), np.array([0.4, 0.5])) for label in labels},
                   tmp_path / "curves.png")
    assert [text.get_text() for text in figure.axes[0].get_legend().get_texts()] == labels
    both = shown_values({"0.3", "0.30000000000000004"})  # only full precision keeps these apart
    assert both == {"0.3": "0.3", "0.30000000000000004": "0.30000000000000004"}
    assert shown_values({"4", "abc", "[0.1,0.2]", "nan"}) == {v: v for v in ("4", "abc", "[0.1,0.2]", "nan")}


@pytest.mark.parametrize("count", [1, 3])
def test_few_groups_still_draw_cleanly(count, tmp_path):
    points = {f"seed group {i}": (8_278_794 + i, 0.5, 0.0) for i in range(count)}
    figure = drawn(accuracy_vs_parameters, points, tmp_path / "sizes.png")
    assert_tick_labels_apart(figure.axes[0])
