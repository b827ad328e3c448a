"""``mgnet solve``: check the config, solve the problem by multigrid cycles, report and record the run.

Writes into the run folder: ``results.json``, ``residual_history.png`` and TensorBoard scalars;
with ``solver/smoother=learned`` and no ``solver.learned.checkpoint`` it first learns the smoother
(curves under ``learned/`` in TensorBoard) and saves it as ``learned_smoother.pt``; likewise
``solver.prolongation=learned`` learns ``learned_prolongation.pt`` (``learned_prolongation/``), and
``solver/smoother=stencil_aware`` ``stencil_aware_smoother.pt`` (``learned_stencil_aware_smoother/``).
"""

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mgnet_cli.cli.app import in_sweep
from mgnet_cli.cli.solve_outcome import EXIT_CODES, outcome
from mgnet_cli.cli.solve_settings import (DTYPES, built, is_learned, is_stencil_aware, learning_settings,
                                         multigrid_settings, problem_settings, prolongation_settings,
                                         stencil_aware_settings)
from mgnet_cli.errors import ConfigError, MgnetError
from mgnet_cli.pde.smoother_learning import (MakeOptimizer, kernel_table, learn_smoother, load_learned, save_learned,
                                    with_kernels)
from mgnet_cli.pde.hierarchy import PROLONGATIONS, solve_stencil
from mgnet_cli.pde.learned_prolongation import LearnedProlongation
from mgnet_cli.pde.prolongation_learning import learn_prolongation, load_prolongation, save_prolongation
from mgnet_cli.pde.poisson import right_hand_side
from mgnet_cli.pde.problems import Problem
from mgnet_cli.pde.learned_smoother import START_OMEGA
from mgnet_cli.pde.stencil_smoother_learning import (learn_stencil_smoother, load_stencil_smoother,
                                                     save_stencil_smoother, with_net)
from mgnet_cli.pde.solve import MultigridSettings, SolveResult, smoother_name, solve_poisson
from mgnet_cli import schema
from mgnet_cli.report.plots import residual_history
from mgnet_cli.report.text import residual_table
from mgnet_cli.storage import write_json_atomic
from mgnet_cli.device import choose_threads, resolve_device
from mgnet_cli.train.tracking import Tracker

log = logging.getLogger(__name__)


def learning_tools(node: DictConfig, key: str, steps: int) -> tuple[MakeOptimizer, Callable[[float], float]]:
    """A learned part's optimizer factory and schedule (``<key>.optimizer``, ``<key>.scheduler``),
    each built once on a probe so that a bad one is a one-line error before any learning."""
    probe = [torch.zeros(1, requires_grad=True)]
    make_optimizer = built(node.optimizer, f"{key}.optimizer", lambda make: make(probe))
    schedule = built(node.scheduler, f"{key}.scheduler", lambda rule: [float(rule(step)) for step in (0, steps)])
    return make_optimizer, schedule


def learned_smoother(solver: DictConfig, options: MultigridSettings, run_dir: Path,
                     device: torch.device) -> tuple[MultigridSettings, dict[str, Any]]:
    """Loads ``solver.learned.checkpoint`` or learns the kernels (saved in ``run_dir``); returns the
    options that use them and a record for results.json."""
    node = solver.learned
    if node.checkpoint is not None:
        path = Path(str(node.checkpoint)).expanduser()
        kernels, state = load_learned(path)
        record: dict[str, Any] = {"checkpoint": str(path), "learned_here": False,
                                  "learned_for": state.get("cycle"), "settings": state.get("settings")}
        log.info("learned smoother loaded from %s (learned for %s)", path, state.get("cycle"))
    else:
        settings = learning_settings(node, options.coarsest_n)
        make_optimizer, schedule = learning_tools(node, "solver.learned", settings.steps)
        result = learn_smoother(settings, options, make_optimizer, schedule, run_dir, device)
        kernels, path = result.kernels, run_dir / "learned_smoother.pt"
        save_learned(path, result, options)
        log.info("learned in %.1f s (%d steps); saved as %s: reuse it with "
                 "solver.learned.checkpoint=%s", result.time_s, settings.steps, path, path)
        record = {"checkpoint": str(path), "learned_here": True, "time_s": result.time_s,
                  "factors": [{"step": step, "n": settings.measure_size, "factor": factor}
                              for step, factor in result.factors],
                  "final_loss": result.losses[-1]}
    record["kernels"] = {label: kernel.detach().cpu().tolist() for label, kernel in kernels.labelled()}
    log.info("3x3 kernels in units of D^-1 = h^2/4:\n%s", kernel_table(kernels, START_OMEGA))
    return with_kernels(options, kernels.to(device)), record


