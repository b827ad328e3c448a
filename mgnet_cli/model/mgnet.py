"""MgNet (He & Xu, 2019): stem ``f^1 = sigma(theta * x)``, one backslash multigrid cycle, linear head."""

from collections.abc import Callable, Sequence

import torch
from torch import nn

from mgnet_cli.errors import ConfigError
from mgnet_cli.cycle import Level, MultigridCycle
from mgnet_cli.model.layers import DataFeatureMap, conv_bn_relu
from mgnet_cli.schema import rules
from mgnet_cli.schema.model import MgNetConfig, SmootherConfig, StemConfig

SmootherFactory = Callable[..., nn.Module]
"""``factory(channels_u=, channels_f=, steps=)`` -> a smoother module (``configs/smoother/``)."""
StemFactory = Callable[[int, int], nn.Module]
"""``stem(in_channels, channels)`` -> the module computing ``f^1`` from the image (``model/stems.py``)."""


def per_level(value: int | Sequence[int], levels: int) -> list[int]:
    """An int (the same on every level) or one int per level; a ValueError unless each is positive."""
    widths = [value] * levels if isinstance(value, int) else list(value)
    if len(widths) != levels or not all(isinstance(width, int) and width > 0 for width in widths):
        raise ValueError(f"widths {value!r}: one positive int, or one per level ({levels} levels)")
    return widths


class MgNet(nn.Module):
    """Image classifier whose body is the MgNet backslash cycle over ``len(smoothing_steps)`` grids.

    ``channels``/``channels_f`` are the widths of ``u`` and ``f`` (an int for every level or a list);
    ``channels_f`` defaults to ``channels``. ``smoother`` builds each level's smoother; ``stem``
    builds theta (level 1 at the image's resolution with the CIFAR stem). The defaults are the
    schema's (``MgNetConfig``, ``SmootherConfig``, ``StemConfig``): the paper's MgNet[2,2,2,2]-256
    with one B per level on CIFAR-10 (8,278,794 parameters).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        smoothing_steps: Sequence[int] = rules.default(MgNetConfig, "smoothing_steps"),
        channels: int | Sequence[int] = MgNetConfig.channels,
        smoother: SmootherFactory = rules.default_code(SmootherConfig),
        channels_f: int | Sequence[int] | None = MgNetConfig.channels_f,
        stem: StemFactory = rules.default_code(StemConfig),
    ) -> None:
        super().__init__()
        steps = list(smoothing_steps)
        if not steps or not all(isinstance(nu, int) and nu > 0 for nu in steps):
            raise ValueError(f"smoothing_steps {steps}: one positive int per level")
        widths_u = per_level(channels, len(steps))
        widths_f = per_level(channels if channels_f is None else channels_f, len(steps))
        self.smoothing_steps = steps
        self.stem = stem(in_channels, widths_f[0])  # theta
        levels = []
        for level, (c_u, c_f, nu) in enumerate(zip(widths_u, widths_f, steps)):
            coarsest = level == len(steps) - 1
            levels.append(Level(
                A=DataFeatureMap(c_u, c_f),
                smoother=smoother(channels_u=c_u, channels_f=c_f, steps=nu),
                restrict_residual=None if coarsest else conv_bn_relu(c_f, widths_f[level + 1], 2),
                restrict_u=None if coarsest else conv_bn_relu(c_u, widths_u[level + 1], 2),
            ))
        self.cycle = MultigridCycle(levels, shape="backslash")
        self.head = nn.Linear(widths_u[-1], num_classes)  # the only layer with a bias

    def resolutions(self, in_channels: int, image_size: int) -> list[int]:
        """Pixels per side of each level for ``image_size`` inputs; a ConfigError when there are
        more levels than the image can be halved into (a restriction of a 1x1 grid)."""
        training = self.stem.training
        with torch.no_grad():
            size = self.stem.eval()(torch.zeros(1, in_channels, image_size, image_size)).shape[-1]
        self.stem.train(training)
        sizes = [size]
        for level in range(2, len(self.smoothing_steps) + 1):
            if sizes[-1] == 1:
                raise ConfigError(
                    f"model.smoothing_steps has {len(self.smoothing_steps)} levels, but "
                    f"{image_size}-px images reach 1x1 at level {level - 1}: use at most "
                    f"{level - 1} levels"
                )
            sizes.append((sizes[-1] + 1) // 2)  # 3x3 stride-2 convolution, padding 1
        return sizes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B, num_classes) logits."""
        f = self.stem(images)
        u = self.cycle(None, f)  # u^{1,0} = 0
        return self.head(u.mean(dim=(2, 3)))
