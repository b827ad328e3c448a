"""``mgnet solve problem=matrix problem.file=A.mtx`` in-process: a matrix written by
``problem.save_matrix`` (or built here with scipy.sparse) solved by algebraic multigrid and checked
against a dense solve; the same run folder, sweep summary, report and exit codes as every solve; bad
files and geometric keys refused in one line."""

import csv
import json

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sparse
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mgnet_cli.amg.matrices import read_matrix, write_matrix
from mgnet_cli.amg.settings import AmgSettings
from mgnet_cli.amg.solver import solve_matrix
from mgnet_cli.pde.poisson import right_hand_side
from mgnet_cli.pde.solve import Multigrid, solve_poisson
from mgnet_cli.schema.solve import SolverConfig
from tests.helpers import cli, mgnet_solve, one_line_error

DEFAULT_AMG = "RS + 2nd pass (theta=0.25), classical interpolation, V(1,1) gauss_seidel-preconditioned CG"


def laplacian(n: int) -> sparse.csr_matrix:
    """-Δ by the 5-point stencil on n x n interior points of the unit square, 1/h^2 included."""
    T = sparse.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    identity = sparse.identity(n)
    return ((sparse.kron(identity, T) + sparse.kron(T, identity)) * (n + 1) ** 2).tocsr()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A Poisson solve (n = 15) that wrote its matrix, and the matrix path."""
    root = tmp_path_factory.mktemp("saved")
    done = cli("solve", "problem.n=15", f"problem.save_matrix={root / 'A.mtx'}", f"hydra.run.dir={root / 'grid'}",
               cwd=root)
    assert "written to" in done.stderr + done.stdout
    return root, root / "A.mtx"


def test_save_matrix_writes_the_stencil_the_solve_uses(saved):
    _, path = saved
    A = read_matrix(path)
    assert abs(A - laplacian(15)).max() <= 1e-9 * abs(A).max()


def test_the_matrix_path_solves_the_saved_poisson_as_the_grid_and_a_dense_solve_do(saved):
    """Both paths, same system (f: problem.rhs=random, seed 0, on the same rows), to tolerance."""
    _, path = saved
    A = read_matrix(path)
    f = right_hand_side("random", 15).reshape(-1)
    exact = np.linalg.solve(A.toarray(), f.numpy())
    amg, _ = solve_matrix(A, f, AmgSettings(), 1e-12, 50)
    grid = solve_poisson(15, "random", Multigrid(SolverConfig(tol=1e-12)))
    assert amg.status == "converged" and grid.status == "converged"
    scale = np.abs(exact).max()
    assert np.abs(amg.solution.numpy() - exact).max() <= 1e-9 * scale
    assert np.abs(grid.solution.reshape(-1).numpy() - exact).max() <= 1e-9 * scale


def test_the_command_writes_the_same_run_folder_as_every_solve(saved):
    root, path = saved
    run_dir = root / "matrix"
    done = mgnet_solve("problem=matrix", f"problem.file={path}", f"hydra.run.dir={run_dir}", cwd=root)
    assert done.returncode == 0, done.stderr
    said = done.stderr + done.stdout
    assert f"225 rows, 1065 entries; rhs random; AMG: {DEFAULT_AMG}" in said  # the start line
    results = json.loads((run_dir / "results.json").read_text())
    grid = json.loads((root / "grid" / "results.json").read_text())
    assert results["status"] == "converged" and results["final_relative_residual"] <= 1e-8
    assert results["residual_norms"][0] == pytest.approx(grid["residual_norms"][0], rel=1e-12)  # the same f
    assert results["levels"][0] == 225 and results["levels"] == [level["rows"] for level in results["amg"]["levels"]]
    assert results["cycles"] <= 10 and results["convergence_factor"] < 0.15  # measured: 7 and 0.057
    assert results["smoother"] == "gauss_seidel" and results["amg"]["settings"]["krylov"] == "cg"
    assert 1.0 < results["amg"]["operator_complexity"] < 3.0
    assert (run_dir / "residual_history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert [event.step for event in events.Scalars("residual/relative")] == list(range(results["cycles"] + 1))
    assert {"solve/convergence_factor", "solve/setup_time_s"} <= set(events.Tags()["scalars"])
    report = cli("report", str(run_dir), "--output", str(root / "report"), cwd=root).stdout
    assert "0 training and 1 solve runs tabulated of 1 found" in report and "| converged |" in report


def test_the_start_line_names_what_was_chosen(saved):
    root, path = saved
    done = mgnet_solve("problem=matrix", f"problem.file={path}", "problem.amg.krylov=none",
                       "problem.amg.smoother=l1_jacobi", "problem.amg.splitting=pmis", "problem.amg.second_pass=false",
                       "problem.amg.interpolation=direct", "problem.amg.cycle=w", "problem.rhs=ones",
                       f"hydra.run.dir={root / 'chosen'}", cwd=root)
    assert done.returncode == 0, done.stderr
    said = done.stderr + done.stdout
    assert "rhs ones; AMG: PMIS (theta=0.25), direct interpolation, W(1,1) l1_jacobi cycles" in said


def test_the_f_cycle_preconditions_cg_to_tolerance(saved):
    """Five levels (coarsest_size=4), so F differs from V; measured: 8 CG iterations, 0.054 per
    iteration (V: 9, 0.051); as cycles alone F 0.186, V 0.187."""
    root, path = saved
    run_dir = root / "f_cycle"
    done = mgnet_solve("problem=matrix", f"problem.file={path}", "problem.amg.cycle=f", "problem.amg.coarsest_size=4",
                       "solver.tol=1e-10", f"hydra.run.dir={run_dir}", cwd=root)
    assert done.returncode == 0, done.stderr
    assert "classical interpolation, F(1,1) gauss_seidel-preconditioned CG" in done.stderr + done.stdout
    results = json.loads((run_dir / "results.json").read_text())
    assert results["levels"] == [225, 113, 34, 10, 2] and results["amg"]["settings"]["cycle"] == "f"
    assert results["status"] == "converged" and results["final_relative_residual"] <= 1e-10
    assert results["cycles"] <= 9


@pytest.mark.parametrize("family, says", [
    (["problem.amg.coarsening=aggregation"], "smoothed aggregation (theta=0.08, omega=1.333), V(1,1) gauss_seidel"),
    (["problem.amg.splitting=pmis", "problem.amg.second_pass=false", "problem.amg.interpolation=extended_i"],
     "PMIS (theta=0.25), extended_i interpolation, V(1,1) gauss_seidel")])
def test_each_family_solves_and_the_start_line_and_record_name_it(saved, family, says):
    root, path = saved
    run_dir = root / family[-1].split("=")[-1]
    done = mgnet_solve("problem=matrix", f"problem.file={path}", "solver.tol=1e-10", *family,
                       f"hydra.run.dir={run_dir}", cwd=root)
    assert done.returncode == 0, done.stderr
    assert f"AMG: {says}-preconditioned CG" in done.stderr + done.stdout
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "converged" and results["final_relative_residual"] <= 1e-10
    assert results["amg"]["settings"]["coarsening"] == ("aggregation" if "aggregation" in says else "classical")
    assert results["prolongation"] == ("smoothed aggregation (AMG)" if "aggregation" in says else "extended_i (AMG)")


@pytest.mark.parametrize("suffix", [".npy", ".mtx"])
def test_a_right_hand_side_from_a_file(tmp_path, suffix):
    A = laplacian(7)
    b = np.random.default_rng(5).standard_normal(49)
    write_matrix(tmp_path / "A.npz", A)
    if suffix == ".npy":
        np.save(tmp_path / "b.npy", b)
    else:
        scipy.io.mmwrite(tmp_path / "b.mtx", b.reshape(-1, 1), precision=17)
    run_dir = tmp_path / "run"
    done = mgnet_solve("problem=matrix", f"problem.file={tmp_path / 'A.npz'}", f"problem.rhs={tmp_path / f'b{suffix}'}",
                       "solver.tol=1e-12", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["residual_norms"][0] == pytest.approx(np.linalg.norm(b), rel=1e-12)
    assert results["final_relative_residual"] <= 1e-12


def test_a_sweep_over_matrix_files_writes_its_summary(tmp_path):
    write_matrix(tmp_path / "a.mtx", laplacian(7))
    write_matrix(tmp_path / "b.mtx", laplacian(15))
    sweep_dir = tmp_path / "sweep"
    done = mgnet_solve("-m", "problem=matrix", f"problem.file={tmp_path / 'a.mtx'},{tmp_path / 'b.mtx'}",
                       f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with (sweep_dir / "summary.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["status"] for row in rows] == ["completed", "completed"]
    assert all(float(row["final_relative_residual"]) <= 1e-8 for row in rows)
    assert [json.loads((sweep_dir / str(job) / "results.json").read_text())["n"] for job in (0, 1)] == [49, 225]


def test_a_solve_short_of_the_tolerance_exits_1(tmp_path):
    write_matrix(tmp_path / "A.mtx", laplacian(15))
    done = mgnet_solve("problem=matrix", f"problem.file={tmp_path / 'A.mtx'}", "solver.max_cycles=2",
                       f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 1 and "solver.max_cycles=2" in done.stderr
    assert json.loads((tmp_path / "run" / "results.json").read_text())["status"] == "max_cycles"


def bad_files(tmp_path):
    """(overrides, what the one line says) for each kind of bad input."""
    write_matrix(tmp_path / "good.mtx", laplacian(3))
    write_matrix(tmp_path / "unsymmetric.mtx", sparse.csr_matrix(np.array([[2.0, -1.0], [0.0, 2.0]])))
    write_matrix(tmp_path / "negative.npz", sparse.csr_matrix(np.array([[-2.0, 0.0], [0.0, 2.0]])))
    (tmp_path / "broken.npz").write_bytes(b"PK not really a zip")
    scipy.io.mmwrite(tmp_path / "wide.mtx", sparse.coo_matrix(np.ones((2, 3))))
    (tmp_path / "folder.mtx").mkdir()
    np.save(tmp_path / "short.npy", np.ones(4))
    good = f"problem.file={tmp_path / 'good.mtx'}"
    return [
        ([], "problem.file is required with problem=matrix"),
        ([f"problem.file={tmp_path / 'none.mtx'}"], "none.mtx does not exist"),
        ([f"problem.file={tmp_path / 'folder.mtx'}"], "folder.mtx is a directory, not a regular file"),
        ([f"problem.file={tmp_path / 'A.csv'}"], "problem.file="),
        ([f"problem.file={tmp_path / 'wide.mtx'}"], "not square (2 x 3)"),
        ([f"problem.file={tmp_path / 'unsymmetric.mtx'}"], "not symmetric"),
        ([f"problem.file={tmp_path / 'negative.npz'}"], "diagonal entry 0 is -2"),
        ([f"problem.file={tmp_path / 'broken.npz'}"], "unreadable as .npz"),
        ([good, f"problem.rhs={tmp_path / 'short.npy'}"], "shape (4,), but the matrix has 9 rows"),
        ([good, "problem.rhs=sine"], "problem.rhs=sine: give random, ones, or a vector file"),
        ([good, "problem.amg.smoother=ilu"], "problem.amg.smoother=ilu: use one of gauss_seidel"),
        ([good, "problem.amg.theta=0"], "problem.amg.theta=0"),
        ([good, "problem.amg.coarsening=geometric"],
         "problem.amg.coarsening=geometric: use one of classical, aggregation"),
        ([good, "problem.amg.interpolation=extended"],
         "problem.amg.interpolation=extended: use one of classical, direct, extended_i"),
        ([good, "problem.amg.aggregation_omega=2"], "problem.amg.aggregation_omega=2.0: give a finite number in (0, 2)"),
        ([good, "problem.amg.aggregation_theta=-0.1"],
         "problem.amg.aggregation_theta=-0.1: give a finite number in [0, 1]"),
        ([good, "solver.krylov=none"], "solver.krylov=none: the geometric solver's key, unused by problem=matrix; "
                                       "use problem.amg.krylov"),
        ([good, "solver/smoother=chebyshev"], "use problem.amg.smoother"),
        ([good, "solver.dtype=float32"], "solver.dtype=float32: problem=matrix solves in float64"),
    ]


def test_bad_input_is_one_line_each(tmp_path):
    for overrides, says in bad_files(tmp_path):
        done = mgnet_solve("problem=matrix", *overrides, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
        line = one_line_error(done, "solve")
        assert says in line, (overrides, line)
    assert not (tmp_path / "run" / "results.json").exists()


def test_save_matrix_refuses_another_suffix_before_solving(tmp_path):
    done = mgnet_solve("problem.n=7", "problem.save_matrix=A.txt", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert "problem.save_matrix=A.txt: give a .mtx (Matrix Market) or .npz" in one_line_error(done, "solve")


def test_a_saved_diffusion_matrix_is_the_one_the_grid_solve_used(tmp_path):
    """Jumps n = 15 written as .npz (before the grid solve, whatever its outcome: the default
    Jacobi with bilinear Galerkin levels stalls at 0.99 a cycle here), solved by the matrix path to
    the dense solution."""
    done = mgnet_solve("problem=diffusion", "problem.coefficient=jumps", "problem.n=15",
                       f"problem.save_matrix={tmp_path / 'K.npz'}", f"hydra.run.dir={tmp_path / 'grid'}", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    A = read_matrix(tmp_path / "K.npz")
    assert A.shape == (225, 225) and abs(A - A.T).max() == 0 and A.diagonal().max() / A.diagonal().min() > 100
    f = torch.ones(225, dtype=torch.float64)
    result, _ = solve_matrix(A, f, AmgSettings(), 1e-12, 50)
    exact = np.linalg.solve(A.toarray(), f.numpy())
    assert np.abs(result.solution.numpy() - exact).max() <= 1e-9 * np.abs(exact).max()
