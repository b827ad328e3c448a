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

from mgnet_cli.cycle import Level, MultigridCycle
from mgnet_cli.krylov_choice import Krylov
from mgnet_cli.pde.krylov import adjoint_post_smoother, conjugate_gradients
from mgnet_cli.pde.poisson import (BilinearInterpolation, FullWeighting, Laplacian, RightHandSide,
                                   coarse_size, right_hand_side, sine_solution)
from mgnet_cli.pde.smoothers import DampedJacobi, DirectSolve, SmootherFactory
from mgnet_cli.schema.solve import SolverConfig
from mgnet_cli.timing import synchronize

log = logging.getLogger(__name__)

Status = Literal["converged", "round_off", "stalled", "max_cycles", "diverged"]
"""How a solve ended: ``converged`` (reached ``tol``); ``round_off`` (stopped falling at the floor
round-off allows, ``round_off_floor``); ``stalled`` (no new lowest residual for ``STALL_CYCLES``
cycles, far above that floor); ``max_cycles`` (still falling when the cycles ran out);
``diverged`` (not finite, grew above ``||f||``, or rose in each of the last ``STALL_CYCLES`` cycles)."""

STALL_CYCLES = 5
ROUND_OFF_MARGIN = 3.0  # measured floors lie at 0.1-0.2 x round_off_floor (see there): 15x slack


@dataclass(frozen=True)
class Multigrid:
    """A geometric multigrid solver as the library takes it: ``mgnet solve``'s checked ``solver``
    keys, whole (``SolverConfig``: shape, smoothing steps, coarsest grid, prolongation, Krylov,
    stopping, dtype; its defaults are the command's), and its smoother built, ``steps -> smoother``
    (configs/solver/smoother/; the learned ones hold their network)."""

    config: SolverConfig = field(default_factory=SolverConfig)
    smoother: SmootherFactory = DampedJacobi

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, str(self.config.dtype))

    def but(self, **keys: Any) -> "Multigrid":
        """This solver with these ``solver`` keys changed (checked again)."""
        return replace(self, config=replace(self.config, **keys))

    def level_smoothers(self, A: nn.Module, like: torch.Tensor) -> tuple[nn.Module, nn.Module]:
        """The pre- and post-smoother of the level of ``A`` (``like``: a grid function of it), set up
        for it; for CG the post-smoother is the pre-smoother's adjoint."""
        config = self.config
        pre, post = self.smoother(config.pre_smooth).setup(A, like), self.smoother(config.post_smooth)
        post = adjoint_post_smoother(post) if config.krylov == Krylov.cg else post
        return pre, post.setup_as(pre, A, like)


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
    round_off_floor: float = 0.0  # relative residual round-off allows (see ``round_off_floor``)
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
            "lowest_relative_residual": min(self.relative_residuals),
            "round_off_floor": self.round_off_floor,
            "setup_time_s": self.setup_time_s, "solve_time_s": self.solve_time_s,
            "time_per_cycle_s": self.solve_time_s / max(self.cycles, 1),
            "error_max": self.error_max, "error_l2": self.error_l2,
            "residual_norms": self.residual_norms, "relative_residuals": self.relative_residuals,
        }


def build_cycle(n: int, multigrid: Multigrid, dtype: torch.dtype,
                device: torch.device | str) -> tuple[MultigridCycle, list[int]]:
    """The multigrid cycle for an ``n x n`` grid and its level sizes, finest first."""
    sizes = [n]
    while sizes[-1] > multigrid.config.coarsest_n:
        sizes.append(coarse_size(sizes[-1]))
    levels = []
    for size in sizes[:-1]:
        A = Laplacian(1.0 / (size + 1))
        like = torch.zeros((), dtype=dtype, device=device).expand(1, 1, size, size)  # no memory
        pre, post = multigrid.level_smoothers(A, like)
        levels.append(Level(A=A, smoother=pre, restrict_residual=FullWeighting(),
                            restrict_u=None,  # Pi = 0: the coarse unknown is the correction
                            prolong=BilinearInterpolation(), post_smoother=post))
    coarsest = Laplacian(1.0 / (sizes[-1] + 1))
    levels.append(Level(A=coarsest, smoother=DirectSolve(coarsest, sizes[-1], dtype, device)))
    return MultigridCycle(levels, shape=multigrid.config.cycle), sizes


