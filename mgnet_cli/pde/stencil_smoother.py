"""The stencil-aware learned smoother: red-black ``u <- u + K(x) * (D^-1 (f - A u))``, ``K(x)`` from a CNN.

Where the learned smoother (learned_smoother.py) has one 3x3 kernel for every point, this one has
a kernel per point, which a small CNN computes from the stencils around it: each point's 8
off-diagonal entries divided by its own diagonal (scale-free, so one network serves every level,
contrast and ``h``), through a 3x3 convolution and two 1x1 layers, to 9 taps. The correction at
``(i, j)`` is ``sum_d K[d](i, j) (D^-1 r)(i + d)``, made on the red points (``i + j`` even), then,
from the new residual, on the black ones. The last layer starts at zero and the taps at 1 at the
centre: training (prolongation_learning.py, through unrolled Galerkin cycles on random fields)
starts from red-black Gauss-Seidel, which it is then. The taps of a level are computed once, as
its cycle is built (``setup``): a training step builds its cycles anew, with the current weights.

The guard: in eval mode (a trained or loaded network) and outside autograd, the taps of each
operator are first tried on ``A e = 0`` for ``CHECK_SWEEPS`` sweeps from a random error; if the
energy ``e^T A e`` did not fall over the last half, the level uses red-black Gauss-Seidel's taps
instead (logged): exact Gauss-Seidel on 5-point stencils, which never raises the energy. With
Galerkin coarse levels, which never raise it either, the cycle then contracts; the check itself is
empirical (one random error), so a checkpoint is also refused unless its cycle converges.
"""

import logging
import math
from typing import Any

import torch
from torch import nn

from mgnet_cli.pde.smoothers import Smoother
from mgnet_cli.pde.stencils import OFFSETS, scaled_neighbours, shift_slices
from mgnet_cli.schema.solve import StencilAwareConfig
from mgnet_cli.untrusted import is_count, load_finite_weights

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "stencil_aware_smoother"
CHECK_SWEEPS = 12
START_CENTRE = 1.0  # the taps training starts from: red-black Gauss-Seidel



