"""Alternating zebra-line Gauss-Seidel: exact tridiagonal solves along every other grid line.

The textbook smoother for anisotropy aligned with the grid: a point smoother cannot damp errors
that are smooth along the strong direction, a line solve can. One step sweeps the rows (lines
along x) in two colours, even rows then odd rows, then the columns likewise; lines of one colour
do not touch each other in a 9-point stencil, so each colour is one batched solve. The tridiagonal
systems are factorised once per level (``setup``) by cyclic reduction, which fits lines of
``n = 2^L - 1`` points exactly: ``L`` vectorised halvings instead of ``n`` sequential steps.
"""

import torch
import torch.nn.functional as F
from torch import nn

from mgnet_cli.pde.smoothers import Smoother


class Tridiagonal:
    """Cyclic reduction of tridiagonal systems ``lower x[k-1] + diag x[k] + upper x[k+1] = d``.

    ``lower``, ``diag``, ``upper``: (..., n) with ``n = 2^L - 1``, one system per leading index;
    the entries that would reach past either end are ignored.
    """

    def __init__(self, lower: torch.Tensor, diag: torch.Tensor, upper: torch.Tensor) -> None:
        lower, upper = lower.clone(), upper.clone()
        lower[..., 0], upper[..., -1] = 0.0, 0.0
        self.halvings: list[tuple[torch.Tensor, ...]] = []
        while diag.shape[-1] > 1:  # eliminate the even points, keep the odd ones
            inverse = 1.0 / diag[..., 0::2]
            alpha = -lower[..., 1::2] * inverse[..., :-1]
            gamma = -upper[..., 1::2] * inverse[..., 1:]
            self.halvings.append((inverse, alpha, gamma, lower[..., 0::2], upper[..., 0::2]))
            diag = diag[..., 1::2] + alpha * upper[..., 0:-1:2] + gamma * lower[..., 2::2]
            lower, upper = alpha * lower[..., 0:-1:2], gamma * upper[..., 2::2]
        self.last_inverse = 1.0 / diag

    def solve(self, d: torch.Tensor) -> torch.Tensor:
        """``x`` with ``T x = d``; ``d``: (..., n), broadcast against the systems."""
        kept = []
        for _, alpha, gamma, _, _ in self.halvings:
            kept.append(d)
            d = d[..., 1::2] + alpha * d[..., 0:-1:2] + gamma * d[..., 2::2]
        x = d * self.last_inverse
        for (inverse, _, _, lower, upper), d in zip(reversed(self.halvings), reversed(kept)):
            padded = F.pad(x, (1, 1))
            even = (d[..., 0::2] - lower * padded[..., :-1] - upper * padded[..., 1:]) * inverse
            x = torch.stack((even[..., :-1], x), dim=-1).flatten(-2)
            x = torch.cat((x, even[..., -1:]), dim=-1)
        return x


def line_systems(A: nn.Module, like: torch.Tensor) -> dict[tuple[str, int], Tridiagonal]:
    """The factorised line systems of ``A`` per (direction, colour); the constant Laplacian's kernel
    is spread over ``like``'s grid (``stencil_for``)."""
    s = A.stencil_for(like)
    systems = {}
    for colour in (0, 1):
        systems["rows", colour] = Tridiagonal(s[1, 0, colour::2], s[1, 1, colour::2], s[1, 2, colour::2])
        columns = [s[0, 1, :, colour::2].T, s[1, 1, :, colour::2].T, s[2, 1, :, colour::2].T]
        systems["columns", colour] = Tridiagonal(*columns)
    return systems


def _line_correction(residual: torch.Tensor, system: Tridiagonal, direction: str,
                     colour: int) -> torch.Tensor:
    """The full-grid correction that solves the lines of one colour exactly, zero elsewhere."""
    correction = torch.zeros_like(residual)
    if direction == "rows":
        correction[..., colour::2, :] = system.solve(residual[..., colour::2, :])
    else:
        lines = residual[..., :, colour::2].transpose(-1, -2)
        correction[..., :, colour::2] = system.solve(lines).transpose(-1, -2)
    return correction


class ZebraLineGaussSeidel(Smoother):
    """``steps`` sweeps of alternating zebra-line Gauss-Seidel (rows, then columns, two colours each);
    ``reverse``: the four half-sweeps in reverse order (the adjoint, for a symmetric V cycle). Its
    level's line systems are factorised by ``setup``."""

    LEVEL_STATE = ("systems",)

    def __init__(self, steps: int) -> None:
        super().__init__(steps)
        self.systems: dict[tuple[str, int], Tridiagonal] | None = None  # set by ``setup``

    def setup(self, A: nn.Module, like: torch.Tensor) -> "ZebraLineGaussSeidel":
        self.systems = line_systems(A, like)
        return self

    def smooth(self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor,
               A: nn.Module) -> torch.Tensor:
        systems = self.systems
        order = [(direction, colour) for direction in ("rows", "columns") for colour in (0, 1)]
        if self.reverse:
            order.reverse()
        first = True
        for _ in range(self.steps):
            for direction, colour in order:
                if not first:
                    residual = A.residual(u, f)
                correction = _line_correction(residual, systems[direction, colour], direction, colour)
                u = correction if u is None else u + correction
                first = False
        return u
