"""Stems: what turns the image into the first grid's data ``f^1`` (MgNet) or first stage (ResNet).

A stem is built as ``stem(in_channels, channels)`` (the config holds a partially applied one, key
``model.stem``). ``cifar_stem`` keeps the image's resolution (32x32 CIFAR images: level 1 at 32x32);
``imagenet_stem`` divides it by 4 (224x224 images: level 1 at 56x56), as ResNet does on ImageNet.
"""

from torch import nn

from mgnet_cli.model.layers import bn_relu, conv3x3, conv_bn_relu
from mgnet_cli.schema.model import StemConfig


def cifar_stem(in_channels: int, channels: int, norm_activation: bool = StemConfig.norm_activation) -> nn.Module:
    """``sigma(theta * x)``, theta a 3x3 convolution, stride 1: (B, C, H, W) -> (B, channels, H, W).

    ``norm_activation=False`` leaves out sigma (a pre-activation ResNet's first block applies it).
    """
    return conv_bn_relu(in_channels, channels) if norm_activation else conv3x3(in_channels, channels)


def imagenet_stem(in_channels: int, channels: int,
                  norm_activation: bool = StemConfig.norm_activation) -> nn.Module:
    """7x7 convolution with stride 2, BatchNorm, ReLU, 3x3 max-pool with stride 2 (He et al. 2016).

    (B, C, H, W) -> (B, channels, H / 4, W / 4); 224x224 images give 56x56.
    """
    conv = nn.Conv2d(in_channels, channels, 7, stride=2, padding=3, bias=False)
    sigma = bn_relu(channels) if norm_activation else nn.Identity()
    return nn.Sequential(conv, sigma, nn.MaxPool2d(3, stride=2, padding=1))
