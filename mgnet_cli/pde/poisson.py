"""The discrete Poisson problem ``-Δu = g`` on the unit square, zero Dirichlet boundary.

Grids are vertex-centred: ``n = 2^L - 1`` interior points per side, spacing ``h = 1 / (n + 1)``,
tensors shaped ``(batch, channels, n, n)`` like the network's. The three operators are the fixed
3x3 convolutions of docs/MGNET.md, given by their ``kernel``; ``forward`` computes the same numbers
with shifted slices, because PyTorch's float64 CPU convolution is several times slower than these few
elementwise passes (docs/benchmarks.md). ``conv`` applies the convolution itself;
tests/pde/test_poisson.py checks that the two agree. All three are differentiable: the learned
smoother (learned_smoother.py) is trained through them.
"""

import math
from collections.abc import Callable
import torch
import torch.nn.functional as F
from torch import nn

from mgnet_cli.schema import rules
from mgnet_cli.schema.solve import MATRIX_RHS, RightHandSide

_FULL_WEIGHTING = ((1.0, 2.0, 1.0), (2.0, 4.0, 2.0), (1.0, 2.0, 1.0))


def _per_channel(conv: Callable[..., torch.Tensor], x: torch.Tensor, kernel: torch.Tensor,
                 **kwargs: int) -> torch.Tensor:
    """``conv`` with the (1, 1, 3, 3) ``kernel`` applied to every channel of ``x`` separately."""
    channels = x.shape[1]
    weight = kernel.to(x.device).expand(channels, 1, 3, 3)
    return conv(x, weight, groups=channels, **kwargs)


def is_grid_size(n: int) -> bool:
    """True for ``n = 2^L - 1`` with ``L >= 1``: the sizes that coarsen down to one point."""
    return n >= 1 and (n + 1) & n == 0


def coarse_size(n: int) -> int:
    """Interior points of the next coarser grid: ``(n - 1) / 2``."""
    return (n - 1) // 2


