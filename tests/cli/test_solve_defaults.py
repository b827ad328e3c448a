"""Each structured problem's option chooses its own solver (configs/problem/*.yaml, measured in
docs/benchmarks.md, "Each problem's solver"); a choice on the command line wins, before or after
``problem=``; ``problem=matrix`` keeps the AMG defaults; the start line says what was chosen."""

import json
from dataclasses import asdict

import pytest
from omegaconf import OmegaConf

from mgnet_cli import schema
from mgnet_cli.amg.settings import AmgSettings
from mgnet_cli.schema.solve import InterpolationLearningConfig, SolverConfig
from tests.helpers import cli, mgnet_solve

CHOSEN = {  # problem -> (smoother, prolongation, krylov, pre_smooth, post_smooth)
    "poisson": ("RedBlackGaussSeidel", "bilinear", "none", 1, 1),  # solve.yaml's default
    "diffusion": ("ZebraLineGaussSeidel", "black_box", "cg", 1, 1),
    "anisotropic": ("ZebraLineGaussSeidel", "black_box", "cg", 1, 1),
}


def solver_of(compose_config, *overrides: str) -> SolverConfig:
    cfg = compose_config(*overrides, config_name="solve", tiny=False)
    return schema.check(schema.typed(OmegaConf.to_container(cfg), "solve"), "solve").solver


def chosen(solver: SolverConfig) -> tuple:
    return (solver.smoother._target_.rsplit(".", 1)[-1], str(solver.prolongation), str(solver.krylov),
            solver.pre_smooth, solver.post_smooth)


@pytest.mark.parametrize("problem", sorted(CHOSEN))
def test_each_structured_problem_chooses_its_solver(compose_config, problem):
    assert chosen(solver_of(compose_config, f"problem={problem}")) == CHOSEN[problem]


@pytest.mark.parametrize("first", [True, False], ids=["before", "after"])
def test_a_choice_on_the_command_line_wins(compose_config, first):
    given = ["solver/smoother=jacobi", "solver.prolongation=bilinear", "solver.krylov=none",
             "solver.pre_smooth=2", "solver.post_smooth=2"]
    overrides = [*given, "problem=diffusion"] if first else ["problem=diffusion", *given]
    solver = solver_of(compose_config, *overrides)
    assert chosen(solver) == ("DampedJacobi", "bilinear", "none", 2, 2)
    assert solver.smoother.omega == 0.8  # Jacobi's own keys come with it


def test_one_choice_given_keeps_the_problems_others(compose_config):
    assert chosen(solver_of(compose_config, "problem=diffusion", "solver/smoother=gauss_seidel_rb")) == (
        "RedBlackGaussSeidel", *CHOSEN["diffusion"][1:])
    assert chosen(solver_of(compose_config, "problem=anisotropic", "solver.krylov=none")) == (
        *CHOSEN["anisotropic"][:2], "none", *CHOSEN["anisotropic"][3:])


def test_problem_matrix_keeps_the_amg_defaults(compose_config):
    cfg = compose_config("problem=matrix", "problem.file=A.mtx", config_name="solve", tiny=False)
    checked = schema.check(schema.typed(OmegaConf.to_container(cfg), "solve"), "solve")
    amg, library = asdict(checked.problem.amg), asdict(AmgSettings())
    assert {key: amg[key] for key in library} == library
    # the command's own keys: the learned interpolation's file, or how to learn it
    assert amg.keys() - library.keys() == {"interpolation_weights", "learning"} and amg["interpolation_weights"] is None
    assert amg["learning"] == asdict(InterpolationLearningConfig())
    solver, schema_defaults = asdict(checked.solver), asdict(SolverConfig(smoother=None))
    solver.pop("smoother"), schema_defaults.pop("smoother")  # unused (and refused if given) by problem=matrix
    assert solver == schema_defaults  # no geometric key set by the matrix option


def start_line(done) -> str:
    """The run's first log line (the one naming the solver)."""
    lines = [line for line in (done.stderr + done.stdout).splitlines() if "] - " in line]
    assert sum("] - solver: " in line for line in lines) == 1, done.stderr
    return lines[0].split("] - ", 1)[1]