def learned_prolongation(node: DictConfig, options: MultigridSettings,
                         run_dir: Path) -> tuple[LearnedProlongation, dict[str, Any]]:
    """Loads ``solver.learned_prolongation.checkpoint`` or learns the network (saved in ``run_dir``)."""
    if node.checkpoint is not None:
        path = Path(str(node.checkpoint)).expanduser()
        model, state = load_prolongation(path)
        log.info("learned prolongation loaded from %s (learned for %s)", path, state.get("cycle"))
        return model, {"checkpoint": str(path), "learned_here": False, "learned_for": state.get("cycle"),
                       "settings": state.get("settings")}
    settings = prolongation_settings(node, options.coarsest_n)
    make_optimizer, schedule = learning_tools(node, "solver.learned_prolongation", settings.steps)
    result = learn_prolongation(settings, options, make_optimizer, schedule, run_dir)
    path = run_dir / "learned_prolongation.pt"
    save_prolongation(path, result, options)
    log.info("learned in %.1f s (%d steps); saved as %s: reuse it with "
             "solver.learned_prolongation.checkpoint=%s", result.time_s, settings.steps, path, path)
    return result.model, {"checkpoint": str(path), "learned_here": True, "time_s": result.time_s,
                          "factors": [{"step": step, "factor": factor} for step, factor in result.factors],
                          "final_loss": result.losses[-1]}


