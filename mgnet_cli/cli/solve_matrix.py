"""``mgnet solve problem=matrix``: a user's SPD matrix by algebraic multigrid (mgnet_cli/amg/), and
``problem.save_matrix`` of the structured problems, which writes the matrix that path reads.

The matrix solve shares ``solver.tol``, ``solver.max_cycles``, ``solver.device`` and
``solver.threads`` with every solve; how it cycles is ``problem.amg`` (its own defaults: the
geometric solver's ``solver.cycle``, ``solver.krylov``, smoothers and prolongations do not apply
and are refused when given). Its results go through the same record as every solve (cli/solve.py);
``problem.amg.interpolation=learned`` loads its network from ``problem.amg.interpolation_weights`` or
learns it by ``problem.amg.learning`` first, as every learned part (``load_or_learn``).
"""

import logging
from functools import partial
from pathlib import Path
from typing import Any

import torch

from mgnet_cli.amg.learned_interpolation import InterpolationNet, learned_interpolation
from mgnet_cli.amg.matrices import read_matrix, read_vector, stencil_matrix, write_matrix
from mgnet_cli.amg.settings import Interpolation
from mgnet_cli.amg.solver import Interpolate
from mgnet_cli.amg.solver import solve_matrix as amg_solve
from mgnet_cli.cli.solve_settings import PARTS, load_or_learn
from mgnet_cli.errors import ConfigError
from mgnet_cli.pde.poisson import right_hand_side_vector
from mgnet_cli.pde.solve import SolveResult
from mgnet_cli.schema.solve import MATRIX_RHS, AmgConfig, Dtype, MatrixProblemConfig, SolverConfig

log = logging.getLogger(__name__)

GEOMETRIC = {  # the geometric solver's keys -> what problem=matrix takes instead
    "solver.cycle": "problem.amg.cycle", "solver.krylov": "problem.amg.krylov",
    "solver.pre_smooth": "problem.amg.pre_smooth", "solver.post_smooth": "problem.amg.post_smooth",
    "solver/smoother": "problem.amg.smoother", "solver.smoother": "problem.amg.smoother",
    "solver.prolongation": "problem.amg.interpolation", "solver.coarsest_n": "problem.amg.coarsest_size",
    "solver.learned_prolongation": "problem.amg.learning",
}


def refuse_geometric_keys(overrides: list[str], solver: SolverConfig) -> None:
    """A geometric solver key given on the command line (it would do nothing here) is one line
    naming the ``problem.amg`` key to use; so is ``solver.dtype=float32`` (AMG runs in float64)."""
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        for geometric, instead in GEOMETRIC.items():
            if key == geometric or key.startswith(geometric + "."):
                raise ConfigError(f"{override}: the geometric solver's key, unused by problem=matrix; use {instead} "
                                  f"(configs/problem/matrix.yaml)")
    if solver.dtype != Dtype.float64:
        raise ConfigError(f"solver.dtype={solver.dtype}: problem=matrix solves in float64")


def right_hand_side(problem: MatrixProblemConfig, rows: int, device: torch.device) -> torch.Tensor:
    """``f`` as ``problem.rhs`` says: random (standard normal from ``problem.seed``, the same numbers
    as a structured problem's ``rhs=random`` on the same rows), ones, or a vector file."""
    if problem.rhs in MATRIX_RHS:
        return right_hand_side_vector(problem.rhs, rows, torch.float64, device, problem.seed)
    return read_vector(Path(problem.rhs).expanduser(), rows).to(device)


def interpolate_of(settings: AmgConfig, run_dir: Path,
                   device: torch.device) -> tuple[Interpolate | None, dict[str, Any]]:
    """With ``interpolation=learned``: its network loaded from ``interpolation_weights`` or learned by
    ``learning`` (saved in ``run_dir``), as the setup takes it, and its record for results.json."""
    if settings.interpolation != Interpolation.learned:
        if settings.interpolation_weights is not None:
            log.warning("problem.amg.interpolation_weights is unused: problem.amg.interpolation=%s",
                        settings.interpolation)
        return None, {}
    part = PARTS[InterpolationNet.__name__]
    net, record = load_or_learn(part, settings.learning, settings.interpolation_weights, settings, run_dir, device)
    return partial(learned_interpolation, net), {part.record: record}


def solve_matrix(problem: MatrixProblemConfig, tol: float, max_cycles: int, device: torch.device,
                 run_dir: Path) -> tuple[SolveResult, str, dict[str, Any], dict[str, Any]]:
    """Reads ``problem.file``, sets up AMG (its learned interpolation loaded or learned first) and
    solves: (result, title, what was solved for results.json, the hierarchy's and the learned part's records)."""
    if problem.file is None:
        raise ConfigError("problem.file is required with problem=matrix: give problem.file=A.mtx "
                          "(Matrix Market) or problem.file=A.npz (SciPy sparse)")
    path = Path(problem.file).expanduser()
    matrix = read_matrix(path)
    rows = matrix.shape[0]
    f = right_hand_side(problem, rows, device)
    settings = problem.amg
    log.info("%s: %d rows, %d entries; rhs %s; AMG: %s", path, rows, matrix.nnz, problem.rhs, settings.describe())
    interpolate, learned = interpolate_of(settings, run_dir, device)
    result, hierarchy = amg_solve(matrix, f, settings, tol, max_cycles, interpolate)
    levels = [{"rows": level.shape[0], "entries": level.nnz} for level in hierarchy.A]
    log.info("AMG set up: %d levels, operator complexity %.2f, grid complexity %.2f", len(levels),
             hierarchy.operator_complexity(), hierarchy.grid_complexity())
    title = f"{path.name} ({rows} rows) {problem.rhs}, AMG {settings.describe()}"
    described = {"problem": f"matrix {path}", "smoother": str(settings.smoother),
                 "prolongation": f"{settings.prolongation()} (AMG)"}
    record = {"amg": {"settings": {key: str(value) if isinstance(value, str) else value
                                   for key, value in vars(settings).items() if key != "learning"},
                      "levels": levels, "operator_complexity": hierarchy.operator_complexity(),
                      "grid_complexity": hierarchy.grid_complexity()}, **learned}
    return result, title, described, record


def save_structured_matrix(stencil: torch.Tensor, file: str) -> str:
    """Writes a structured problem's fine-grid matrix (the stencil its solve uses) to ``file``,
    atomically; returns the path written."""
    path = Path(file).expanduser()
    matrix = stencil_matrix(stencil)
    write_matrix(path, matrix)
    log.info("fine-grid matrix (%d rows, %d entries) written to %s: `mgnet solve problem=matrix "
             "problem.file=%s` solves the same system", matrix.shape[0], matrix.nnz, path, path)
    return str(path)
