"""``mgnet report`` on ``mgnet solve`` runs: their own table and residual plot, beside training runs,
with only the files it wrote named."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import cli, copy_run


@pytest.fixture(scope="module")
def made(tiny_run, tmp_path_factory) -> Path:
    """A real solve sweep (two smoothers, two seeds, n=31) and a real training run."""
    root = tmp_path_factory.mktemp("made")
    cli("solve", "-m", "problem.n=31", "solver/smoother=jacobi,gauss_seidel_rb", "problem.seed=0,1",
          f"hydra.sweep.dir={root / 'solves'}", cwd=root)
    copy_run(tiny_run, root / "train")
    return root


def report(*arguments: str, cwd: Path) -> tuple[str, list[Path]]:
    """What ``mgnet report`` printed before its last line, and the files that line names."""
    out = cli("report", *arguments, cwd=cwd).stdout
    body, written = out.rstrip("\n").rsplit("\n", 1)
    assert written.startswith("written: ")
    return body, [Path(name) for name in written.removeprefix("written: ").split(", ")]


def factors(folder: Path, smoother: str) -> list[float]:
    runs = [json.loads(path.read_text()) for path in sorted(folder.glob("*/results.json"))]
    return [run["convergence_factor"] for run in runs if run["smoother"] == smoother]


def test_a_solve_sweep_gets_its_table_and_residual_plot(made, tmp_path):
    output = tmp_path / "report"
    body, written = report(str(made / "solves"), "--output", str(output), cwd=tmp_path)
    assert "0 training and 4 solve runs tabulated of 4 found" in body
    assert "## Training runs" not in body and "accuracy_curves.png" not in body
    assert sorted(path.name for path in written) == ["report.md", "report_solve.csv", "residual_histories.png"]
    assert sorted(path.name for path in output.iterdir()) == sorted(path.name for path in written)
    with (output / "report_solve.csv").open() as file:
        rows = {row["group"]: row for row in csv.DictReader(file)}
    assert set(rows) == {"solver/smoother=jacobi", "solver/smoother=gauss_seidel_rb"}
    for smoother in ("jacobi", "gauss_seidel_rb"):
        row, recorded = rows[f"solver/smoother={smoother}"], factors(made / "solves", smoother)
        assert row["seeds"] == "0 1" and row["status"] == "converged" and float(row["n"]) == 31
        assert float(row["convergence_factor_mean"]) == pytest.approx(sum(recorded) / 2)
        assert f"| solver/smoother={smoother} | 2 | 0 1 | 31 | converged | " in body
    assert (output / "residual_histories.png").read_bytes()[:4] == b"\x89PNG"


def test_training_and_solve_runs_in_one_report(made, tmp_path):
    output = tmp_path / "both"
    body, written = report(str(made / "solves"), str(made / "train"), "--output", str(output), cwd=tmp_path)
    assert "1 training and 4 solve runs tabulated of 5 found" in body
    assert "## Training runs" in body and "## Solve runs" in body and "## Not included\n\nnone" in body
    assert sorted(path.name for path in written) == sorted(
        ["report.md", "report.csv", "accuracy_curves.png", "accuracy_vs_parameters.png",
         "report_solve.csv", "residual_histories.png"])
    assert all(path.stat().st_size > 0 for path in written)
    for name in ("accuracy_curves.png", "accuracy_vs_parameters.png", "residual_histories.png"):
        assert f"]({name})" in body


def edit(path: Path, **changes: object) -> None:
    results = json.loads(path.read_text())
    for key, value in changes.items():
        if value is KeyError:
            results.pop(key)
        else:
            results[key] = value
    path.write_text(json.dumps(results))


def test_solve_results_are_read_defensively(made, tmp_path):
    """Keys another version may drop show a dash, added ones are ignored, a diverged solve's
    infinite factor is shown as such; with no residual history anywhere no plot is claimed."""
    sweep = tmp_path / "solves"
    shutil.copytree(made / "solves", sweep)
    for path in sweep.glob("*/results.json"):
        edit(path, relative_residuals=KeyError, setup_time_s=KeyError, extra_key={"any": [1, 2]})
    for path in sweep.glob("*/results.json"):
        if json.loads(path.read_text())["smoother"] == "jacobi":
            edit(path, status="diverged", convergence_factor=float("inf"))
    body, written = report(str(sweep), cwd=tmp_path)
    assert "0 training and 4 solve runs tabulated of 4 found" in body
    assert sorted(path.name for path in written) == ["report.md", "report_solve.csv"]
    assert "residual_histories.png" not in body and not (sweep / "residual_histories.png").exists()
    assert "| solver/smoother=jacobi | 2 | 0 1 | 31 | diverged | inf ± — | " in body
    gauss_seidel = next(line for line in body.splitlines() if line.startswith("| solver/smoother=gauss"))
    assert gauss_seidel.split(" | ")[-2] == "—"  # no setup time recorded