def stencil_aware_smoother(node: DictConfig, options: MultigridSettings, run_dir: Path,
                           device: torch.device) -> tuple[MultigridSettings, dict[str, Any]]:
    """Loads ``solver.stencil_aware.checkpoint`` (checked to converge) or learns the network (saved
    in ``run_dir``), through Galerkin cycles with ``solver.prolongation`` (Black Box if learned)."""
    rule = PROLONGATIONS.get(options.prolongation, PROLONGATIONS["black_box"])
    if node.checkpoint is not None:
        path = Path(str(node.checkpoint)).expanduser()
        net, state = load_stencil_smoother(path, options, rule)
        log.info("stencil-aware smoother loaded from %s (learned for %s)", path, state.get("cycle"))
        return with_net(options, net.to(device)), {"checkpoint": str(path), "learned_here": False,
                                        "learned_for": state.get("cycle"), "settings": state.get("settings")}
    settings = stencil_aware_settings(node, options.coarsest_n)
    key = "solver.stencil_aware"
    make_optimizer, schedule = learning_tools(node, key, settings.steps)
    result = learn_stencil_smoother(settings, options, rule, make_optimizer, schedule, run_dir)
    path = run_dir / "stencil_aware_smoother.pt"
    save_stencil_smoother(path, result, options)
    log.info("learned in %.1f s (%d steps); saved as %s: reuse it with %s.checkpoint=%s",
             result.time_s, settings.steps, path, key, path)
    return with_net(options, result.model.to(device)), {
        "checkpoint": str(path), "learned_here": True, "time_s": result.time_s,
        "factors": [{"step": step, "factor": factor} for step, factor in result.factors],
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


def learned_parts(solver: DictConfig, smoother: str, options: MultigridSettings, run_dir: Path,
                  device: torch.device) -> tuple[MultigridSettings, LearnedProlongation | None, dict[str, Any]]:
    """The learned smoother and prolongation where chosen (learned or loaded): the options that use
    the smoother, the prolongation rule, and their records for results.json."""
    records: dict[str, Any] = {}
    if is_learned(solver.smoother):
        options, records["learned_smoother"] = learned_smoother(solver, options, run_dir, device)
    elif solver.learned.checkpoint is not None:
        log.warning("solver.learned.checkpoint is unused: solver/smoother=%s", smoother)
    if is_stencil_aware(solver.smoother):
        options, records["stencil_aware_smoother"] = stencil_aware_smoother(solver.stencil_aware, options,
                                                                            run_dir, device)
    elif solver.stencil_aware.checkpoint is not None:
        log.warning("solver.stencil_aware.checkpoint is unused: solver/smoother=%s", smoother)
    rule = None
    if options.prolongation == "learned":
        rule, records["learned_prolongation"] = learned_prolongation(solver.learned_prolongation, options,
                                                                     run_dir)
    elif solver.learned_prolongation.checkpoint is not None:
        log.warning("solver.learned_prolongation.checkpoint is unused: solver.prolongation=%s",
                    options.prolongation)
    return options, rule, records


def solve_problem(problem: Problem, rhs: str, seed: int, options: MultigridSettings, tol: float,
                  max_cycles: int, dtype: torch.dtype, device: torch.device,
                  learned: LearnedProlongation | None = None) -> SolveResult:
    """Poisson by its rediscretised levels; the other problems by Galerkin coarse levels."""
    if problem.kind == "poisson":
        return solve_poisson(problem.n, rhs, options, tol, max_cycles, dtype, device, seed)
    rule = learned.to(device) if learned is not None else PROLONGATIONS[options.prolongation]
    f = right_hand_side(rhs, problem.n, dtype, device, seed)
    return solve_stencil(problem.stencil(dtype, device), f, options, rule, tol, max_cycles)


def run(cfg: DictConfig) -> float:
    """Solves one problem; returns the convergence factor (the value sweeps minimise)."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    problem = problem_settings(cfg.problem)
    n, rhs, seed = problem.n, str(cfg.problem.rhs), int(cfg.problem.seed)
    options = multigrid_settings(cfg.solver)
    if problem.kind == "poisson" and options.prolongation != "bilinear":
        raise ConfigError(f"solver.prolongation={options.prolongation}: problem=poisson rediscretises "
                          f"the Laplacian with bilinear transfers; for Galerkin coarsening use "
                          f"problem=diffusion problem.coefficient=constant")
    tol, max_cycles = float(cfg.solver.tol), int(cfg.solver.max_cycles)  # ranges: the schema's
    dtype = DTYPES[str(cfg.solver.dtype)]
    device = resolve_device(str(cfg.solver.device), "solver.device")
    if device.type == "cpu":
        threads, why = choose_threads(schema.check(cfg, "solve").solver.threads)
        torch.set_num_threads(threads)
        log.info("%d CPU thread%s: %s", threads, "s" if threads > 1 else "", why)
    smoother = HydraConfig.get().runtime.choices.get("solver/smoother", smoother_name(options.smoother))
    options, rule, records = learned_parts(cfg.solver, smoother, options, run_dir, device)
    result = solve_problem(problem, rhs, seed, options, tol, max_cycles, dtype, device, rule)
    shape = (f"{options.cycle.upper()}({options.pre_smooth},{options.post_smooth})"
             if options.cycle != "backslash" else f"backslash({options.pre_smooth})")
    shape += "-preconditioned CG" if options.krylov == "cg" else ""
    coarsening = "" if problem.kind == "poisson" else f", {options.prolongation} Galerkin"
    title = f"n={n} {problem.label()} {rhs}, {shape} {smoother}{coarsening}"
    log.info("%s on %s, %s; levels %s\n%s", title, device, cfg.solver.dtype, result.levels,
             residual_table(result))
    log.info("%s after %d cycles (relative residual %.2e); convergence factor %.3f per cycle; "
             "setup %.3f s, solve %.3f s (%.1f ms per cycle)", result.status, result.cycles,
             result.relative_residuals[-1], result.convergence_factor, result.setup_time_s,
             result.solve_time_s, 1e3 * result.solve_time_s / max(result.cycles, 1))
    said = outcome(result, tol, str(cfg.solver.dtype))
    if not result.converged:
        log.warning("%s", said)
    if result.error_max is not None:
        log.info("discretisation error against the exact solution: max %.3e, L2 %.3e",
                 result.error_max, result.error_l2)

    results = {"command": "solve", "config": OmegaConf.to_container(cfg, resolve=True),
               "device": str(device), "torch_version": torch.__version__, "problem": problem.label(),
               "smoother": smoother,
               "prolongation": options.prolongation if problem.kind != "poisson" else "bilinear",
               **result.summary(), **records}
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
