"""What a model is, without training it: per-level table, parameter totals, forward FLOPs."""

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mgnet_cli.model.cycle import MultigridCycle


@dataclass(frozen=True)
class LevelRow:
    """One grid level of an MgNet: resolution, widths, steps and the parameters it owns."""

    level: int
    resolution: int  # pixels per side of u and f on this level
    channels_u: int
    channels_f: int
    smoothing_steps: int
    parameters: int  # A, the smoother and the restrictions to the next level


def count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def level_rows(model: nn.Module, in_channels: int, image_size: int) -> list[LevelRow]:
    """Runs one image through the model and reads each level's shapes; [] for models without a cycle."""
    cycles = [module for module in model.modules() if isinstance(module, MultigridCycle)]
    if not cycles:
        return []
    shapes: dict[int, tuple[int, int, int]] = {}  # level -> (resolution, channels of u, of f)

    def record(index: int):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            shapes.setdefault(index, (output.shape[-1], output.shape[1], args[1].shape[1]))
        return hook

    hooks = [level.smoother.register_forward_hook(record(index))
             for index, level in enumerate(cycles[0].levels)]
    try:
        forward_once(model, in_channels, image_size)
    finally:
        for hook in hooks:
            hook.remove()
    return [
        LevelRow(index + 1, *shapes[index], getattr(level.smoother, "steps", 0), count(level))
        for index, level in enumerate(cycles[0].levels)
    ]


@torch.no_grad()
def forward_once(model: nn.Module, in_channels: int, image_size: int) -> None:
    was_training = model.training
    model.eval()
    model(torch.zeros(1, in_channels, image_size, image_size))
    model.train(was_training)


def forward_flops(model: nn.Module, in_channels: int, image_size: int) -> int:
    """Floating-point operations of one image's forward pass (a multiply-add counts 2)."""
    counter = FlopCounterMode(display=False)
    with counter:
        forward_once(model, in_channels, image_size)
    return counter.get_total_flops()


def summary(model: nn.Module, in_channels: int, image_size: int) -> dict:
    """Levels, parameter total and forward GFLOPs per image, as plain data."""
    return {
        "levels": [asdict(row) for row in level_rows(model, in_channels, image_size)],
        "parameters": count(model),
        "gflops_per_image": forward_flops(model, in_channels, image_size) / 1e9,
    }