def asymptotic_factor(residual_norms: list[float]) -> float:
    """Mean reduction per cycle over the second half of the cycles (the first ones are transient)."""
    cycles = len(residual_norms) - 1
    if cycles < 1 or residual_norms[-1] == 0.0:
        return 0.0
    span = max(1, cycles // 2)
    return (residual_norms[-1] / residual_norms[-1 - span]) ** (1.0 / span)


def above_round_off(residual_norms: list[float]) -> list[float]:
    """The norms of a solve that stopped at round-off, before it came within 100x of its floor."""
    floor = 100 * residual_norms[-1]
    kept = [norm for norm in residual_norms if norm > floor]
    return kept if len(kept) > 1 else residual_norms


def checkerboard_norm(A: nn.Module, like: torch.Tensor) -> float:
    """``||A c|| / ||c||`` for the +-1 checkerboard ``c``, the highest grid frequency: a lower bound of
    ``||A||_2``, within 2 % of it for constant coefficients (``c`` is nearly the top eigenvector) and
    within 3x for variable ones (n = 31: lognormal 0.33, jumps of 1000 0.49, rotated anisotropy 0.99).
    A vector ``like`` (a sparse matrix's unknowns, amg/) gets alternating signs: still a lower bound."""
    n = like.shape[-1]
    index = torch.arange(n, device=like.device)
    signs = index[:, None] + index[None, :] if like.dim() > 1 else index
    board = (signs % 2 * 2 - 1).to(like.dtype).expand_as(like)
    return (torch.linalg.vector_norm(A(board)) / torch.linalg.vector_norm(board)).item()


def round_off_floor(A_norm: float, u: torch.Tensor, f: torch.Tensor) -> float:
    """The relative residual below which a cycle's progress drowns in round-off:
    ``eps (||A|| ||u|| + ||f||) / ||f||``, the rounding error of ``f - A u`` (``||A|| ||u|| / ||f||``
    is this solve's condition, at most cond(A)). An estimate, not a bound: the floors measured on
    Poisson (random, sine, ones), lognormal diffusion and anisotropic problems, n = 63-255, in float32
    and float64, lie at 0.1-0.2 of it."""
    f_norm = torch.linalg.vector_norm(f).item()
    u_norm = torch.linalg.vector_norm(u).item() if u is not None else 0.0
    return torch.finfo(f.dtype).eps * (A_norm * u_norm + f_norm) / f_norm if f_norm else 0.0


def stuck(norms: list[float]) -> Status | None:
    """``diverged`` or ``stalled`` when no cycle of the last ``STALL_CYCLES`` set a new lowest
    residual (``diverged`` if each of them rose), else None."""
    if len(norms) - 1 - norms.index(min(norms)) < STALL_CYCLES:
        return None
    recent = norms[-STALL_CYCLES - 1:]
    return "diverged" if all(new > old for old, new in zip(recent, recent[1:])) else "stalled"


def iterate(cycle: MultigridCycle, A: nn.Module, f: torch.Tensor, tol: float,
            max_cycles: int) -> tuple[torch.Tensor, list[float], Status]:
    """Cycles from ``u = 0`` until ``||f - A u|| <= tol ||f||``: (u, residual norms, status).

    Stops early: ``round_off`` when a cycle no longer lowers a residual already within
    ``ROUND_OFF_MARGIN`` of the round-off floor; ``diverged`` when the residual is not finite or
    grows while above the right-hand side's norm; ``stalled`` or ``diverged`` by ``stuck``.
    """
    u, residual = None, f
    norms = [torch.linalg.vector_norm(f).item()]
    A_norm = None  # estimated when first needed: a converging solve applies A only in its cycles
    for k in range(max_cycles):
        u = cycle(u, f, residual)
        residual = A.residual(u, f)  # for the stopping test and the next cycle's first smoothing
        norms.append(torch.linalg.vector_norm(residual).item())
        if norms[-1] <= tol * norms[0]:
            return u, norms, "converged"
        if not math.isfinite(norms[-1]) or (norms[-1] > norms[0] and norms[-1] > norms[-2]):
            return u, norms, "diverged"
        if k >= 2 and norms[-1] >= norms[-2]:
            A_norm = checkerboard_norm(A, f) if A_norm is None else A_norm
            if norms[-1] <= ROUND_OFF_MARGIN * round_off_floor(A_norm, u, f) * norms[0]:
                return u, norms, "round_off"
        if status := stuck(norms):
            return u, norms, status
    return u, norms, "max_cycles"


def solve_system(f: torch.Tensor, build: Callable[[], tuple[MultigridCycle, list[int]]], tol: float,
                 max_cycles: int, krylov: Krylov = Krylov.none) -> SolveResult:
    """Builds the cycle (timed as setup) and cycles on ``A u = f`` from ``u = 0`` (timed as solve),
    or, ``krylov=cg``, runs conjugate gradients with one cycle per iteration as preconditioner."""
    device = f.device
    start = time.perf_counter()
    cycle, sizes = build()  # setup: levels, coarse operators, the coarsest factor
    synchronize(device)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    run = conjugate_gradients if krylov == Krylov.cg else iterate
    u, norms, status = run(cycle, cycle.levels[0].A, f, tol, max_cycles)
    synchronize(device)
    solve_time = time.perf_counter() - start
    floor = round_off_floor(checkerboard_norm(cycle.levels[0].A, f), u, f)
    if status == "stalled" and min(norms) <= ROUND_OFF_MARGIN * floor * norms[0]:
        status = "round_off"  # CG stalls at the floor too
    factor = asymptotic_factor(above_round_off(norms) if status == "round_off" else norms)
    log.debug("n=%d: %d cycles, factor %.3f, %s", f.shape[-1], len(norms) - 1, factor, status)
    return SolveResult(n=f.shape[-1], levels=sizes, residual_norms=norms, convergence_factor=factor,
                       status=status, setup_time_s=setup, solve_time_s=solve_time,
                       round_off_floor=floor, solution=u)


def solve_poisson(n: int, rhs: RightHandSide = RightHandSide.random, multigrid: Multigrid | None = None,
                  device: torch.device | str = "cpu", seed: int = 0) -> SolveResult:
    """Solves ``-Δu = g`` on ``n x n`` interior points by multigrid cycles; see ``SolveResult``."""
    multigrid = multigrid or Multigrid()
    config, dtype, device = multigrid.config, multigrid.dtype, torch.device(device)
    with torch.inference_mode():
        f = right_hand_side(rhs, n, dtype, device, seed)
        result = solve_system(f, lambda: build_cycle(n, multigrid, dtype, device), config.tol,
                              config.max_cycles, config.krylov)
        if rhs == "sine":
            error = result.solution - sine_solution(n, dtype, device)
            result = replace(result, error_max=error.abs().max().item(),
                             error_l2=torch.linalg.vector_norm(error).item() / (n + 1))
    return result
