"""``mgnet solve``: check the config, solve the problem by multigrid cycles, report and record the run.

Writes into the run folder: ``results.json``, ``residual_history.png`` and TensorBoard scalars;
with ``solver/smoother=learned`` and no ``solver.smoother.learning.checkpoint`` it first learns the smoother
(curves under ``learned/`` in TensorBoard) and saves it as ``learned_smoother.pt``; likewise
``solver.prolongation=learned`` learns ``learned_prolongation.pt`` (``learned_prolongation/``), and
``solver/smoother=stencil_aware`` ``stencil_aware_smoother.pt`` (``learned_stencil_aware_smoother/``), and
``problem=matrix problem.amg.interpolation=learned`` ``learned_interpolation.pt`` (cli/solve_matrix.py).
"""

import logging
import sys
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mgnet_cli import schema
from mgnet_cli.cli.app import in_sweep
from mgnet_cli.cli.solve_matrix import refuse_geometric_keys, save_structured_matrix, solve_matrix
from mgnet_cli.cli.solve_outcome import EXIT_CODES, outcome
from mgnet_cli.cli.solve_settings import PARTS, coefficient_file, learned_smoother, load_or_learn, multigrid_of
from mgnet_cli.errors import ConfigError, MgnetError
from mgnet_cli.pde.hierarchy import PROLONGATIONS, solve_stencil
from mgnet_cli.pde.learned_prolongation import LearnedProlongation
from mgnet_cli.pde.poisson import right_hand_side
from mgnet_cli.pde.problems import finest_stencil, label
from mgnet_cli.pde.solve import Multigrid, SolveResult, smoother_name, solve_poisson
from mgnet_cli.report.plots import residual_history
from mgnet_cli.report.text import residual_table
from mgnet_cli.schema.solve import MatrixProblemConfig, PoissonProblemConfig, ProblemKind, SolveConfig, SolverConfig
from mgnet_cli.storage import write_json_atomic
from mgnet_cli.device import choose_threads, resolve_device
from mgnet_cli.train.tracking import Tracker

PROBLEM_KINDS = tuple(kind.value for kind in ProblemKind)
SOLVER_KEYS = ("solver/smoother", "solver.prolongation", "solver.krylov", "solver.cycle", "solver.pre_smooth",
               "solver.post_smooth")  # what a problem option chooses: the start line names those given
log = logging.getLogger(__name__)


def write_scalars(result: SolveResult, run_dir: Path) -> None:
    """The residual history and the run's figures as TensorBoard scalars."""
    with Tracker(run_dir) as tracker:
        norms = result.residual_norms
        for cycle, (norm, relative) in enumerate(zip(norms, result.relative_residuals)):
            tracker.scalars(cycle, {"residual/norm": norm, "residual/relative": relative})
            if cycle and norms[cycle - 1]:
                tracker.scalars(cycle, {"residual/reduction": norm / norms[cycle - 1]})
        summary = result.summary()
        tracker.scalars(result.cycles, {f"solve/{key}": summary[key] for key in (
            "convergence_factor", "cycles", "setup_time_s", "solve_time_s", "time_per_cycle_s",
            "error_max", "error_l2") if summary[key] is not None})


def learned_parts(multigrid: Multigrid, run_dir: Path,
                  device: torch.device) -> tuple[Multigrid, LearnedProlongation | None, dict[str, Any]]:
    """The learned smoother and prolongation where chosen (learned or loaded): the multigrid that
    uses the smoother, the prolongation rule, and their records for results.json."""
    records: dict[str, Any] = {}
    config = multigrid.config
    if (part := learned_smoother(multigrid)) is not None:
        learning = config.smoother.learning
        model, records[part.record] = load_or_learn(part, learning, learning.checkpoint, multigrid, run_dir, device)
        records[part.record] |= part.describe(model) if part.describe is not None else {}
        multigrid = part.use(multigrid, model.to(device))
    rule = None
    if config.prolongation == "learned":
        part = PARTS[LearnedProlongation.__name__]
        learning = config.learned_prolongation
        rule, records[part.record] = load_or_learn(part, learning, learning.checkpoint, multigrid, run_dir, device)
    elif config.learned_prolongation.checkpoint is not None:
        log.warning("solver.learned_prolongation.checkpoint is unused: solver.prolongation=%s", config.prolongation)
    return multigrid, rule, records


def solve_problem(problem: PoissonProblemConfig, field: torch.Tensor | None, multigrid: Multigrid,
                  device: torch.device, learned: LearnedProlongation | None = None) -> SolveResult:
    """The checked ``problem``: Poisson by its rediscretised levels, the others by Galerkin coarse
    levels (``field``: a coefficient file's, read once)."""
    if problem.kind == "poisson":
        return solve_poisson(problem.n, str(problem.rhs), multigrid, device, problem.seed)
    rule = learned.to(device) if learned is not None else PROLONGATIONS[str(multigrid.config.prolongation)]
    f = right_hand_side(str(problem.rhs), problem.n, multigrid.dtype, device, problem.seed)
    return solve_stencil(finest_stencil(problem, multigrid.dtype, device, field), f, multigrid, rule)


