"""The network's learned operators: 3x3 convolutions and the activation sigma = BatchNorm then ReLU."""

from collections.abc import Callable

import torch
from torch import nn

NormActivation = Callable[[int], nn.Module]
"""Builds sigma for a tensor of the given channel count (every sigma gets its own BatchNorm)."""


class DataFeatureMap(nn.Conv2d):
    """``A``, a level's learned data-feature map: a 3x3 convolution u -> f (no bias). An ``Operator``
    of the cycle, so every smoother, the network's and the solver's, forms ``f - A u`` one way."""

    def __init__(self, channels_u: int, channels_f: int) -> None:
        super().__init__(channels_u, channels_f, 3, padding=1, bias=False)

    def residual(self, u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """``f - A u``: (B, c_f, H, W)."""
        return f - self(u)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias: every operator of MgNet (A, B, Pi, R, theta)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def bn_relu(channels: int) -> nn.Module:
    """sigma: BatchNorm then ReLU."""
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
    """sigma(W * x): the stem (theta) and the restrictions (Pi and R, stride 2)."""
    return nn.Sequential(conv3x3(in_channels, out_channels, stride), bn_relu(out_channels))
