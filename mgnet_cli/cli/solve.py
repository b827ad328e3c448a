"""``mgnet solve``: check the config, solve Poisson by multigrid cycles, report and record the run.

Writes into the run folder: ``results.json``, ``residual_history.png`` and TensorBoard scalars.
"""

import logging
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mgnet_cli.errors import ConfigError
from mgnet_cli.pde.poisson import RIGHT_HAND_SIDES, is_grid_size
from mgnet_cli.pde.smoothers import SMOOTHERS, SmootherParameters
from mgnet_cli.pde.solve import MultigridOptions, SolveResult, solve_poisson
from mgnet_cli.train.checkpoint import write_json_atomic

log = logging.getLogger(__name__)

DTYPES = {"float64": torch.float64, "float32": torch.float32}
LARGEST_COARSEST_N = 31  # the coarsest grid is factorised densely: 961 unknowns at most


def _choice(value: Any, key: str, allowed: tuple[str, ...]) -> str:
    if str(value) not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed: use one of {', '.join(allowed)}")
    return str(value)


def _integer(value: Any, key: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{key}={value!r}: give an integer >= {minimum}")
    return value


def _number(value: Any, key: str, low: float, high: float, rule: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low < value <= high:
        raise ConfigError(f"{key}={value!r}: give a number {rule}")
    return float(value)


def _grid_size(value: Any, key: str, largest: int | None = None) -> int:
    n = _integer(value, key, 1)
    sizes = [2**level - 1 for level in range(1, 13)]
    if largest is not None:
        sizes = [size for size in sizes if size <= largest]
    if not is_grid_size(n) or (largest is not None and n > largest):
        raise ConfigError(f"{key}={value!r} is not a grid size: give 2^L - 1 interior points "
                          f"({', '.join(map(str, sizes))}{'' if largest else ', ...'})")
    return n


def _device(value: Any) -> torch.device:
    name = str(value)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not (name == "cpu" or name == "cuda" or name.startswith("cuda:")):
        raise ConfigError(f"solver.device={name!r}: use auto, cpu, cuda or cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"solver.device={name} but this machine has no CUDA device: use auto or cpu")
    return torch.device(name)


def multigrid_options(solver: DictConfig) -> MultigridOptions:
    """The cycle's shape, smoother and coarsest grid from ``cfg.solver``, checked."""
    cycle = _choice(solver.cycle, "solver.cycle", ("v", "w", "backslash"))
    pre = _integer(solver.pre_smooth, "solver.pre_smooth", 0)
    post = _integer(solver.post_smooth, "solver.post_smooth", 0)
    if pre == 0 and (cycle == "backslash" or post == 0):
        raise ConfigError(f"solver.pre_smooth={pre}, solver.post_smooth={post} with "
                          f"solver.cycle={cycle} never smooths: give the cycle a smoothing step")
    if cycle == "backslash" and post > 0:
        log.info("the backslash cycle smooths on the way down only: solver.post_smooth is unused")
    parameters = SmootherParameters(
        omega=_number(solver.omega, "solver.omega", 0.0, 1.0, "in (0, 1]"),
        chebyshev_ratio=_number(solver.chebyshev_ratio, "solver.chebyshev_ratio", 1.0,
                                float("inf"), "> 1"),
    )
    return MultigridOptions(
        cycle=cycle, smoother=_choice(solver.smoother, "solver.smoother", tuple(SMOOTHERS)),
        pre_smooth=pre, post_smooth=post, parameters=parameters,
        coarsest_n=_grid_size(solver.coarsest_n, "solver.coarsest_n", LARGEST_COARSEST_N),
    )


def residual_table(result: SolveResult) -> str:
    """One line per cycle: residual norm, relative residual and the reduction of that cycle."""
    lines = [f"{'cycle':>5}  {'residual':>10}  {'relative':>10}  {'reduction':>9}"]
    norms = result.residual_norms
    for cycle, (norm, relative) in enumerate(zip(norms, result.relative_residuals)):
        reduction = f"{norm / norms[cycle - 1]:9.3f}" if cycle and norms[cycle - 1] else ""
        lines.append(f"{cycle:>5}  {norm:10.3e}  {relative:10.3e}  {reduction:>9}")
    return "\n".join(lines)


def plot_history(result: SolveResult, tol: float, title: str, path: Path) -> None:
    """Relative residual per cycle on a log scale, as a PNG (no pyplot: no global backend)."""
    from matplotlib.figure import Figure  # renders with Agg when saved to .png
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.subplots()
    axes.semilogy(range(result.cycles + 1), result.relative_residuals, "o-", label="||f - Au|| / ||f||")
    axes.axhline(tol, color="grey", linestyle="--", label=f"tol {tol:g}")
    axes.set(xlabel="cycle", ylabel="relative residual",
             title=f"{title}: factor {result.convergence_factor:.3f}")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.savefig(path, dpi=100)


def write_scalars(result: SolveResult, run_dir: Path) -> None:
    """The residual history and the run's figures as TensorBoard scalars."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(run_dir))
    try:
        norms = result.residual_norms
        for cycle, (norm, relative) in enumerate(zip(norms, result.relative_residuals)):
            writer.add_scalar("residual/norm", norm, cycle)
            writer.add_scalar("residual/relative", relative, cycle)
            if cycle and norms[cycle - 1]:
                writer.add_scalar("residual/reduction", norm / norms[cycle - 1], cycle)
        summary = result.summary()
        for key in ("convergence_factor", "cycles", "setup_time_s", "solve_time_s",
                    "time_per_cycle_s", "error_max", "error_l2"):
            if summary[key] is not None:
                writer.add_scalar(f"solve/{key}", summary[key], result.cycles)
    finally:
        writer.close()


def run(cfg: DictConfig) -> float:
    """Solves one Poisson problem; returns the convergence factor (the value sweeps minimise)."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    n = _grid_size(cfg.problem.n, "problem.n")
    rhs = _choice(cfg.problem.rhs, "problem.rhs", RIGHT_HAND_SIDES)
    seed = _integer(cfg.problem.seed, "problem.seed", 0)
    options = multigrid_options(cfg.solver)
    tol = _number(cfg.solver.tol, "solver.tol", 0.0, 1.0, "in (0, 1]")
    max_cycles = _integer(cfg.solver.max_cycles, "solver.max_cycles", 1)
    dtype = DTYPES[_choice(cfg.solver.dtype, "solver.dtype", tuple(DTYPES))]
    device = _device(cfg.solver.device)

    result = solve_poisson(n, rhs, options, tol, max_cycles, dtype, device, seed)
    shape = (f"{options.cycle.upper()}({options.pre_smooth},{options.post_smooth})"
             if options.cycle != "backslash" else f"backslash({options.pre_smooth})")
    title = f"n={n} {rhs}, {shape} {options.smoother}"
    log.info("%s on %s, %s; levels %s\n%s", title, device, cfg.solver.dtype, result.levels,
             residual_table(result))
    log.info("%s after %d cycles (relative residual %.2e); convergence factor %.3f per cycle; "
             "setup %.3f s, solve %.3f s (%.1f ms per cycle)", result.status, result.cycles,
             result.relative_residuals[-1], result.convergence_factor, result.setup_time_s,
             result.solve_time_s, 1e3 * result.solve_time_s / max(result.cycles, 1))
    if result.error_max is not None:
        log.info("discretisation error against the exact solution: max %.3e, L2 %.3e",
                 result.error_max, result.error_l2)

    results = {"command": "solve", "config": OmegaConf.to_container(cfg, resolve=True),
               "device": str(device), "torch_version": torch.__version__, **result.summary()}
    write_json_atomic(run_dir / "results.json", results)
    plot_history(result, tol, title, run_dir / "residual_history.png")
    write_scalars(result, run_dir)
    log.info("results in %s", run_dir)
    return result.convergence_factor