def run(cfg: DictConfig) -> float:
    """Solves one problem; returns the convergence factor (the value sweeps minimise)."""
    checked: SolveConfig = schema.check(cfg, "solve")  # nothing below reads ``cfg`` again
    config = OmegaConf.to_container(cfg, resolve=True)  # as composed, for results.json
    solver, checked_problem = checked.solver, checked.problem
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    choices = HydraConfig.get().runtime.choices
    chosen = choices.get("problem", checked_problem.kind)
    if chosen in PROBLEM_KINDS and chosen != checked_problem.kind:
        raise ConfigError(f"problem.kind={checked_problem.kind}: choose the problem with "
                          f"problem={checked_problem.kind} (configs/problem/), not by its kind")
    if isinstance(checked_problem, MatrixProblemConfig):  # any SPD matrix: algebraic multigrid (amg/)
        refuse_geometric_keys(list(HydraConfig.get().overrides.task), solver)
        device = solve_device(solver)
        solved = solve_matrix(checked_problem, solver.tol, solver.max_cycles, device, run_dir)
        return record(*solved, solver, device, config, run_dir)
    problem, field = checked_problem, coefficient_file(checked_problem)
    multigrid = multigrid_of(solver)
    if problem.kind == "poisson" and solver.prolongation != "bilinear":
        raise ConfigError(f"solver.prolongation={solver.prolongation}: problem=poisson rediscretises "
                          f"the Laplacian with bilinear transfers; for Galerkin coarsening use "
                          f"problem=diffusion problem.coefficient=constant")
    name = choices.get("solver/smoother", smoother_name(multigrid.smoother))
    shape = (f"{solver.cycle.upper()}({solver.pre_smooth},{solver.post_smooth})"
             if solver.cycle != "backslash" else f"backslash({solver.pre_smooth})")
    shape += "-preconditioned CG" if solver.krylov == "cg" else ""
    prolongation = str(solver.prolongation) if problem.kind != "poisson" else "bilinear"
    coarsening = "" if problem.kind == "poisson" else f", {prolongation} Galerkin"
    given = [item for item in HydraConfig.get().overrides.task if item.lstrip("+~").split("=")[0] in SOLVER_KEYS]
    log.info("solver: %s %s%s (problem=%s's default%s)", shape, name, coarsening, problem.kind,
             f"; given: {' '.join(given)}" if given else "")  # configs/problem/*.yaml choose the solver
    device = solve_device(solver)
    if problem.save_matrix is not None:
        save_structured_matrix(finest_stencil(problem, field=field), problem.save_matrix)
    multigrid, rule, records = learned_parts(multigrid, run_dir, device)
    result = solve_problem(problem, field, multigrid, device, rule)
    title = f"n={problem.n} {label(problem)} {problem.rhs}, {shape} {name}{coarsening}"
    described = {"problem": label(problem), "smoother": name, "prolongation": prolongation}
    return record(result, title, described, records, solver, device, config, run_dir)


def solve_device(solver: SolverConfig) -> torch.device:
    """``solver.device`` resolved; on CPU, the threads set (and logged)."""
    device = resolve_device(solver.device, "solver.device")
    if device.type == "cpu":
        threads, why = choose_threads(solver.threads)
        torch.set_num_threads(threads)
        log.info("%d CPU thread%s: %s", threads, "s" if threads > 1 else "", why)
    return device


def record(result: SolveResult, title: str, described: dict[str, Any], records: dict[str, Any],
           solver: SolverConfig, device: torch.device, config: dict[str, Any], run_dir: Path) -> float:
    """Logs the solve, writes the run folder's files (results.json last) and ends as the outcome
    says: returns the convergence factor, or exits 1 (2 if diverged) outside a sweep."""
    tol, dtype_name = solver.tol, str(solver.dtype)
    log.info("%s on %s, %s; levels %s\n%s", title, device, dtype_name, result.levels,
             residual_table(result))
    log.info("%s after %d cycles (relative residual %.2e); convergence factor %.3f per cycle; "
             "setup %.3f s, solve %.3f s (%.1f ms per cycle)", result.status, result.cycles,
             result.relative_residuals[-1], result.convergence_factor, result.setup_time_s,
             result.solve_time_s, 1e3 * result.solve_time_s / max(result.cycles, 1))
    said = outcome(result, tol, dtype_name)
    if not result.converged:
        log.warning("%s", said)
    if result.error_max is not None:
        log.info("discretisation error against the exact solution: max %.3e, L2 %.3e",
                 result.error_max, result.error_l2)

    results = {"command": "solve", "config": config, "device": str(device), "torch_version": torch.__version__,
               **described, **result.summary(), **records}
    residual_history(result.relative_residuals, tol, f"{title}: factor {result.convergence_factor:.3f}",
                     run_dir / "residual_history.png")
    write_scalars(result, run_dir)
    write_json_atomic(run_dir / "results.json", results)  # last: a run with results has every file
    log.info("results in %s", run_dir)
    if result.status == "diverged":
        raise MgnetError(f"{said} (results in {run_dir})")
    if not result.converged and not in_sweep():  # a sweep records the status and goes on
        print(f"mgnet solve: {said} (results in {run_dir})", file=sys.stderr)
        sys.exit(EXIT_CODES[result.status])
    return result.convergence_factor
