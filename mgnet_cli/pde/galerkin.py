"""Coarsening that follows the operator: prolongation weights per coarse point and ``A_c = R A P``.

Prolongation weights are shaped ``(3, 3, m, m)`` on the coarse grid: ``weights[1 + a, 1 + b, I, J]``
is what coarse point ``(I, J)`` (fine point ``(2I + 1, 2J + 1)``) gives fine point
``(2I + 1 + a, 2J + 1 + b)``. ``R = P^T / 4``, so bilinear weights give full weighting and the
Galerkin coarse operator keeps the ``1 / h^2`` scale of a rediscretised one. ``galerkin`` reads
``R A P`` off with nine probes (coarse points three apart cannot share a stencil entry), so it
needs only the three maps; all of it is differentiable (the learned prolongation trains through it).
"""

import torch
from torch import nn

from mgnet_cli.pde.stencils import OFFSETS, StencilOperator


def fine_slice(offset: int, m: int) -> slice:
    """Fine indices ``2I + 1 + offset`` for ``I = 0 .. m - 1``."""
    return slice(1 + offset, 1 + offset + 2 * m - 1, 2)


class Prolongation(nn.Module):
    """P: a coarse correction (..., m, m) to the fine grid (..., 2m + 1, 2m + 1)."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.weights = weights
        self.m = weights.shape[-1]

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        m = self.m
        fine = e.new_zeros((*e.shape[:-2], 2 * m + 1, 2 * m + 1))
        for a, b in OFFSETS:
            fine[..., fine_slice(a, m), fine_slice(b, m)] += e * self.weights[1 + a, 1 + b]
        return fine


class Restriction(nn.Module):
    """R = P^T / 4: a fine residual (..., 2m + 1, 2m + 1) to the coarse grid (..., m, m)."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.weights = weights
        self.m = weights.shape[-1]

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        m = self.m
        coarse = r[..., fine_slice(0, m), fine_slice(0, m)] * self.weights[1, 1]
        for a, b in OFFSETS:
            if (a, b) != (0, 0):
                coarse = coarse + r[..., fine_slice(a, m), fine_slice(b, m)] * self.weights[1 + a, 1 + b]
        return coarse * 0.25


def bilinear_weights(m: int, dtype: torch.dtype = torch.float64,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """Bilinear interpolation's weights, the same at every coarse point: (3, 3, m, m)."""
    taps = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], dtype=dtype, device=device)
    return taps.view(3, 3, 1, 1).expand(3, 3, m, m).contiguous()


def black_box_weights(stencil: torch.Tensor) -> torch.Tensor:
    """Dendy's Black Box prolongation from the fine stencil (3, 3, 2m + 1, 2m + 1): (3, 3, m, m).

    A fine point between two coarse points in a row solves its stencil collapsed onto the row
    (column sums): the weight of coarse neighbour C is ``-(sum of the column toward C) / (sum of
    the centre column)``; likewise in a column with row sums. A fine point between four coarse
    points solves its own row, given C and the two interpolated points beside it.
    """
    m = (stencil.shape[-1] - 1) // 2

    def at(a: int, b: int) -> torch.Tensor:  # the stencils of fine points (2I+1+a, 2J+1+b)
        return stencil[:, :, fine_slice(a, m), fine_slice(b, m)]

    edges: dict[tuple[int, int], torch.Tensor] = {}
    for t in (-1, 1):  # in C's row, t to the side: C lies at column offset -t from there
        stencils = at(0, t)
        edges[0, t] = -stencils[:, 1 - t].sum(0) / stencils[:, 1].sum(0)
    for s in (-1, 1):  # in C's column
        stencils = at(s, 0)
        edges[s, 0] = -stencils[1 - s, :].sum(0) / stencils[1, :].sum(0)
    weights = [[None] * 3 for _ in range(3)]
    weights[1][1] = torch.ones_like(edges[0, 1])
    for (a, b), value in edges.items():
        weights[1 + a][1 + b] = value
    for s in (-1, 1):
        for t in (-1, 1):
            row = at(s, t)  # C at offset (-s, -t); (-s, 0) and (0, -t) are interpolated edge points
            weights[1 + s][1 + t] = -(row[1 - s, 1 - t] + row[1 - s, 1] * edges[0, t]
                                      + row[1, 1 - t] * edges[s, 0]) / row[1, 1]
    return torch.stack([torch.stack(line) for line in weights])


def galerkin(A: nn.Module, P: nn.Module, R: nn.Module, m: int) -> torch.Tensor:
    """The coarse stencil (3, 3, m, m) of ``R A P``, from nine probes of the three maps."""
    dtype, device = P.weights.dtype, P.weights.device
    probes = torch.zeros(9, 1, m, m, dtype=dtype, device=device)
    for index, (p, q) in enumerate((p, q) for p in range(3) for q in range(3)):
        probes[index, 0, p::3, q::3] = 1.0
    response = R(A(P(probes)))[:, 0]  # (9, m, m)
    coarse = torch.zeros(3, 3, m, m, dtype=response.dtype, device=device)
    for index, (p, q) in enumerate((p, q) for p in range(3) for q in range(3)):
        for a in range(3):  # coarse rows I = a mod 3 meet the probe's point at row offset di
            di = (p - a + 1) % 3 - 1
            for b in range(3):
                dj = (q - b + 1) % 3 - 1
                coarse[1 + di, 1 + dj, a::3, b::3] = response[index, a::3, b::3]
    return coarse


def coarse_operator(A: StencilOperator, weights: torch.Tensor) -> tuple[StencilOperator, Prolongation,
                                                                        Restriction]:
    """``(A_c, P, R)`` for prolongation ``weights``: the Galerkin coarse level below ``A``."""
    P, R = Prolongation(weights), Restriction(weights)
    return StencilOperator(galerkin(A, P, R, weights.shape[-1])), P, R
