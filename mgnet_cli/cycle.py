"""One multigrid cycle, generic over its operators: it runs the MgNet network (model/) and the PDE
solver (pde/).

The network passes learned 3x3 convolutions with BatchNorm+ReLU and no prolongation (the backslash
cycle ends on the coarsest grid, where the classifier reads the features); the solver passes fixed
stencils, no activation and a prolongation (V, W, F or backslash = V(nu, 0)).

A ``u`` of ``None`` stands for the zero grid function: the first level's ``u^{1,0} = 0`` and the
coarse-grid correction of a linear solve both start from it, and skipping ``A * 0`` is free speed.
"""

from typing import Protocol

import torch
from torch import nn

from mgnet_cli.cycle_shape import CycleShape


def zero_if_none(u: torch.Tensor | None, f: torch.Tensor) -> torch.Tensor:
    """``u``, or a real zero grid function shaped like ``f`` where ``u`` is ``None``: what a
    smoother with no steps to take returns."""
    return torch.zeros_like(f) if u is None else u


class Operator(Protocol):
    """A level's ``A``: the network's learned convolution (``layers.DataFeatureMap``) or the
    solver's stencil (``pde.stencils``); a stencil adds ``diagonal`` for its point smoothers."""

    def __call__(self, u: torch.Tensor) -> torch.Tensor: ...

    def residual(self, u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """``f - A u``, in one pass where the operator can fuse it."""
        ...


class Smoother(Protocol):
    """Runs its ``steps`` smoothing steps on one level: ``u <- update(u, f, A)``, given
    ``residual = f - A u``; every later residual is ``A.residual(u, f)``."""

    steps: int

    def __call__(
        self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor, A: Operator
    ) -> torch.Tensor: ...


class Level(nn.Module):
    """One grid: the data-feature map ``A``, its smoother(s), and the transfers to the next grid.

    ``restrict_residual`` (R) and ``restrict_u`` (Pi) map to the next coarser level; ``restrict_u``
    of ``None`` means Pi = 0 (the coarse problem is a correction equation). ``prolong`` (P) maps a
    coarse correction back; ``None`` means the cycle never comes back up (the network).
    ``post_smoother`` runs after the coarse-grid correction in V and W cycles.
    """

    def __init__(
        self,
        A: Operator,
        smoother: Smoother,
        restrict_residual: nn.Module | None = None,
        restrict_u: nn.Module | None = None,
        prolong: nn.Module | None = None,
        post_smoother: Smoother | None = None,
    ) -> None:
        super().__init__()
        self.A = A
        self.smoother = smoother
        self.R = restrict_residual
        self.Pi = restrict_u
        self.P = prolong
        self.post_smoother = post_smoother

    def residual(self, u: torch.Tensor | None, f: torch.Tensor) -> torch.Tensor:
        """``f - A u``, free when u is zero."""
        return f if u is None else self.A.residual(u, f)


class MultigridCycle(nn.Module):
    """Runs one cycle over ``levels`` (finest first) and returns the updated ``u``.

    ``backslash``: smooth, restrict, go down; ``v``: also correct and post-smooth on the way up;
    ``w``: visit each coarser level twice; ``f``: correct by an F-cycle then a V-cycle on the next
    level (cycle_shape.py). The coarsest level is solved once per visit of the level above it: its
    solve is exact, a second one would change nothing. Levels without a prolongation make the
    cycle end on the coarsest grid and return the coarsest ``u`` (MgNet's forward pass).
    """

    SECOND_VISIT = {"w": "w", "f": "v"}  # the shape of the second coarse-grid correction, where there is one

    def __init__(self, levels: list[Level], shape: CycleShape | str = CycleShape.backslash) -> None:
        super().__init__()
        if shape not in tuple(CycleShape):
            raise ValueError(f"cycle shape must be one of {', '.join(CycleShape)}, got {shape!r}")
        self.levels = nn.ModuleList(levels)
        self.shape = str(shape)  # a plain word: compiled graphs guard on it

    def forward(
        self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``residual = f - A u`` on the finest level, when the caller already has it."""
        if residual is None and u is None:
            residual = f
        return self._visit(0, u, f, residual, self.shape)

    def _visit(
        self, depth: int, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor | None, shape: str
    ) -> torch.Tensor:
        """One ``shape`` cycle from level ``depth`` down; ``residual`` is ``f - A u`` when already known."""
        level = self.levels[depth]
        if residual is None:
            residual = level.residual(u, f)
        u = level.smoother(u, f, residual, level.A)
        if depth == len(self.levels) - 1:
            return u

        residual = level.residual(u, f)
        coarse = self.levels[depth + 1]
        u_coarse_start = None if level.Pi is None else level.Pi(u)
        A_u_coarse = None if u_coarse_start is None else coarse.A(u_coarse_start)  # formed once
        restricted = level.R(residual)
        # f^{l+1} - A^{l+1} u^{l+1,0} is the restricted residual itself: no second product needed.
        f_coarse = restricted if A_u_coarse is None else restricted + A_u_coarse
        u_coarse = self._visit(depth + 1, u_coarse_start, f_coarse, restricted, shape)
        if shape in self.SECOND_VISIT and depth + 1 < len(self.levels) - 1:
            u_coarse = self._visit(depth + 1, u_coarse, f_coarse, None, self.SECOND_VISIT[shape])

        if level.P is None:
            return u_coarse  # the network: the classifier reads the coarsest features
        correction = u_coarse if u_coarse_start is None else u_coarse - u_coarse_start
        u = u + level.P(correction)
        if shape == "backslash" or level.post_smoother is None:
            return u
        return level.post_smoother(u, f, level.residual(u, f), level.A)
