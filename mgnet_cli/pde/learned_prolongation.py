"""A learned prolongation: a small CNN from the fine stencils around each coarse point to its weights.

After Greenfeld, Galun, Kimmel, Yavneh and Basri (ICML 2019), who learned prolongations for
diffusion problems on small grids that beat Black Box multigrid on large ones. The network reads
each fine point's stencil divided by its own diagonal (8 channels: scale-free, so one network
serves every level and any contrast), sees the 5x5 fine points around each coarse point through
one stride-2 convolution and two 1x1 layers, and adds its output to a classical rule's weights
(``base``: Black Box or bilinear). Its last layer starts at zero: training starts from ``base``.
It is a ``ProlongationRule`` (hierarchy.py) and runs inside the same Galerkin ``MultigridCycle``.
"""

from typing import Any

import torch
from torch import nn

from mgnet_cli.pde.galerkin import Prolongation, fine_slice
from mgnet_cli.pde.hierarchy import PROLONGATIONS
from mgnet_cli.pde.stencils import scaled_neighbours
from mgnet_cli.schema.solve import LearnedProlongationConfig, ProlongationBase
from mgnet_cli.untrusted import is_count, load_finite_weights

CHECKPOINT_KIND = "learned_prolongation"
BASES: tuple[str, ...] = tuple(base.value for base in ProlongationBase)


def keeps_constants(correction: torch.Tensor) -> torch.Tensor:
    """``correction`` (3, 3, m, m) less, at every fine point, the mean of what it adds there over
    the coarse points that reach it: the corrections to each fine point then sum to zero, so a
    base rule that interpolates constants exactly (Black Box and bilinear, inside the grid) still
    does, and the coarse levels keep the smooth error the smoother cannot reach."""
    ones = torch.ones_like(correction)
    added, reach = Prolongation(correction)(ones[1, 1]), Prolongation(ones)(ones[1, 1])
    mean = added / reach.clamp(min=1.0)
    m = correction.shape[-1]
    shifted = [[mean[fine_slice(a, m), fine_slice(b, m)] for b in (-1, 0, 1)] for a in (-1, 0, 1)]
    return correction - torch.stack([torch.stack(row) for row in shifted])


class LearnedProlongation(nn.Module):
    """Fine stencil (3, 3, 2m + 1, 2m + 1) -> prolongation weights (3, 3, m, m) = base + CNN."""

    def __init__(self, hidden: int = LearnedProlongationConfig.hidden, base: str = LearnedProlongationConfig.base.value,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        if base not in BASES:
            raise ValueError(f"base must be one of {BASES}, got {base!r}")
        self.hidden, self.base = hidden, base
        self.net = nn.Sequential(
            nn.Conv2d(8, hidden, 5, stride=2, padding=1, dtype=dtype), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1, dtype=dtype), nn.ReLU(),
            nn.Conv2d(hidden, 8, 1, dtype=dtype),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, stencil: torch.Tensor) -> torch.Tensor:
        scaled = scaled_neighbours(stencil)  # (8, n, n)
        correction = self.net(scaled.to(self.net[0].weight.dtype).unsqueeze(0))[0]  # (8, m, m)
        base = PROLONGATIONS[self.base](stencil)
        m = base.shape[-1]
        zero = correction.new_zeros(1, m, m)
        full = torch.cat((correction[:4], zero, correction[4:])).view(3, 3, m, m).to(base.dtype)
        return base + keeps_constants(full)

    def state(self) -> dict[str, Any]:
        """Plain data for a weights-only checkpoint."""
        return {"kind": CHECKPOINT_KIND, "hidden": self.hidden, "base": self.base,
                "weights": {key: value.detach().cpu().clone() for key, value in self.state_dict().items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "LearnedProlongation":
        """The network ``state()`` wrote; ``ValueError`` when the data are not that (kind, shapes,
        finite floats): a checkpoint only ever holds numbers, never what to build."""
        if state.get("kind") != CHECKPOINT_KIND:
            raise ValueError(f"not a learned-prolongation checkpoint (kind {state.get('kind')!r})")
        hidden, base, weights = state.get("hidden"), state.get("base"), state.get("weights")
        largest = LearnedProlongationConfig.LARGEST_HIDDEN  # what the schema lets it be trained with
        if not is_count(hidden, 1, largest) or base not in BASES or not isinstance(weights, dict):
            raise ValueError(f"hidden={hidden!r}, base={base!r}: expected 1..{largest} and one of {BASES}")
        model = cls(hidden, base)
        load_finite_weights(model, weights)
        return model
