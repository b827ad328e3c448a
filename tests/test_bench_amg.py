"""scripts/bench_amg.py: one line and exit code 2 without PyAMG; a small run prints the whole table;
hypre's anchor (scripts/hypre_anchor.py, in Debian's Python) parsed, skipped with one note where absent,
and run where present."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_amg.py"
HYPRE_COLUMNS = ["hypre BoomerAMG", "hypre BoomerAMG, CG", "hypre HMIS ext+i", "hypre HMIS ext+i, CG"]


@pytest.fixture(scope="module")
def bench():
    """scripts/bench_amg.py as a module (it needs PyAMG)."""
    pytest.importorskip("pyamg")
    spec = importlib.util.spec_from_file_location("bench_amg", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def poisson(n: int):
    """The 5-point Laplacian on an n x n grid, built here with scipy.sparse.kron (not by mgnet)."""
    import scipy.sparse as sparse

    line = sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n))
    return (sparse.kron(line, sparse.eye(n)) + sparse.kron(sparse.eye(n), line)).tocsr()


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
    hypre = "hypre BoomerAMG" in rows[0]  # present where Debian's petsc4py is; else one note says so
    assert hypre or any(line.startswith("hypre skipped: ") for line in done.stdout.splitlines())
    methods = 13 + (len(HYPRE_COLUMNS) if hypre else 0)
    assert rows[0].count("|") == methods + 2 and "PyAMG RS 2nd pass" in rows[0] and "learned, line GS" in rows[0]
    assert "Black Box, stencil-aware" in rows[0] and "PyAMG RS 2nd pass, CG" in rows[0]
    assert "Black Box, line GS, CG" in rows[0]
    assert "mgnet AMG RS, GS" in rows[0] and "mgnet AMG RS, GS, CG" in rows[0]
    assert len(rows) == 1 + 9 + 1 + 2 * methods  # header, 9 problems, time header, 2 problems x the methods
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


def test_setup_table_without_hypre_leaves_its_columns_out_with_one_note(bench, tmp_path):
    lines = bench.setup_table([15, 31], repeats=1, python=tmp_path / "python3.11")
    assert lines[0].startswith("hypre skipped: ") and "absent" in lines[0]
    header, rows = lines[2].split(" | "), [line.split(" | ") for line in lines[4:]]
    assert "hypre" not in lines[2] and "PyAMG RS 2nd pass s" in header and len(rows) == 2
    assert all(len(row) == len(header) for row in rows) and [row[2] for row in rows] == ["1,065", "4,681"]
    for row in rows:  # entries of the 5-point jumps matrix: 5 n^2 - 4 n
        entries = float(row[2].replace(",", ""))
        mgnet, per_million = float(row[header.index("mgnet setup s")]), float(row[header.index("mgnet s / M entries")])
        rounding = 0.0005 * 1e6 / entries + 0.0005  # both cells printed to 3 decimals
        assert per_million == pytest.approx(mgnet * 1e6 / entries, abs=rounding) and mgnet > 0
        pyamg, pyamg_per_million = (float(row[header.index(f"PyAMG{key}")]) for key in (" RS 2nd pass s",
                                                                                        " s / M entries"))
        assert pyamg_per_million == pytest.approx(pyamg * 1e6 / entries, abs=rounding)


def test_setup_table_with_hypre_adds_both_configurations_setups(bench):
    available, line = bench.hypre_probe()
    if not available:
        pytest.skip(line)
    lines = bench.setup_table([15, 31], repeats=1)
    assert lines[0].startswith("hypre 2.")
    header, rows = lines[2].split(" | "), [line.split(" | ") for line in lines[4:]]
    for name in ("hypre BoomerAMG", "hypre HMIS ext+i"):
        seconds, per_million = header.index(f"{name} s"), header.index(f"{name} s / M entries")
        for row in rows:
            entries = float(row[2].replace(",", ""))
            assert float(row[seconds]) >= 0 and float(row[per_million]) > 0, row
            rounding = 0.0005 * 1e6 / entries + 0.0005  # both cells printed to 3 decimals
            assert float(row[per_million]) == pytest.approx(float(row[seconds]) * 1e6 / entries, abs=rounding)


def test_the_anchors_setup_only_mode_times_each_configuration(bench, tmp_path):
    available, line = bench.hypre_probe()
    if not available:
        pytest.skip(line)
    import scipy.sparse as sparse

    sparse.save_npz(tmp_path / "A.npz", poisson(31))
    seconds = bench.hypre_setups(tmp_path / "A.npz")
    assert list(seconds) == ["hypre BoomerAMG", "hypre HMIS ext+i"]
    assert all(0 < value < 60 for value in seconds.values()), seconds


def anchor_output(norms: list[float]) -> str:
    """What hypre_anchor.py prints, with one set of residual norms for each of its four solves."""
    run = {"norms": norms, "times": [0.5 + 0.1 * k for k in range(len(norms))], "setup_s": 0.5, "solve_s": 0.4,
           "iterations": len(norms) - 1, "reason": 2, "converged": True, "factor": 0.1}
    return json.dumps({"petsc": "3.18.5", "petsc4py": "3.18.5", "hypre": "2.26.0", "rows": 9, "entries": 33,
                       "runs": {name: run for name in HYPRE_COLUMNS}})


def test_the_anchors_json_becomes_one_run_per_solve(bench):
    norms = [1.0, 0.5, 0.1, 0.01, 1e-3, 1e-4]  # last half: 1e-2 -> 1e-4 in 2 steps, 0.1 each
    runs = bench.parse_anchor(anchor_output(norms))
    assert list(runs) == HYPRE_COLUMNS
    run = runs["hypre HMIS ext+i, CG"]
    assert run.norms == norms and run.setup_s == 0.5
    assert run.factor() == pytest.approx(0.1, rel=1e-12)
    assert run.time_to(1e-3) == pytest.approx(0.9) and run.time_to(1e-8) is None  # 4th iteration; never


def test_without_debians_python_the_probe_gives_one_note(bench, tmp_path):
    available, note = bench.hypre_probe(tmp_path / "python3.11")
    assert not available and note.startswith("hypre skipped: ") and "absent" in note and "\n" not in note


def test_a_python_without_petsc4py_gives_one_note(bench, tmp_path, monkeypatch):
    (tmp_path / "petsc4py.py").write_text("raise ImportError('no petsc4py here')\n")  # shadows any real one
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    available, note = bench.hypre_probe(Path(sys.executable))
    assert not available and note.startswith("hypre skipped: ") and "no petsc4py here" in note and "\n" not in note


def test_hypre_solves_poisson_as_a_cycle_and_in_cg(bench):
    available, line = bench.hypre_probe()
    if not available:
        pytest.skip(line)
    A = poisson(31)
    b = __import__("numpy").random.default_rng(0).standard_normal(A.shape[0])
    runs = bench.run_hypre(A, b, 1e-10, 40)
    assert list(runs) == HYPRE_COLUMNS
    for name, run in runs.items():
        assert run.norms[0] == pytest.approx(math.sqrt(float(b @ b)), rel=1e-12), name  # ||b||: from x = 0
        assert run.norms[-1] <= 1e-10 * run.norms[0] and len(run.norms) <= 20, name
        assert 0 < run.factor() < 0.2 and run.setup_s > 0 and run.time_to(1e-8) >= run.setup_s, name
    for name in ("hypre BoomerAMG", "hypre HMIS ext+i"):
        assert runs[f"{name}, CG"].factor() < runs[name].factor()  # CG takes out what the cycle leaves


def test_pyamg_s_meshes_are_read_as_shipped_and_every_amg_converges_on_them(bench):
    """``--meshes``: the airfoil and knot matrices PyAMG ships (SPD, 260 and 239 rows), the anchors
    reproducing issue 23's figures (PyAMG RS 2nd pass 0.085 / 0.052 a cycle), mgnet's AMG beside them."""
    import numpy as np

    for name, rows in zip(bench.MESHES, (260, 239)):
        A = bench.mesh_matrix(name)
        assert A.shape == (rows, rows) and abs(A - A.T).max() == 0 and np.linalg.eigvalsh(A.toarray()).min() > 0
    runs = bench.mesh_runs("airfoil", 1e-10, 40, hypre=False)
    assert set(bench.ANCHORS + bench.AMG + list(bench.AMG_OPTION_SETS) + list(bench.MESH_OPTION_SETS)) == set(runs)
    assert runs["PyAMG RS 2nd pass"].factor() == pytest.approx(0.085, abs=0.002)
    assert all(run.factor() < 0.3 for run in runs.values()), {name: run.factor() for name, run in runs.items()}
    # issue 23's goal: at or below the best anchor as a cycle (hypre HMIS ext+i: 0.068; measured 0.051)
    assert runs["mgnet AMG symmetric GS, ext+i"].factor() < runs["PyAMG RS 2nd pass"].factor()
    knot = bench.mesh_runs("knot", 1e-10, 40, hypre=False)
    assert knot["PyAMG RS 2nd pass"].factor() == pytest.approx(0.052, abs=0.002)
    assert knot["mgnet AMG symmetric GS"].factor() < knot["PyAMG RS 2nd pass"].factor()  # measured 0.028


def test_smoothing_work_counts_each_levels_visits_and_sweeps(bench):
    """``--goals``' cost column: sweeps over the finest matrix per cycle, V once per level, F k + 1 times
    and W 2^k times on level k, symmetric Gauss-Seidel two sweeps a step, the coarsest not smoothed."""
    from mgnet_cli.amg.settings import AmgSettings
    from mgnet_cli.amg.solver import hierarchy_of

    hierarchy = hierarchy_of(poisson(31), AmgSettings())
    nnz = [A.nnz / hierarchy.A[0].nnz for A in hierarchy.A[:-1]]
    assert len(nnz) >= 3
    assert bench.smoothing_work(hierarchy, AmgSettings()) == pytest.approx(2 * sum(nnz))
    symmetric_f = AmgSettings(smoother="symmetric_gauss_seidel", cycle="f")
    f_visits = sum((k + 1) * w for k, w in enumerate(nnz))
    assert bench.smoothing_work(hierarchy, symmetric_f) == pytest.approx(4 * f_visits)
    w_22 = AmgSettings(pre_smooth=2, post_smooth=2, cycle="w")
    assert bench.smoothing_work(hierarchy, w_22) == pytest.approx(4 * sum(2 ** k * w for k, w in enumerate(nnz)))


def test_goals_rows_give_cost_beside_factor_and_where_the_error_survives(bench):
    """``--goals --per-level`` on the benchmark's jumps matrix at n = 63: the HMIS ext+i F(1,1) set meets
    issue 23's jumps goals there (measured 0.294 a cycle, 0.090 per CG iteration) where the defaults do
    not (0.335 / 0.110); a factor per level but the coarsest, and on the finest level the two-grid factor
    (exact coarse solve) about the whole cycle's: on jumps the error survives there (measured 0.30 / 0.35)."""
    import numpy as np

    sets = {name: bench.GOAL_SETS[name] for name in ("defaults: RS 2nd pass, classical, V(1,1) GS",
                                                     "HMIS, ext+i, F(1,1) GS")}
    b = np.random.default_rng(0).standard_normal(63 * 63)
    costs, levels = bench.goal_rows("jumps, n=63", bench.jumps_matrix(63), b, 40, sets, per_level=True)
    cells = [row.strip("| ").split(" | ") for row in costs]
    assert [row[1] for row in cells] == list(sets) and all(len(row) == len(bench.GOAL_COLUMNS) for row in cells)
    factors = [[float(part) for part in row[bench.GOAL_COLUMNS.index("factor: cycle / CG")].split(" / ")]
               for row in cells]
    assert factors[1][0] <= 0.35 and factors[1][1] <= 0.10, factors
    assert factors[0][0] > 0.30 and factors[0][1] > factors[1][1], factors
    assert float(cells[1][bench.GOAL_COLUMNS.index("smoothing work / cycle")]) > float(
        cells[0][bench.GOAL_COLUMNS.index("smoothing work / cycle")])  # F visits level k k + 1 times
    for row, level_count in zip(levels, (int(row[2]) for row in cells)):
        two_grid, down = ([float(x) for x in part.split()] for part in row.strip("| ").split(" | ")[2:4])
        assert len(two_grid) == len(down) == level_count - 1
        assert all(0 < factor < 0.6 for factor in two_grid + down), (two_grid, down)
        assert 0 <= down[0] - two_grid[0] < 0.1, (two_grid, down)


