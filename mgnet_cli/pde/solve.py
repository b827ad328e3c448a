"""Geometric multigrid for the Poisson problem: the network's ``MultigridCycle``, repeated to tolerance.

Each level is a ``Level(A = 5-point Laplacian on its own h, smoother, R = full weighting, Pi = None,
P = bilinear interpolation, post_smoother)``; Pi = None makes every coarse problem a correction
equation, as it is for a linear problem. The coarsest level's smoother is an exact solve.
Everything runs under ``torch.inference_mode``: nothing here is trained.
"""

import math
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from mgnet_cli.cycle import CycleShape, Level, MultigridCycle
from mgnet_cli.pde.krylov import adjoint_post_smoother, conjugate_gradients
from mgnet_cli.pde.poisson import (BilinearInterpolation, FullWeighting, Laplacian, RightHandSide,
                                   coarse_size, right_hand_side, sine_solution)
from mgnet_cli.pde.smoothers import DampedJacobi, DirectSolve, SmootherFactory
from mgnet_cli.timing import synchronize

log = logging.getLogger(__name__)

Status = Literal["converged", "stagnated", "max_cycles", "diverged"]


@dataclass(frozen=True)
class MultigridSettings:
    """How to cycle: shape, smoother, V(pre_smooth, post_smooth), and where to stop coarsening."""

    cycle: CycleShape = "v"
    smoother: SmootherFactory = DampedJacobi  # steps -> smoother (configs/solver/smoother/)
    pre_smooth: int = 1
    post_smooth: int = 1
    coarsest_n: int = 7  # solved exactly; 7 x 7 = 49 unknowns
    prolongation: str = "bilinear"  # Galerkin coarsening (pde/hierarchy.py): bilinear, black_box, learned
    krylov: str = "none"  # cg: the cycle (made symmetric) preconditions conjugate gradients (krylov.py)

    def post_smoother(self) -> nn.Module:
        """The post-smoother of a level: for CG the adjoint of the pre-smoother."""
        smoother = self.smoother(self.post_smooth)
        return adjoint_post_smoother(smoother) if self.krylov == "cg" else smoother


def smoother_name(factory: SmootherFactory) -> str:
    """The smoother's class name (``functools.partial`` unwrapped), for logs and records."""
    return getattr(getattr(factory, "func", factory), "__name__", type(factory).__name__)


@dataclass(frozen=True)
class SolveResult:
    """What a solve did. ``residual_norms[k] = ||f - A u_k||_2``, ``u_0 = 0``; times in seconds."""

    n: int
    levels: list[int]  # interior points per side, finest first
    residual_norms: list[float]
    convergence_factor: float  # asymptotic residual reduction per cycle
    status: Status
    setup_time_s: float
    solve_time_s: float
    error_max: float | None = None  # max |u_h - u| against the exact solution (sine only)
    error_l2: float | None = None  # (h^2 sum (u_h - u)^2)^(1/2)
    solution: torch.Tensor | None = field(default=None, repr=False)

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    @property
    def cycles(self) -> int:
        return len(self.residual_norms) - 1

    @property
    def relative_residuals(self) -> list[float]:
        return [norm / self.residual_norms[0] for norm in self.residual_norms]

    def summary(self) -> dict[str, Any]:
        """Plain data for results.json (everything but the solution)."""
        return {
            "n": self.n, "levels": self.levels, "cycles": self.cycles,
            "status": self.status, "convergence_factor": self.convergence_factor,
            "final_relative_residual": self.relative_residuals[-1],
            "setup_time_s": self.setup_time_s, "solve_time_s": self.solve_time_s,
            "time_per_cycle_s": self.solve_time_s / max(self.cycles, 1),
            "error_max": self.error_max, "error_l2": self.error_l2,
            "residual_norms": self.residual_norms, "relative_residuals": self.relative_residuals,
        }


def build_cycle(n: int, options: MultigridSettings, dtype: torch.dtype,
                device: torch.device | str) -> tuple[MultigridCycle, list[int]]:
    """The multigrid cycle for an ``n x n`` grid and its level sizes, finest first."""
    sizes = [n]
    while sizes[-1] > options.coarsest_n:
        sizes.append(coarse_size(sizes[-1]))
    make = options.smoother
    levels = []
    for size in sizes[:-1]:
        levels.append(Level(
            A=Laplacian(1.0 / (size + 1)),
            smoother=make(options.pre_smooth),
            restrict_residual=FullWeighting(),
            restrict_u=None,  # Pi = 0: the coarse unknown is the correction
            prolong=BilinearInterpolation(),
            post_smoother=options.post_smoother(),
        ))
    coarsest = Laplacian(1.0 / (sizes[-1] + 1))
    levels.append(Level(A=coarsest, smoother=DirectSolve(coarsest, sizes[-1], dtype, device)))
    return MultigridCycle(levels, shape=options.cycle), sizes


