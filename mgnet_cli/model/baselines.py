"""The CNNs the paper compares MgNet with: ResNet (He et al. 2015) and pre-activation ResNet
(He et al. 2016, "Identity Mappings in Deep Residual Networks").

One ``ResNet`` class serves every variant: the residual block is passed in as a callable
``block(in_channels, channels, stride)``, the depth and widths are lists (``layers=[2,2,2,2]`` is
ResNet-18), and the stem is a callable from ``mgnet_cli.model.stems``. The YAML files in
``configs/model/`` are the variants.
"""

from collections.abc import Callable, Sequence

import torch
from torch import nn

from mgnet_cli.model.layers import bn_relu, conv3x3
from mgnet_cli.schema import rules
from mgnet_cli.schema.model import ResNetConfig, StemConfig

BlockFactory = Callable[[int, int, int], nn.Module]
"""``block(in_channels, channels, stride)`` -> one residual block."""
StemFactory = Callable[[int, int], nn.Module]


def projection(in_channels: int, channels: int, stride: int) -> nn.Conv2d:
    """1x1 convolution, no bias: the shortcut where a block changes the width or the resolution."""
    return nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """``relu(x' + BN(conv(relu(BN(conv(x))))))``, x' = x or BN(projection(x)) (post-activation)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.norm_activation1 = bn_relu(channels)
        self.conv2 = conv3x3(channels, channels)
        self.norm2 = nn.BatchNorm2d(channels)
        changes_shape = stride != 1 or in_channels != channels
        self.shortcut = (nn.Sequential(projection(in_channels, channels, stride), nn.BatchNorm2d(channels))
                         if changes_shape else nn.Identity())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm2(self.conv2(self.norm_activation1(self.conv1(x))))
        return self.relu(out + self.shortcut(x))


class PreActBlock(nn.Module):
    """``x' + conv(sigma(conv(sigma(x))))``, sigma = BN then ReLU, x' = x or projection(sigma(x)).

    With the residual of MgNet's ``resnet`` smoother as ``x`` and ``A`` as the second convolution,
    this block is one smoothing step (docs/MGNET.md; tests/model/test_correspondence.py).
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.sigma1 = bn_relu(in_channels)
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.sigma2 = bn_relu(channels)
        self.conv2 = conv3x3(channels, channels)
        changes_shape = stride != 1 or in_channels != channels
        self.shortcut = projection(in_channels, channels, stride) if changes_shape else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.sigma1(x)
        shortcut = x if self.shortcut is None else self.shortcut(activated)
        return shortcut + self.conv2(self.sigma2(self.conv1(activated)))


def make_stage(block: BlockFactory, in_channels: int, channels: int, blocks: int,
               stride: int) -> nn.Sequential:
    """``blocks`` blocks at one resolution; the first changes width and resolution (``stride``)."""
    return nn.Sequential(*(block(in_channels if index == 0 else channels, channels,
                                 stride if index == 0 else 1) for index in range(blocks)))


class ResNet(nn.Module):
    """Stem, one stage per entry of ``layers`` (the first at the stem's resolution, each next one
    at half of it), optional final BN-ReLU (pre-activation nets need it), global pool, linear head.
    The defaults are the schema's (``ResNetConfig``): ResNet-18's stages and widths, CIFAR stem.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        block: BlockFactory,
        layers: Sequence[int] = rules.default(ResNetConfig, "layers"),
        widths: Sequence[int] = rules.default(ResNetConfig, "widths"),
        stem: StemFactory = rules.default_code(StemConfig),
        final_norm_activation: bool = ResNetConfig.final_norm_activation,
    ) -> None:
        super().__init__()
        layers, widths = list(layers), list(widths)
        if not layers or len(layers) != len(widths) or not all(
                isinstance(v, int) and v > 0 for v in layers + widths):
            raise ValueError(f"layers {layers}, widths {widths}: one positive block count and width per stage")
        self.stem = stem(in_channels, widths[0])
        self.stages = nn.Sequential(*(
            make_stage(block, widths[max(index - 1, 0)], width, blocks, 1 if index == 0 else 2)
            for index, (width, blocks) in enumerate(zip(widths, layers))
        ))
        self.final = bn_relu(widths[-1]) if final_norm_activation else nn.Identity()
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B, num_classes) logits."""
        features = self.final(self.stages(self.stem(images)))  # (B, widths[-1], H', W')
        return self.head(features.mean(dim=(2, 3)))