def test_the_rotated_goal_is_met_by_an_f_cycle_with_two_sweeps_a_side(bench):
    """Issue 23's rotated-anisotropy goal (ε = 1e-3, θ = π/4, n = 255: ≤ 0.50 a cycle; PyAMG 0.692, hypre
    0.650, the defaults 0.763) with ``cycle=f pre_smooth=2 post_smooth=2`` on the defaults' hierarchy:
    measured 0.456 a cycle, 0.144 per CG iteration."""
    import numpy as np

    name = "RS 2nd pass, classical, F(2,2) GS"
    b = np.random.default_rng(0).standard_normal(255 * 255)
    costs, _ = bench.goal_rows("rotated, n=255", bench.rotated_matrix(255), b, 40, {name: bench.GOAL_SETS[name]},
                               per_level=False)
    cells = costs[0].strip("| ").split(" | ")
    cycle, cg = (float(part) for part in cells[bench.GOAL_COLUMNS.index("factor: cycle / CG")].split(" / "))
    assert cycle <= 0.50 and cg <= 0.2, (cycle, cg)


def test_one_command_puts_mgnet_solve_s_defaults_beside_pyamg_solve_on_every_matrix(bench):
    """``--one-command``: the same matrix and right-hand side for what each library's one command
    builds (pyamg.solve: smoothed aggregation in CG; mgnet solve problem=matrix: its defaults in CG),
    every grid problem and both meshes; each reaches 1e-8 where it converges, and the rows say so."""
    import numpy as np

    matrices = bench.one_command_matrices([31], 31)
    assert [label.split(",")[0] for label, _ in matrices] == [
        "lognormal σ=1", "jumps 1/10³", "anisotropic ε=1", "anisotropic ε=0.01", "rotated ε=1e-3", "Poisson",
        "airfoil (260 rows)", "knot (239 rows)"]
    rows = []
    for label, A in matrices:
        b = np.random.default_rng(0).standard_normal(A.shape[0])
        runs = bench.algebraic_runs(A, b, [bench.PYAMG_ONE_COMMAND], {bench.MGNET_ONE_COMMAND: {}}, 1e-10, 40,
                                    hypre=False)
        mgnet = runs[bench.MGNET_ONE_COMMAND]
        assert mgnet.time_to(1e-8) is not None and mgnet.factor() < 0.3, (label, mgnet.factor())
        rows.append((label, runs))
    jumps = rows[1][1]  # smoothed aggregation does not follow the jumps (0.35 at n = 31, 0.675 at n = 63)
    assert jumps[bench.MGNET_ONE_COMMAND].factor() < jumps[bench.PYAMG_ONE_COMMAND].factor() - 0.1
    table = bench.time_table(rows, 1e-8, factors=True)
    assert table[0].endswith("| factor |") and len(table) == 2 + 2 * len(matrices)