def asymptotic_factor(residual_norms: list[float]) -> float:
    """Mean reduction per cycle over the second half of the cycles (the first ones are transient)."""
    cycles = len(residual_norms) - 1
    if cycles < 1 or residual_norms[-1] == 0.0:
        return 0.0
    span = max(1, cycles // 2)
    return (residual_norms[-1] / residual_norms[-1 - span]) ** (1.0 / span)


def above_round_off(residual_norms: list[float]) -> list[float]:
    """The norms of a stagnated solve before it came within 100x of its round-off floor."""
    floor = 100 * residual_norms[-1]
    kept = [norm for norm in residual_norms if norm > floor]
    return kept if len(kept) > 1 else residual_norms


def iterate(cycle: MultigridCycle, A: Laplacian, f: torch.Tensor, tol: float,
            max_cycles: int) -> tuple[torch.Tensor, list[float], Status]:
    """Cycles from ``u = 0`` until ``||f - A u|| <= tol ||f||``: (u, residual norms, status).

    Stops early (``stagnated``) when a cycle no longer lowers the residual: the round-off floor;
    ``diverged`` when the residual is not finite, or grows while above the right-hand side's norm.
    """
    u, residual = None, f
    norms = [torch.linalg.vector_norm(f).item()]
    for k in range(max_cycles):
        u = cycle(u, f, residual)
        residual = A.residual(u, f)  # for the stopping test and the next cycle's first smoothing
        norms.append(torch.linalg.vector_norm(residual).item())
        if norms[-1] <= tol * norms[0]:
            return u, norms, "converged"
        if not math.isfinite(norms[-1]) or (norms[-1] > norms[0] and norms[-1] > norms[-2]):
            return u, norms, "diverged"
        if k >= 2 and norms[-1] >= norms[-2]:
            log.warning("the residual stopped falling at %.3g (relative) after %d cycles: the "
                        "round-off floor of %s; raise solver.tol", norms[-1] / norms[0], k + 1,
                        f.dtype)
            return u, norms, "stagnated"
    return u, norms, "max_cycles"


def solve_system(f: torch.Tensor, build: Callable[[], tuple[MultigridCycle, list[int]]], tol: float,
                 max_cycles: int, krylov: str = "none") -> SolveResult:
    """Builds the cycle (timed as setup) and cycles on ``A u = f`` from ``u = 0`` (timed as solve),
    or, ``krylov="cg"``, runs conjugate gradients with one cycle per iteration as preconditioner."""
    device = f.device
    start = time.perf_counter()
    cycle, sizes = build()  # setup: levels, coarse operators, the coarsest factor
    synchronize(device)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    run = conjugate_gradients if krylov == "cg" else iterate
    u, norms, status = run(cycle, cycle.levels[0].A, f, tol, max_cycles)
    synchronize(device)
    solve_time = time.perf_counter() - start
    factor = asymptotic_factor(above_round_off(norms) if status == "stagnated" else norms)
    log.debug("n=%d: %d cycles, factor %.3f", f.shape[-1], len(norms) - 1, factor)
    return SolveResult(n=f.shape[-1], levels=sizes, residual_norms=norms, convergence_factor=factor,
                       status=status, setup_time_s=setup, solve_time_s=solve_time, solution=u)


def solve_poisson(n: int, rhs: RightHandSide = "random", options: MultigridSettings | None = None,
                  tol: float = 1e-8, max_cycles: int = 50, dtype: torch.dtype = torch.float64,
                  device: torch.device | str = "cpu", seed: int = 0) -> SolveResult:
    """Solves ``-Δu = g`` on ``n x n`` interior points by multigrid cycles; see ``SolveResult``."""
    options = options or MultigridSettings()
    device = torch.device(device)
    with torch.inference_mode():
        f = right_hand_side(rhs, n, dtype, device, seed)
        result = solve_system(f, lambda: build_cycle(n, options, dtype, device), tol, max_cycles,
                              options.krylov)
        if rhs == "sine":
            error = result.solution - sine_solution(n, dtype, device)
            result = replace(result, error_max=error.abs().max().item(),
                             error_l2=torch.linalg.vector_norm(error).item() / (n + 1))
    return result