class StencilKernelNet(nn.Module):
    """Stencils (3, 3, n, n) -> the smoother's taps (3, 3, n, n), in units of the point's ``D^-1``."""

    def __init__(self, hidden: int = StencilAwareConfig.hidden, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.hidden = hidden
        self.net = nn.Sequential(
            nn.Conv2d(8, hidden, 3, padding=1, dtype=dtype), nn.Tanh(),
            nn.Conv2d(hidden, hidden, 1, dtype=dtype), nn.Tanh(),
            nn.Conv2d(hidden, 9, 1, dtype=dtype),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, stencil: torch.Tensor) -> torch.Tensor:
        n = stencil.shape[-1]
        scaled = scaled_neighbours(stencil)  # (8, n, n)
        weight = self.net[0].weight
        taps = self.net(scaled.to(weight.dtype).unsqueeze(0))[0].view(3, 3, n, n)
        start = torch.zeros(3, 3, 1, 1, dtype=taps.dtype, device=taps.device)
        start[1, 1] = START_CENTRE
        return (start + taps).to(stencil.dtype)

    def state(self) -> dict[str, Any]:
        """Plain data for a weights-only checkpoint."""
        return {"kind": CHECKPOINT_KIND, "hidden": self.hidden,
                "weights": {key: value.detach().cpu().clone() for key, value in self.state_dict().items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "StencilKernelNet":
        """The network ``state()`` wrote; ``ValueError`` when the data are not that."""
        if state.get("kind") != CHECKPOINT_KIND:
            raise ValueError(f"not a stencil-aware smoother checkpoint (kind {state.get('kind')!r})")
        hidden, weights = state.get("hidden"), state.get("weights")
        largest = StencilAwareConfig.LARGEST_HIDDEN  # what the schema lets it be trained with
        if not is_count(hidden, 1, largest) or not isinstance(weights, dict):
            raise ValueError(f"hidden={hidden!r}: expected 1..{largest} and a dict of weights")
        model = cls(hidden)
        load_finite_weights(model, weights)
        return model.eval()  # guarded (the class docstring)


def apply_taps(taps: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``sum_d taps[d](i, j) v(i + d)``, zero outside the grid; ``taps`` (3, 3, n, n), ``v`` (..., n, n)."""
    out = v * taps[1, 1]
    for di, dj in OFFSETS:
        if (di, dj) == (0, 0):
            continue
        (rows_to, rows_from), (cols_to, cols_from) = shift_slices(di), shift_slices(dj)
        out[..., rows_to, cols_to] += v[..., rows_from, cols_from] * taps[1 + di, 1 + dj, rows_to, cols_to]
    return out


def colour_masks(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(red, black) as 0/1 grids: ``i + j`` even, odd."""
    n = like.shape[-1]
    index = torch.arange(n, device=like.device)
    red = ((index[:, None] + index[None, :]) % 2 == 0).to(like.dtype)
    return red, 1.0 - red


class StencilAwareSmoother(Smoother):
    """``steps`` red-black sweeps of ``u <- u + K(x) * (D^-1 (f - A u))``, ``K(x) = net(stencils near x)``."""

    LEVEL_STATE = ("taps",)

    def __init__(self, steps: int, net: StencilKernelNet | None = None) -> None:
        super().__init__(steps)
        self.net = net if net is not None else StencilKernelNet()  # red-black Gauss-Seidel, untrained
        self.taps: torch.Tensor | None = None  # set by ``setup``

    def setup(self, A: nn.Module, like: torch.Tensor) -> "StencilAwareSmoother":
        """The level's (3, 3, n, n) taps, divided by its diagonal (guarded: the module docstring)."""
        if self.steps == 0:
            return self
        stencil = A.stencil_for(like)
        taps = self.net(stencil) / stencil[1, 1]
        if not self.net.training and not torch.is_grad_enabled() and not lowers_energy(taps, A, like):
            log.warning("stencil-aware smoother: its taps raise the error's energy on the %d x %d level; "
                        "red-black Gauss-Seidel there instead", like.shape[-1], like.shape[-1])
            taps = torch.zeros_like(taps)
            taps[1, 1] = START_CENTRE / stencil[1, 1]
        self.taps = taps
        return self

    def smooth(self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor,
               A: nn.Module) -> torch.Tensor:
        return sweeps(self.taps, u, f, residual, A, self.steps)


def sweeps(taps: torch.Tensor, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor,
           A: nn.Module, steps: int) -> torch.Tensor:
    """``steps`` red-black sweeps with ``taps``; ``residual = f - A u`` comes in formed."""
    red, black = colour_masks(residual)
    for step in range(steps):
        for colour, mask in enumerate((red, black)):
            if step > 0 or colour > 0:
                residual = A.residual(u, f)
            correction = apply_taps(taps, residual).mul_(mask)  # a new tensor: u is never changed
            u = correction if u is None else correction.add_(u)
    return u


def lowers_energy(taps: torch.Tensor, A: nn.Module, like: torch.Tensor) -> bool:
    """Whether ``CHECK_SWEEPS`` sweeps on ``A e = 0`` lowered ``e^T A e`` over their second half."""
    n = like.shape[-1]
    generator = torch.Generator(like.device).manual_seed(0)
    e = torch.randn((1, 1, n, n), generator=generator, dtype=like.dtype, device=like.device)
    zero = torch.zeros_like(e)
    energies = []
    for _ in range(CHECK_SWEEPS):
        e = sweeps(taps, e, zero, -A(e), A, 1)
        energies.append((e * A(e)).sum().item())
    middle = energies[CHECK_SWEEPS // 2 - 1]
    return math.isfinite(energies[-1]) and energies[-1] < middle
