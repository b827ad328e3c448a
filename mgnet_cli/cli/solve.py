"""``mgnet solve``: check the config, solve the problem by multigrid cycles, report and record the run.

Writes into the run folder: ``results.json``, ``residual_history.png`` and TensorBoard scalars;
with ``solver/smoother=learned`` and no ``solver.smoother.learning.checkpoint`` it first learns the smoother
(curves under ``learned/`` in TensorBoard) and saves it as ``learned_smoother.pt``; likewise
``solver.prolongation=learned`` learns ``learned_prolongation.pt`` (``learned_prolongation/``), and
``solver/smoother=stencil_aware`` ``stencil_aware_smoother.pt`` (``learned_stencil_aware_smoother/``).
"""

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mgnet_cli import schema
from mgnet_cli.cli.app import in_sweep
from mgnet_cli.cli.solve_matrix import refuse_geometric_keys, save_structured_matrix, solve_matrix
from mgnet_cli.cli.solve_outcome import EXIT_CODES, outcome
from mgnet_cli.cli.solve_settings import (Smoother, built, coefficient_file, multigrid_settings,
                                         smoother_factory, training_settings)
from mgnet_cli.errors import ConfigError, MgnetError
from mgnet_cli.pde.hierarchy import PROLONGATIONS, ProlongationRule, solve_stencil
from mgnet_cli.pde.learned_prolongation import LearnedProlongation
from mgnet_cli.pde.learned_smoother import START_OMEGA
from mgnet_cli.pde.poisson import right_hand_side
from mgnet_cli.pde.problems import finest_stencil, label
from mgnet_cli.pde.prolongation_learning import learn_prolongation, load_prolongation, save_prolongation
from mgnet_cli.pde.learning import MakeOptimizer, Schedule, measure_size
from mgnet_cli.pde.smoother_learning import kernel_table, learn_smoother, load_learned, save_learned, with_kernels
from mgnet_cli.pde.solve import MultigridSettings, SolveResult, solve_poisson
from mgnet_cli.pde.stencil_smoother_learning import (learn_stencil_smoother, load_stencil_smoother,
                                                     save_stencil_smoother, with_net)
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


def learning_tools(node: Any, key: str, steps: int) -> tuple[MakeOptimizer, Schedule]:
    """A learned part's optimizer factory and schedule (``<key>.optimizer``, ``<key>.scheduler``,
    over ``steps`` unless its ``epochs`` says otherwise), each built once on a probe so that a bad
    one is a one-line error before any learning."""
    probe = [torch.zeros(1, requires_grad=True)]
    make_optimizer = built(node.optimizer, f"{key}.optimizer", lambda make: make(probe))
    scheduler = replace(node.scheduler, epochs=node.scheduler.epochs or steps)
    schedule = built(scheduler, f"{key}.scheduler", lambda rule: [float(rule(step)) for step in (0, steps)])
    return make_optimizer, schedule


@dataclass(frozen=True)
class Part:
    """A learned solver part: the key of its training settings, the file it is saved as, and how it
    is loaded, learned, saved and put into the cycle's options."""

    key: str  # solver.smoother.learning, solver.learned_prolongation
    file: str
    record: str  # its entry in results.json
    what: str  # what the training grids' levels are: smoothed or coarsened
    load: Callable[[Path, MultigridSettings], tuple[Any, dict[str, Any]]]
    learn: Callable[[Any, MultigridSettings, MakeOptimizer, Schedule, Path, torch.device], Any]
    save: Callable[[Path, Any, MultigridSettings], None]


def galerkin_rule(options: MultigridSettings) -> ProlongationRule:
    """The fixed rule a stencil-aware smoother is learned and checked with (Black Box if learned)."""
    return PROLONGATIONS.get(options.prolongation, PROLONGATIONS["black_box"])


