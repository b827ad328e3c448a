"""Single-step residual correction: ``u^i = u^{i-1} + sigma(B^i * sigma(f - A u^{i-1}))`` (pre-act ResNet)."""

import torch
from torch import nn

from mgnet_cli.model.layers import NormActivation, bn_relu, conv3x3
from mgnet_cli.schema.model import SmootherConfig


class ResNetSmoother(nn.Module):
    """``steps`` residual-correction steps; one ``B`` for the level or one per step."""

    def __init__(
        self,
        channels_u: int,
        channels_f: int,
        steps: int,
        b_per_step: bool = SmootherConfig.b_per_step,
        norm_activation: NormActivation = bn_relu,
    ) -> None:
        super().__init__()
        self.steps = steps
        self.B = nn.ModuleList(conv3x3(width, channels_u) for width in self.B_inputs(channels_f, steps, b_per_step))
        self.sigma_residual = nn.ModuleList(norm_activation(channels_f) for _ in range(steps))
        self.sigma_correction = nn.ModuleList(norm_activation(channels_u) for _ in range(steps))

    def B_inputs(self, channels_f: int, steps: int, b_per_step: bool) -> list[int]:
        """The input channels of each ``B``: ``f``'s, of one ``B`` for the level or one per step."""
        return [channels_f] * (steps if b_per_step else 1)

    def correction(self, step: int, residual: torch.Tensor) -> torch.Tensor:
        """``sigma(B^i * sigma(r))``: the step's update of u."""
        B = self.B[step % len(self.B)]
        return self.sigma_correction[step](B(self.sigma_residual[step](residual)))

    def forward(
        self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor, A: nn.Module
    ) -> torch.Tensor:
        for step in range(self.steps):
            if step > 0:
                residual = A.residual(u, f)
            correction = self.correction(step, residual)
            u = correction if u is None else u + correction
        return u
