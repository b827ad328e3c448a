"""The learned smoother: ``u <- u + K * (f - A u)`` with a 3x3 kernel ``K`` learned through the cycle.

``K`` is stored in units of ``D^-1`` (``h^2 / 4`` for the 5-point Laplacian, whose stencil scales as
``1 / h^2``), so one kernel means the same smoother on every level and every grid size, and
``omega`` at the centre with zeros around is damped Jacobi, where training starts. One kernel
serves every level (shared), or each grid size has its own; a grid size that was not trained uses
the kernel of the nearest trained one (the finest for larger grids).

The smoother is called like the classical ones, ``smoother(u, f, residual, A) -> u``, and runs in
the same ``MultigridCycle``; the kernel is applied with shifted slices, like the fixed stencils,
and is differentiable in both the kernel and the grid functions.
"""

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mgnet_cli.pde.learned_files import LARGEST_GRID
from mgnet_cli.pde.smoothers import Smoother
from mgnet_cli.pde.stencils import shift_slices
from mgnet_cli.untrusted import is_count, tensor_fault

START_OMEGA = 0.8  # training starts from damped Jacobi with this weight
CHECKPOINT_KIND = "learned_smoother"

# (row, column) offsets of the 3x3 kernel's taps: weight [1 + di, 1 + dj] reads r[i + di, j + dj]
_OFFSETS = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]


def convolve(r: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``weights * r`` as ``F.conv2d`` computes it (cross-correlation, zero padding 1), any batch.

    ``r``: (..., n, n); ``weights``: (3, 3). Nine multiply-adds over shifted slices.
    """
    out = r * weights[1, 1]
    for di, dj in _OFFSETS:
        (rows_to, rows_from), (cols_to, cols_from) = shift_slices(di), shift_slices(dj)
        out[..., rows_to, cols_to].addcmul_(r[..., rows_from, cols_from], weights[1 + di, 1 + dj])
    return out


class KernelPass(nn.Module):
    """One pass of a 3x3 kernel over a grid function, ``convolve`` as a module: each pass is one
    call, so that a forward hook sees every pass (scripts/bench_learned.py counts them so)."""

    def forward(self, r: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return convolve(r, weights)


class LearnedKernels(nn.Module):
    """The learned 3x3 kernels, in units of ``D^-1``: one shared (``sizes`` empty) or one per grid size."""

    def __init__(self, sizes: Sequence[int] = (), omega: float = START_OMEGA,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        jacobi = torch.zeros(3, 3, dtype=dtype)
        jacobi[1, 1] = omega
        self.sizes = sorted(set(sizes))  # interior points per side of each kernel's grid
        self.kernels = nn.ParameterList(nn.Parameter(jacobi.clone())
                                        for _ in (self.sizes or [None]))

    @property
    def shared(self) -> bool:
        return not self.sizes

    def kernel(self, size: int) -> torch.Tensor:
        """The (3, 3) kernel of a grid with ``size`` interior points per side."""
        if self.shared:
            return self.kernels[0]
        distance = [abs(math.log2((trained + 1) / (size + 1))) for trained in self.sizes]
        return self.kernels[distance.index(min(distance))]

    def labelled(self) -> list[tuple[str, torch.Tensor]]:
        """(label, kernel) pairs: ``shared``, or ``n=63`` and so on, finest first."""
        if self.shared:
            return [("shared", self.kernels[0])]
        return [(f"n={size}", kernel) for size, kernel in reversed(list(zip(self.sizes, self.kernels)))]

    def state(self) -> dict[str, Any]:
        """Plain data for a weights-only checkpoint."""
        return {"kind": CHECKPOINT_KIND, "sizes": list(self.sizes),
                "kernels": [kernel.detach().cpu().clone() for kernel in self.kernels]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "LearnedKernels":
        """The kernels ``state()`` wrote; ``ValueError`` when the data do not fit together."""
        if state.get("kind") != CHECKPOINT_KIND:
            raise ValueError(f"not a learned-smoother checkpoint (kind {state.get('kind')!r}); mgnet solve "
                             f"solver/smoother=learned writes one as learned_smoother.pt")
        sizes, kernels = state["sizes"], state["kernels"]
        if not isinstance(sizes, list) or len(set(sizes)) != len(sizes) or not all(
                is_count(size, 1, LARGEST_GRID) for size in sizes):
            raise ValueError(f"sizes must be distinct grid sizes from 1 to {LARGEST_GRID}")
        if not isinstance(kernels, list) or len(kernels) != max(len(sizes), 1) or any(
                not isinstance(kernel, torch.Tensor) or kernel.shape != (3, 3) for kernel in kernels):
            raise ValueError(f"expected {max(len(sizes), 1)} kernels of shape (3, 3) for sizes {sizes}")
        if any(tensor_fault(kernel, (3, 3)) for kernel in kernels):
            raise ValueError("the kernels must be finite floating-point numbers (dense tensors)")
        learned = cls(sizes, dtype=kernels[0].dtype)
        with torch.no_grad():
            for parameter, kernel in zip(learned.kernels, kernels):
                parameter.copy_(kernel)
        return learned


class LearnedSmoother(Smoother):
    """``steps`` sweeps of ``u <- u + (K / D) * (f - A u)``, ``K`` the kernel of the level's grid size."""

    def __init__(self, steps: int, kernels: LearnedKernels | None = None) -> None:
        super().__init__(steps)
        self.kernels = kernels if kernels is not None else LearnedKernels()  # damped Jacobi, untrained
        self.kernel_pass = KernelPass()

    def smooth(self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor,
               A: nn.Module) -> torch.Tensor:
        kernel = self.kernels.kernel(residual.shape[-1]).to(residual)
        inverse = 1.0 / A.diagonal  # a number (the Laplacian) or one per point (a variable stencil)
        per_point = isinstance(inverse, torch.Tensor)
        weights = kernel if per_point else kernel * inverse
        for step in range(self.steps):
            if step > 0:
                residual = A.residual(u, f)
            # K * (D^-1 r), a new tensor: u itself is never changed
            correction = self.kernel_pass(residual * inverse if per_point else residual, weights)
            u = correction if u is None else correction.add_(u)
        return u