PARTS = {
    "learned": Part(
        "solver.smoother.learning", "learned_smoother.pt", "learned_smoother", "smoothed",
        load=lambda path, options: load_learned(path),
        learn=learn_smoother, save=save_learned),
    "stencil_aware": Part(
        "solver.smoother.learning", "stencil_aware_smoother.pt", "stencil_aware_smoother", "smoothed",
        load=lambda path, options: load_stencil_smoother(path, options, galerkin_rule(options)),
        learn=lambda settings, options, make, schedule, run_dir, device: learn_stencil_smoother(
            settings, options, galerkin_rule(options), make, schedule, run_dir),
        save=save_stencil_smoother),
    "learned_prolongation": Part(
        "solver.learned_prolongation", "learned_prolongation.pt", "learned_prolongation", "coarsened",
        load=lambda path, options: load_prolongation(path),
        learn=lambda settings, options, make, schedule, run_dir, device: learn_prolongation(
            settings, options, make, schedule, run_dir),
        save=save_prolongation),
}


def load_or_learn(part: Part, node: Any, options: MultigridSettings, run_dir: Path,
                  device: torch.device) -> tuple[Any, dict[str, Any]]:
    """Loads ``<key>.checkpoint`` or learns the part (saved in ``run_dir``); returns it and its
    record for results.json."""
    key = part.key
    if node.checkpoint is not None:
        path = Path(node.checkpoint).expanduser()
        model, state = part.load(path, options)
        log.info("%s loaded from %s (learned for %s)", part.record.replace("_", " "), path, state.get("cycle"))
        return model, {"checkpoint": str(path), "learned_here": False, "learned_for": state.get("cycle"),
                       "settings": state.get("settings")}
    settings = training_settings(node, key, options.coarsest_n, part.what)
    make_optimizer, schedule = learning_tools(node, key, settings.steps)
    result = part.learn(settings, options, make_optimizer, schedule, run_dir, device)
    path = run_dir / part.file
    part.save(path, result, options)
    log.info("learned in %.1f s (%d steps); saved as %s: reuse it with %s.checkpoint=%s",
             result.time_s, settings.steps, path, key, path)
    measured_n = measure_size(settings)
    return result.model, {"checkpoint": str(path), "learned_here": True, "time_s": result.time_s,
                          "factors": [{"step": step, "n": measured_n, "factor": factor}
                                      for step, factor in result.factors],
                          "held_out": result.held_out, "final_loss": result.losses[-1]}


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


def learned_parts(solver: SolverConfig, smoother: Smoother, options: MultigridSettings, run_dir: Path,
                  device: torch.device) -> tuple[MultigridSettings, LearnedProlongation | None, dict[str, Any]]:
    """The learned smoother and prolongation where chosen (learned or loaded): the options that use
    the smoother, the prolongation rule, and their records for results.json."""
    records: dict[str, Any] = {}
    if smoother.learned is not None:
        part = PARTS[smoother.learned]
        model, records[part.record] = load_or_learn(part, solver.smoother.learning, options, run_dir, device)
        if smoother.learned == "learned":
            records["learned_smoother"]["kernels"] = {where: kernel.detach().cpu().tolist()
                                                      for where, kernel in model.labelled()}
            log.info("3x3 kernels in units of D^-1 = h^2/4:\n%s", kernel_table(model, START_OMEGA))
            options = with_kernels(options, model.to(device))
        else:
            options = with_net(options, model.to(device))
    rule = None
    if options.prolongation == "learned":
        rule, records["learned_prolongation"] = load_or_learn(PARTS["learned_prolongation"],
                                                              solver.learned_prolongation, options, run_dir, device)
    elif solver.learned_prolongation.checkpoint is not None:
        log.warning("solver.learned_prolongation.checkpoint is unused: solver.prolongation=%s",
                    options.prolongation)
    return options, rule, records


@dataclass(frozen=True)
class Stopping:
    """When the solve stops and what it computes in: ``solver.tol``, ``solver.max_cycles``, dtype, device."""

    tol: float
    max_cycles: int
    dtype: torch.dtype
    device: torch.device


