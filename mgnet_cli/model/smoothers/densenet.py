"""Multi-step residual correction = DenseNet.

``u^i = u^{i-1} + sigma(B^i * concat(sigma(r^0), ..., sigma(r^{i-1})))``: step i sees every earlier
residual, so ``B^i`` takes ``i * channels_f`` channels and cannot be shared across steps.
"""

import torch
from torch import nn

from mgnet_cli.model.layers import NormActivation, bn_relu
from mgnet_cli.model.smoothers.resnet import ResNetSmoother
from mgnet_cli.schema.model import DenseNetSmootherConfig


class DenseNetSmoother(ResNetSmoother):
    """``steps`` multi-step residual corrections, one ``B^i`` per step; the ResNet smoother's
    operators, each ``B^i`` wider."""

    def __init__(
        self,
        channels_u: int,
        channels_f: int,
        steps: int,
        b_per_step: bool = DenseNetSmootherConfig.b_per_step,
        norm_activation: NormActivation = bn_relu,
    ) -> None:
        if not b_per_step:
            raise ValueError("b_per_step=False: B^i takes i * channels_f channels, so every step needs its own")
        super().__init__(channels_u, channels_f, steps, b_per_step, norm_activation)

    def B_inputs(self, channels_f: int, steps: int, b_per_step: bool) -> list[int]:
        """``B^i`` reads the residuals of the i steps so far: ``i * channels_f`` channels."""
        return [i * channels_f for i in range(1, steps + 1)]

    def forward(
        self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor, A: nn.Module
    ) -> torch.Tensor:
        activated: list[torch.Tensor] = []  # sigma(r^0), ..., sigma(r^{i-1}), each formed once
        for step in range(self.steps):
            if step > 0:
                residual = A.residual(u, f)
            activated.append(self.sigma_residual[step](residual))
            correction = self.sigma_correction[step](self.B[step](torch.cat(activated, dim=1)))
            u = correction if u is None else u + correction
        return u