def test_the_start_line_says_what_was_chosen_and_whose_choice_it_is(tmp_path):
    """problem=diffusion (lognormal, n = 63) with nothing else reaches a far lower factor than the
    global defaults it had (damped Jacobi, bilinear Galerkin: 0.55), which remain one choice away."""
    default, given = tmp_path / "default", tmp_path / "given"
    done = mgnet_solve("problem=diffusion", "problem.n=63", f"hydra.run.dir={default}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert start_line(done) == ("solver: V(1,1)-preconditioned CG line_gauss_seidel, black_box Galerkin "
                                "(problem=diffusion's default)")
    results = json.loads((default / "results.json").read_text())
    assert results["smoother"] == "line_gauss_seidel" and results["prolongation"] == "black_box"
    assert results["convergence_factor"] < 0.1 and results["status"] == "converged"
    done = mgnet_solve("problem=diffusion", "problem.n=63", "solver/smoother=jacobi", "solver.prolongation=bilinear",
                       "solver.krylov=none", f"hydra.run.dir={given}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert start_line(done) == ("solver: V(1,1) jacobi, bilinear Galerkin (problem=diffusion's default; given: "
                                "solver/smoother=jacobi solver.prolongation=bilinear solver.krylov=none)")
    before = json.loads((given / "results.json").read_text())
    assert before["smoother"] == "jacobi" and before["convergence_factor"] > 0.5


def help_keys(*args: str, cwd) -> dict[str, str]:
    """``mgnet solve <args> --help`` in-process: each key's line (wrapped lines joined) by its key."""
    done = cli("solve", *args, "--help", cwd=cwd)
    lines: list[str] = []
    for line in done.stdout.split("then its help):\n")[1].split("\n\n")[0].splitlines():
        if line.startswith("   "):  # a wrapped line of the key above
            lines[-1] += " " + line.strip()
        else:
            lines.append(line.strip())
    return {line.split("=")[0]: line for line in lines}


@pytest.mark.parametrize("problem", sorted(CHOSEN))
def test_help_shows_the_defaults_the_problem_composes(tmp_path, problem):
    """``problem=diffusion`` sets black_box and cg: --help shows them, marked with the schema's."""
    _, prolongation, krylov, pre_smooth, _ = CHOSEN[problem]
    done = cli("solve", f"problem={problem}", "--help", cwd=tmp_path)
    assert f"as `mgnet solve problem={problem}` composes it" in done.stdout
    smoother = "gauss_seidel_rb" if problem == "poisson" else "line_gauss_seidel"
    groups = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert f" {smoother}*," in groups["solver/smoother"] + "," and groups["solver/smoother"].count("*") == 1
    assert f" {problem}*" in groups["problem"]
    lines = help_keys(f"problem={problem}", cwd=tmp_path)
    default = SolverConfig()
    for key, value in (("prolongation", prolongation), ("krylov", krylov), ("pre_smooth", pre_smooth)):
        line = lines[f"solver.{key}"]
        assert line.startswith(f"solver.{key}={value} ")
        schema_default = str(getattr(default, key))
        assert line.endswith(f"(schema default: {schema_default})") == (str(value) != schema_default), line
    assert sum("(schema default:" in line for line in lines.values()) == (0 if problem == "poisson" else 2)
    assert not any(tmp_path.iterdir())  # help writes no run folder


def test_help_shows_a_choice_given_over_the_problems(tmp_path):
    lines = help_keys("problem=diffusion", "solver.krylov=none", "solver.tol=1e-6", cwd=tmp_path)
    assert lines["solver.krylov"].startswith("solver.krylov=none ") and "schema default" not in lines["solver.krylov"]
    assert lines["solver.tol"].endswith("(schema default: 1e-08)")
    assert lines["solver.prolongation"].startswith("solver.prolongation=black_box ")


@pytest.mark.parametrize(("given", "says"), [("problem=bogus", "problem=bogus: no such option"),
                                             ("solver.tol=5", "solver.tol=5.0: give a finite number in (0, 1)")])
def test_help_with_a_bad_override_is_the_commands_one_line(tmp_path, given, says):
    done = cli("solve", given, "--help", cwd=tmp_path, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"mgnet solve: error: {says}") and "Traceback" not in done.stderr