class Laplacian(nn.Module):
    """A: the 5-point stencil ``[[0,-1,0],[-1,4,-1],[0,-1,0]] / h^2`` on a grid of spacing ``h``."""

    def __init__(self, h: float) -> None:
        super().__init__()
        self.h = h
        self.diagonal = 4.0 / h**2  # D, the constant diagonal the smoothers divide by

    def stencil_for(self, like: torch.Tensor) -> torch.Tensor:
        """The (3, 3, n, n) stencil on ``like``'s grid, dtype and device (as ``StencilOperator``'s)."""
        n = like.shape[-1]
        return self.kernel(like.dtype).to(like.device).view(3, 3, 1, 1).expand(3, 3, n, n)

    def kernel(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The stencil as a (1, 1, 3, 3) conv weight (padding 1 = zero boundary)."""
        stencil = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]], dtype=dtype)
        return (stencil / self.h**2).view(1, 1, 3, 3)

    def conv(self, u: torch.Tensor) -> torch.Tensor:
        """The same map as the convolution it stands for (reference for tests; slow on CPU)."""
        return _per_channel(F.conv2d, u, self.kernel(u.dtype), padding=1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self._subtract_neighbours(u * (4.0 / self.h**2), u, 1.0 / self.h**2)

    def residual(self, u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """``f - A u`` with one new tensor instead of two (the solver's most frequent product)."""
        return self._subtract_neighbours(torch.add(f, u, alpha=-4.0 / self.h**2), u, -1.0 / self.h**2)

    @staticmethod
    def _subtract_neighbours(out: torch.Tensor, u: torch.Tensor, scale: float) -> torch.Tensor:
        """``out -= scale * (sum of the four neighbours of u)``, in place; zero outside the grid."""
        out[..., 1:, :].sub_(u[..., :-1, :], alpha=scale)  # the neighbour above
        out[..., :-1, :].sub_(u[..., 1:, :], alpha=scale)  # below
        out[..., :, 1:].sub_(u[..., :, :-1], alpha=scale)  # left
        out[..., :, :-1].sub_(u[..., :, 1:], alpha=scale)  # right
        return out


class FullWeighting(nn.Module):
    """R: stride-2 conv, kernel ``[[1,2,1],[2,4,2],[1,2,1]] / 16``, padding 0: n -> (n-1)/2."""

    @staticmethod
    def kernel(dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return (torch.tensor(_FULL_WEIGHTING, dtype=dtype) / 16).view(1, 1, 3, 3)

    def conv(self, r: torch.Tensor) -> torch.Tensor:
        """The same map as the convolution it stands for (reference for tests; slow on CPU)."""
        return _per_channel(F.conv2d, r, self.kernel(r.dtype), stride=2)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        rows = r[..., 0:-2:2, :] + r[..., 2::2, :]  # coarse row i sits on fine row 2i+1
        rows.add_(r[..., 1:-1:2, :], alpha=2.0)
        out = rows[..., 0:-2:2] + rows[..., 2::2]
        out.add_(rows[..., 1:-1:2], alpha=2.0)
        return out.mul_(1.0 / 16)


class BilinearInterpolation(nn.Module):
    """P: transposed stride-2 conv, kernel ``[[1,2,1],[2,4,2],[1,2,1]] / 4``: m -> 2m+1."""

    @staticmethod
    def kernel(dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return (torch.tensor(_FULL_WEIGHTING, dtype=dtype) / 4).view(1, 1, 3, 3)

    @staticmethod
    def _along(e: torch.Tensor, dim: int) -> torch.Tensor:
        """Linear interpolation along ``dim`` with zeros beyond both ends: m -> 2m+1 points."""
        coarse = e.movedim(dim, -1)
        fine = coarse.new_empty((*coarse.shape[:-1], 2 * coarse.shape[-1] + 1))
        fine[..., 1::2] = coarse  # coarse point i is fine point 2i+1
        between = fine[..., 2:-1:2]
        if torch.is_grad_enabled() and coarse.requires_grad:  # out= records no gradient
            between.copy_(coarse[..., :-1]).add_(coarse[..., 1:]).mul_(0.5)
            fine[..., 0], fine[..., -1] = coarse[..., 0] * 0.5, coarse[..., -1] * 0.5
            return fine.movedim(-1, dim)
        torch.add(coarse[..., :-1], coarse[..., 1:], out=between).mul_(0.5)
        torch.mul(coarse[..., 0], 0.5, out=fine[..., 0])
        torch.mul(coarse[..., -1], 0.5, out=fine[..., -1])
        return fine.movedim(-1, dim)

    def conv(self, e: torch.Tensor) -> torch.Tensor:
        """The same map as the convolution it stands for (reference for tests; slow on CPU)."""
        return _per_channel(F.conv_transpose2d, e, self.kernel(e.dtype), stride=2)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self._along(self._along(e, -2), -1)


def interior_points(n: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """Coordinates ``h, 2h, ..., nh`` of the interior points along one side."""
    return torch.arange(1, n + 1, dtype=dtype, device=device) / (n + 1)


def sine_solution(n: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """``u(x, y) = sin(pi x) sin(pi y)`` at the interior points, (1, 1, n, n)."""
    s = torch.sin(math.pi * interior_points(n, dtype, device))
    return torch.outer(s, s).view(1, 1, n, n)


def right_hand_side(
    kind: RightHandSide,
    n: int,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> torch.Tensor:
    """``g`` at the interior points, (1, 1, n, n): standard normal, all ones, or ``-Δ`` of the sine."""
    if kind == RightHandSide.sine:
        return 2 * math.pi**2 * sine_solution(n, dtype, device)
    if kind in MATRIX_RHS:
        return right_hand_side_vector(kind, n * n, dtype, device, seed).view(1, 1, n, n)
    raise ValueError(f"right-hand side must be one of {rules.choices(RightHandSide)}, got {kind!r}")


def right_hand_side_vector(kind: RightHandSide, rows: int, dtype: torch.dtype = torch.float64,
                           device: torch.device | str = "cpu", seed: int = 0) -> torch.Tensor:
    """``rows`` numbers of a right-hand side any problem takes (``MATRIX_RHS``): standard normal
    from ``seed`` (``random``; a grid's are these, row by row) or all ones."""
    if kind == RightHandSide.random:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(rows, generator=generator, dtype=dtype).to(device)
    if kind == RightHandSide.ones:
        return torch.ones(rows, dtype=dtype, device=device)
    raise ValueError(f"a right-hand side vector is one of {', '.join(MATRIX_RHS)}, got {kind!r}")
