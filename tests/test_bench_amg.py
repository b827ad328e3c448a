"""scripts/bench_amg.py: one line and exit code 2 without PyAMG; a small run prints the whole table."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_amg.py"


def test_without_pyamg_it_says_so_in_one_line_and_exits_2(tmp_path):
    (tmp_path / "pyamg").mkdir()
    (tmp_path / "pyamg" / "__init__.py").write_text("raise ImportError('no pyamg here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "mgnet[bench]" in lines[0], done.stderr


@pytest.mark.slow
def test_a_quick_run_prints_every_method_on_every_problem(tmp_path):
    pytest.importorskip("pyamg")
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--figures", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].count("|") == 15 and "PyAMG RS 2nd pass" in rows[0] and "learned, line GS" in rows[0]
    assert "Black Box, stencil-aware" in rows[0] and "PyAMG RS 2nd pass, CG" in rows[0]
    assert "Black Box, line GS, CG" in rows[0]
    assert "mgnet AMG RS, GS" in rows[0] and "mgnet AMG RS, GS, CG" in rows[0]
    assert len(rows) == 1 + 9 + 1 + 2 * 13  # header, 9 problems, time header, 2 problems x 13 methods
    amg = rows[0].split(" | ").index("mgnet AMG RS, GS")
    factors = [float(row.split(" | ")[amg]) for row in rows[1:10]]
    assert all(0 < factor < 0.9 for factor in factors), factors  # mgnet's AMG converges on every problem
    assert {path.name for path in tmp_path.glob("*.png")} == {"amg_residual_histories.png",
                                                               "learned_prolongation.png"}


def test_setup_sizes_prints_one_row_per_size_with_its_setup_time(tmp_path):
    pytest.importorskip("pyamg")
    done = subprocess.run([sys.executable, str(SCRIPT), "--setup-sizes", "15", "31"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line.split(" | ") for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0][0] == "| n" and [row[1] for row in rows[1:]] == ["225", "961"]
    for row in rows[1:]:
        hierarchy, build, total = (float(cell) for cell in row[3:6])
        assert total == pytest.approx(hierarchy + build, abs=0.02) and total > 0
