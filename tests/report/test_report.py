"""``mgnet report``: grouping by differing overrides, mean ± std over seeds, failures listed."""

import csv
import json
from pathlib import Path

import pytest
import yaml

from mgnet_cli.report.document import write_report
from mgnet_cli.report.runs import find_runs
from mgnet_cli.report.table import group_runs, varying_keys


def make_run(folder: Path, overrides: list[str], accuracies: list[float] | None, parameters: int = 1000,
             status: str = "completed", speed: float | None = None) -> None:
    """A run folder as `mgnet train` leaves it: .hydra/overrides.yaml and results.json."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if accuracies is None:
        return
    history = [{"epoch": i + 1, "test_acc": acc} for i, acc in enumerate(accuracies)]
    (folder / "results.json").write_text(json.dumps({
        "status": status, "best_test_acc": max(accuracies), "final_test_acc": accuracies[-1],
        "parameters": parameters, "epochs": len(accuracies), "wall_time_s": 10.0, "history": history,
        **({"error": "loss is nan"} if status == "failed" else {}),
        **({"train_images_per_s": speed} if speed is not None else {}),
    }))


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "sweep"
    make_run(root / "0", ["smoother=resnet", "seed=0"], [0.5, 0.7], 100, speed=1000.0)
    make_run(root / "1", ["smoother=resnet", "seed=1"], [0.6, 0.5], 100, speed=1200.0)
    make_run(root / "2", ["smoother=chebyshev", "seed=0"], [0.4, 0.8], 102)
    make_run(root / "3", ["smoother=chebyshev", "seed=1"], [0.1], 102, status="failed")
    make_run(root / "4", ["smoother=densenet", "seed=0"], None)  # killed before results.json
    return root


def test_groups_by_the_overrides_that_differ_and_averages_over_seeds(sweep):
    runs = find_runs([sweep]).runs
    assert len(runs) == 5 and [run.status for run in runs].count("completed") == 3
    assert varying_keys(runs) == ["smoother"]
    groups = {group.label: group for group in group_runs(runs)}
    assert set(groups) == {"smoother=resnet", "smoother=chebyshev"}
    best, best_std = groups["smoother=resnet"].mean_std("best_test_acc")
    assert best == pytest.approx(0.65) and best_std == pytest.approx(0.0707, abs=1e-4)
    final, _ = groups["smoother=resnet"].mean_std("final_test_acc")
    assert final == pytest.approx(0.6)
    epochs, curve = groups["smoother=resnet"].curve()
    assert list(epochs) == [1, 2] and curve.tolist() == pytest.approx([0.55, 0.6])


def test_report_files_list_missing_and_failed_runs(sweep, tmp_path):
    output = tmp_path / "report"
    markdown, written = write_report(find_runs([sweep]), output)
    assert "| smoother=resnet | 2 | 0 1 | 65.00 ± 7.07 | 60.00 ± 14.14 | 100 | 2 | 10.0 | 1100 |" in markdown
    assert "| smoother=chebyshev | 1 | 0 | 80.00 ± 0.00 | 80.00 ± 0.00 | 102 | 2 | 10.0 | — |" in markdown
    assert "failed: " in markdown and "loss is nan" in markdown and "missing: " in markdown
    with (output / "report.csv").open() as file:
        rows = {row["group"]: row for row in csv.DictReader(file)}
    assert float(rows["smoother=chebyshev"]["final_test_acc_mean"]) == pytest.approx(0.8)
    assert sorted(path.name for path in written) == sorted(path.name for path in output.iterdir())
    for plot in ("accuracy_curves.png", "accuracy_vs_parameters.png"):
        assert (output / plot).read_bytes()[:4] == b"\x89PNG" and (output / plot).stat().st_size > 10_000


def test_single_runs_and_sweeps_mix(sweep, tmp_path):
    single = tmp_path / "single"
    make_run(single, ["model.channels=16"], [0.3])
    runs = find_runs([sweep, single]).runs
    labels = {group.label for group in group_runs(runs)}
    assert "model.channels=16" in labels and len(labels) == 3