def solve_problem(problem: PoissonProblemConfig, field: torch.Tensor | None, options: MultigridSettings,
                  stopping: Stopping, learned: LearnedProlongation | None = None) -> SolveResult:
    """The checked ``problem``: Poisson by its rediscretised levels, the others by Galerkin coarse
    levels (``field``: a coefficient file's, read once)."""
    tol, max_cycles, dtype, device = stopping.tol, stopping.max_cycles, stopping.dtype, stopping.device
    if problem.kind == "poisson":
        return solve_poisson(problem.n, str(problem.rhs), options, tol, max_cycles, dtype, device, problem.seed)
    rule = learned.to(device) if learned is not None else PROLONGATIONS[options.prolongation]
    f = right_hand_side(str(problem.rhs), problem.n, dtype, device, problem.seed)
    return solve_stencil(finest_stencil(problem, dtype, device, field), f, options, rule, tol, max_cycles)


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
        stopping = stopping_for(solver)
        solved = solve_matrix(checked_problem, stopping.tol, stopping.max_cycles, stopping.device)
        return record(*solved, stopping, config, run_dir)
    problem, field = checked_problem, coefficient_file(checked_problem)
    smoother = smoother_factory(solver.smoother)
    options = multigrid_settings(solver, smoother)
    if problem.kind == "poisson" and options.prolongation != "bilinear":
        raise ConfigError(f"solver.prolongation={options.prolongation}: problem=poisson rediscretises "
                          f"the Laplacian with bilinear transfers; for Galerkin coarsening use "
                          f"problem=diffusion problem.coefficient=constant")
    n, rhs = problem.n, str(problem.rhs)
    name = choices.get("solver/smoother", smoother.name)
    shape = (f"{options.cycle.upper()}({options.pre_smooth},{options.post_smooth})"
             if options.cycle != "backslash" else f"backslash({options.pre_smooth})")
    shape += "-preconditioned CG" if options.krylov == "cg" else ""
    coarsening = "" if problem.kind == "poisson" else f", {options.prolongation} Galerkin"
    given = [item for item in HydraConfig.get().overrides.task if item.lstrip("+~").split("=")[0] in SOLVER_KEYS]
    log.info("solver: %s %s%s (problem=%s's default%s)", shape, name, coarsening, problem.kind,
             f"; given: {' '.join(given)}" if given else "")  # configs/problem/*.yaml choose the solver
    stopping = stopping_for(solver)
    if problem.save_matrix is not None:
        save_structured_matrix(finest_stencil(problem, field=field), problem.save_matrix)
    options, rule, records = learned_parts(solver, smoother, options, run_dir, stopping.device)
    result = solve_problem(problem, field, options, stopping, rule)
    title = f"n={n} {label(problem)} {rhs}, {shape} {name}{coarsening}"
    described = {"problem": label(problem), "smoother": name,
                 "prolongation": options.prolongation if problem.kind != "poisson" else "bilinear"}
    return record(result, title, described, records, stopping, config, run_dir)


def stopping_for(solver: SolverConfig) -> Stopping:
    """``solver``'s tolerance, cycles, dtype and device; on CPU, the threads set (and logged)."""
    stopping = Stopping(solver.tol, solver.max_cycles, getattr(torch, str(solver.dtype)),
                        resolve_device(solver.device, "solver.device"))
    if stopping.device.type == "cpu":
        threads, why = choose_threads(solver.threads)
        torch.set_num_threads(threads)
        log.info("%d CPU thread%s: %s", threads, "s" if threads > 1 else "", why)
    return stopping


def record(result: SolveResult, title: str, described: dict[str, Any], records: dict[str, Any],
           stopping: Stopping, config: dict[str, Any], run_dir: Path) -> float:
    """Logs the solve, writes the run folder's files (results.json last) and ends as the outcome
    says: returns the convergence factor, or exits 1 (2 if diverged) outside a sweep."""
    device, tol, dtype_name = stopping.device, stopping.tol, str(stopping.dtype).removeprefix("torch.")
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
