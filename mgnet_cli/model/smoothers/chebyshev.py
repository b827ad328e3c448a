"""Chebyshev semi-iterative (two-step) smoother = LM-ResNet (Lu et al., ICML 2018).

``u^i = (1 - k_i) u^{i-1} + k_i u^{i-2} + sigma(B^i * sigma(f - A u^{i-1}))`` with ``u^{-1} := u^0``
and a learnable scalar ``k_i`` per step. Since ``u^{-1} = u^0`` the first step has no two-step term,
so ``k`` holds ``k_2 .. k_nu`` (``steps - 1`` scalars). ``k = 0`` gives the ResNet smoother: k starts there.
"""

import torch
from torch import nn

from mgnet_cli.model.smoothers.resnet import ResNetSmoother
from mgnet_cli.model.layers import NormActivation, bn_relu
from mgnet_cli.schema.model import ChebyshevSmootherConfig


class ChebyshevSmoother(ResNetSmoother):
    """ResNet smoother plus a learned two-step (momentum) term per step."""

    def __init__(
        self,
        channels_u: int,
        channels_f: int,
        steps: int,
        b_per_step: bool = ChebyshevSmootherConfig.b_per_step,
        norm_activation: NormActivation = bn_relu,
        k_init: float = ChebyshevSmootherConfig.k_init,
    ) -> None:
        super().__init__(channels_u, channels_f, steps, b_per_step, norm_activation)
        self.k = nn.Parameter(torch.full((steps - 1,), float(k_init)))  # k_2 .. k_nu

    def scalars(self) -> dict[str, float]:
        """The learned k_i, for logging."""
        return {f"k_{i + 2}": value for i, value in enumerate(self.k.detach().cpu().tolist())}

    def warnings(self) -> list[str]:
        """A ``k_i`` outside (-1, 1) makes the two-step recurrence unstable: say so."""
        loose = {key: value for key, value in self.scalars().items() if abs(value) >= 1}
        if not loose:
            return []
        values = ", ".join(f"{key} = {value:.3f}" for key, value in loose.items())
        return [f"Chebyshev {values} left (-1, 1), where the two-step recurrence is stable"]

    def forward(
        self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor, A: nn.Module
    ) -> torch.Tensor:
        previous = u  # u^{-1} := u^0
        for step in range(self.steps):
            if step > 0:
                residual = A.residual(u, f)
            update = self.correction(step, residual)
            if u is not None:
                if step > 0:  # (1 - k) u^{i-1} + k u^{i-2} = u^{i-1} + k (u^{i-2} - u^{i-1})
                    lag = -u if previous is None else previous - u
                    update = update + self.k[step - 1] * lag
                update = u + update
            u, previous = update, u
        return u
