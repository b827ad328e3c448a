"""Operators given by a 3x3 stencil per grid point: variable coefficients and Galerkin coarse grids.

A stencil tensor is shaped ``(3, 3, n, n)``: ``stencil[1 + di, 1 + dj, i, j]`` multiplies
``u[i + di, j + dj]`` in row ``(i, j)`` of ``A``, rows ``i`` along y and columns ``j`` along x;
entries that reach outside the grid meet the zero Dirichlet boundary and are never read.
``StencilOperator`` applies it with nine shifted multiply-adds (fewer where a whole plane is zero,
as for 5-point stencils) and offers what the smoothers need: ``A(u)``, ``A.residual(u, f)`` and
the diagonal ``A.diagonal`` (an ``(n, n)`` tensor here, a number for the constant Laplacian).
"""

import torch
from torch import nn

OFFSETS = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)]


NEIGHBOURS = [index for index in range(9) if index != 4]  # the 3x3 taps but the centre


def scaled_neighbours(stencil: torch.Tensor) -> torch.Tensor:
    """A stencil (3, 3, n, n) as a learned part's input: its 8 off-centre entries divided by the
    point's diagonal, (8, n, n), each in [-1, 1] for a diagonally dominant operator."""
    n = stencil.shape[-1]
    return (stencil / stencil[1, 1]).reshape(9, n, n)[NEIGHBOURS]


def shift_slices(offset: int) -> tuple[slice, slice]:
    """(destination, source) slices along one axis: ``out[dest] += s[dest] * u[source]``."""
    if offset < 0:
        return slice(1, None), slice(None, -1)
    if offset > 0:
        return slice(None, -1), slice(1, None)
    return slice(None), slice(None)


def apply_stencil(stencil: torch.Tensor, u: torch.Tensor, out: torch.Tensor,
                  offsets: list[tuple[int, int]], sign: float = 1.0) -> torch.Tensor:
    """``out += sign * (stencil applied to u)`` in place over ``offsets``; ``u``: (..., n, n)."""
    for di, dj in offsets:
        (rows_to, rows_from), (cols_to, cols_from) = shift_slices(di), shift_slices(dj)
        weights = stencil[1 + di, 1 + dj, rows_to, cols_to]
        term = u[..., rows_from, cols_from] * weights
        if sign > 0:
            out[..., rows_to, cols_to] += term
        else:
            out[..., rows_to, cols_to] -= term
    return out


class StencilOperator(nn.Module):
    """A: ``(A u)_ij = sum_{di,dj} stencil[1+di, 1+dj, i, j] u[i+di, j+dj]``, zero outside the grid."""

    def __init__(self, stencil: torch.Tensor) -> None:
        super().__init__()
        if stencil.dim() != 4 or stencil.shape[:2] != (3, 3) or stencil.shape[2] != stencil.shape[3]:
            raise ValueError(f"a stencil is shaped (3, 3, n, n), got {tuple(stencil.shape)}")
        self.stencil = stencil
        self.n = stencil.shape[-1]
        self.diagonal = stencil[1, 1]
        flat = stencil.detach().abs().flatten(2).amax(-1)  # one look at every plane, at setup
        self.offsets = [(di, dj) for di, dj in OFFSETS
                        if (di, dj) != (0, 0) and flat[1 + di, 1 + dj].item() > 0.0]

    def stencil_for(self, like: torch.Tensor) -> torch.Tensor:
        """The (3, 3, n, n) stencil (as ``Laplacian``'s; ``like`` gives that one its grid)."""
        return self.stencil

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return apply_stencil(self.stencil, u, u * self.diagonal, self.offsets)

    def residual(self, u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """``f - A u`` in one new tensor."""
        return apply_stencil(self.stencil, u, f - u * self.diagonal, self.offsets, sign=-1.0)

    def dense(self) -> torch.Tensor:
        """The ``n^2 x n^2`` matrix, row-major over (i, j): for tests and small coarsest grids."""
        n = self.n
        unit = torch.eye(n * n, dtype=self.stencil.dtype, device=self.stencil.device)
        return self(unit.view(n * n, 1, n, n)).view(n * n, n * n).T


def laplacian_stencil(n: int, dtype: torch.dtype = torch.float64,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """The 5-point ``-Δ_h`` on ``n x n`` points, ``h = 1 / (n + 1)``, as a (3, 3, n, n) stencil."""
    stencil = torch.zeros(3, 3, n, n, dtype=dtype, device=device)
    scale = float(n + 1) ** 2
    stencil[1, 1] = 4 * scale
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        stencil[1 + di, 1 + dj] = -scale
    return stencil
