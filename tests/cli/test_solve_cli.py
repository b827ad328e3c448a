"""``mgnet solve`` end to end: the installed command in a subprocess, in a temporary folder."""

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import mgnet_solve


def test_solve_writes_results_plot_and_tensorboard(tmp_path):
    run_dir = tmp_path / "run"
    done = mgnet_solve("problem.n=63", "problem.rhs=sine", "solver.tol=1e-10", "solver/smoother=jacobi",
                       f"hydra.run.dir={run_dir}", cwd=tmp_path)  # Jacobi: docs/MGNET.md's factor
    assert done.returncode == 0, done.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "converged" and results["levels"] == [63, 31, 15, 7]
    assert results["convergence_factor"] == pytest.approx(0.35, abs=0.03)
    assert results["final_relative_residual"] <= 1e-10
    assert len(results["residual_norms"]) == results["cycles"] + 1
    assert results["error_max"] == pytest.approx(2.0e-4, rel=0.02)  # (pi h)^2 / 12 at h = 1/64
    assert results["smoother"] == "jacobi" and results["config"]["solver"]["smoother"]["omega"] == 0.8
    assert results["problem"] == "poisson" and results["prolongation"] == "bilinear"
    assert (run_dir / "residual_history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    events = EventAccumulator(str(run_dir))
    events.Reload()
    relative = events.Scalars("residual/relative")
    assert [event.step for event in relative] == list(range(results["cycles"] + 1))
    assert relative[-1].value == pytest.approx(results["final_relative_residual"], rel=1e-5)
    (factor,) = events.Scalars("solve/convergence_factor")
    assert factor.value == pytest.approx(results["convergence_factor"], rel=1e-5)
    assert {"solve/cycles", "solve/solve_time_s", "solve/setup_time_s", "solve/error_max"} \
        <= set(events.Tags()["scalars"])
    assert "convergence factor" in done.stderr + done.stdout  # the table and summary are logged


@pytest.mark.parametrize(("override", "message"), [
    ("problem.n=100", "problem.n=100"),
    ("solver.smoother=gauss_seidel_rb", "solver/smoother=gauss_seidel_rb"),
    ("solver/smoother=jacobi solver.smoother.omega=2", "solver.smoother.omega=2.0: give a finite number in (0, 1]"),
    ("solver.smoother.omega=0.5", "solver.smoother.omega: no such key"),  # problem=poisson smooths by GS-RB
    ("solver/smoother=chebyshev solver.smoother.ratio=0.5", "solver.smoother.ratio=0.5: give a finite number in (1, "),
    ("solver.smoother._target_=os.system", "solver.smoother._target_=os.system: not code mgnet calls"),
    ("solver.coarsest_n=63", "solver.coarsest_n=63"),
    ("problem=diffusion problem.coefficient=marble", "problem.coefficient=marble: use one of lognormal"),
    ("problem=diffusion problem.sigma=-1", "problem.sigma=-1"),
    ("problem=diffusion problem.contrast=0", "problem.contrast=0"),
    ("problem=diffusion problem.block=0", "problem.block=0"),
    ("problem=diffusion problem.field_seed=-2", "problem.field_seed=-2"),
    ("problem=diffusion problem.coefficient=file problem.file=missing.npy", "problem.file="),
    ("problem=anisotropic problem.epsilon=2", "problem.epsilon=2"),
    ("problem=anisotropic problem.theta=north", "problem.theta=north: give a number"),
    ("problem=diffusion solver.prolongation=cubic", "solver.prolongation=cubic: use one of bilinear, black_box, learned"),
    ("solver.prolongation=black_box", "solver.prolongation=black_box: problem=poisson"),
    ("solver.krylov=gmres", "solver.krylov=gmres: use one of none, cg"),
])
def test_bad_values_exit_2_with_one_line(tmp_path, override, message):
    done = mgnet_solve(*override.split(), f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_an_unknown_smoother_names_the_ones_there_are(tmp_path):
    done = mgnet_solve("solver/smoother=sor", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "solver/smoother=sor: no such option" in lines[0], done.stderr
    assert "line_gauss_seidel" in lines[1]
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_coefficient_field_file_of_the_wrong_shape_exits_2(tmp_path):
    import numpy as np

    np.save(tmp_path / "k.npy", np.ones((8, 8)))
    done = mgnet_solve("problem=diffusion", "problem.n=15", "problem.coefficient=file",
                       f"problem.file={tmp_path / 'k.npy'}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "(15, 15)" in lines[0], done.stderr


def test_diffusion_from_a_file_with_black_box_galerkin(tmp_path):
    import numpy as np

    field = np.exp(np.random.default_rng(0).standard_normal((63, 63)))
    np.save(tmp_path / "k.npy", field)
    run_dir = tmp_path / "run"
    done = mgnet_solve("problem=diffusion", "problem.n=63", "problem.coefficient=file",
                       f"problem.file={tmp_path / 'k.npy'}", "solver.prolongation=black_box",
                       "solver/smoother=gauss_seidel_rb", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "converged" and results["prolongation"] == "black_box"
    assert results["problem"].startswith("diffusion file") and results["convergence_factor"] < 0.3


def test_sweep_over_smoothers(tmp_path):
    sweep_dir = tmp_path / "sweep"
    done = mgnet_solve("-m", "problem.n=31", "solver/smoother=jacobi,gauss_seidel_rb",
                       f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    factors = {}
    for job, name in enumerate(("jacobi", "gauss_seidel_rb")):
        results = json.loads((sweep_dir / str(job) / "results.json").read_text())
        assert results["smoother"] == name
        factors[name] = results["convergence_factor"]
    assert factors["gauss_seidel_rb"] < factors["jacobi"]
    summary = (sweep_dir / "summary.csv").read_text().splitlines()
    assert summary[0] == ("job,overrides,status,convergence_factor,cycles,final_relative_residual,"
                          "setup_time_s,solve_time_s,error,folder")
    assert len(summary) == 3 and all(",completed," in row for row in summary[1:])


def test_cg_solves_a_jumps_field_the_cycle_alone_does_not(tmp_path):
    run_dir = tmp_path / "run"
    done = mgnet_solve("problem=diffusion", "problem.coefficient=jumps", "problem.n=63", "solver.krylov=cg",
                       "solver.prolongation=black_box", "solver/smoother=line_gauss_seidel", "solver.max_cycles=40",
                       f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "converged" and results["cycles"] <= 38  # 36; alone: 0.917 a cycle
    assert results["config"]["solver"]["krylov"] == "cg" and "preconditioned CG" in done.stderr + done.stdout


@pytest.mark.parametrize(("overrides", "status", "message"), [
    (["solver.max_cycles=5"], "max_cycles",
     "did not reach solver.tol=1e-08 in solver.max_cycles=5 cycles: relative residual "),
    (["solver.dtype=float32", "solver.tol=1e-12"], "round_off",
     "the residual no longer falls at float32's round-off floor (estimated at "),
])
def test_a_solve_short_of_the_tolerance_exits_1_and_says_why(tmp_path, overrides, status, message):
    """A script or test runner reads the exit code: 0 only when the solve reached solver.tol."""
    run_dir = tmp_path / "run"
    done = mgnet_solve("problem.n=63", *overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("mgnet solve: "), done.stderr
    assert message in lines[0] and "Traceback" not in done.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == status
    assert results["final_relative_residual"] > float(results["config"]["solver"]["tol"])
