"""What a model is, without training it: its stem, one row per MgNet level or ResNet stage, the head,
parameter totals and forward FLOPs, read from one forward pass of a blank image."""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from mgnet_cli.cycle import MultigridCycle

if TYPE_CHECKING:
    from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class LevelRow:
    """One grid level of an MgNet: resolution, widths, steps, and the parameters and FLOPs it owns."""

    level: int
    resolution: int  # pixels per side of u and f on this level
    channels_u: int
    channels_f: int
    smoothing_steps: int
    parameters: int  # A, the smoother and the restrictions to the next level
    gflops: float  # their forward FLOPs per image, 1e9 units


@dataclass(frozen=True)
class StageRow:
    """One stage of a ResNet (blocks at one resolution)."""

    stage: int
    resolution: int  # pixels per side of the stage's output
    channels: int
    blocks: int
    parameters: int
    gflops: float


@dataclass(frozen=True)
class StemRow:
    """The stem: image -> the first level's data (MgNet) or the first stage's input (ResNet)."""

    resolution: int
    channels: int
    parameters: int
    gflops: float


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def watched(model: nn.Module) -> dict[str, nn.Module]:
    """The modules the table reads, by name: ``stem``, ``level.<i>`` (MgNet), ``stage.<i>`` (ResNet)."""
    modules: dict[str, nn.Module] = {}
    if isinstance(getattr(model, "stem", None), nn.Module):
        modules["stem"] = model.stem
    cycle = next((m for m in model.modules() if isinstance(m, MultigridCycle)), None)
    if cycle is not None:
        modules |= {f"level.{index}": level for index, level in enumerate(cycle.levels)}
    stages = getattr(model, "stages", None)
    if isinstance(stages, nn.Sequential):
        modules |= {f"stage.{index}": stage for index, stage in enumerate(stages)}
    return modules


@torch.no_grad()
def forward_once(model: nn.Module, in_channels: int, image_size: int) -> None:
    """One blank image through ``model`` in evaluation mode; its mode is restored after."""
    was_training = model.training
    model.eval()
    model(torch.zeros(1, in_channels, image_size, image_size))
    model.train(was_training)


def flop_count(work: Callable[[], object]) -> "FlopCounterMode":
    """The FLOP counter that ``work()`` ran under: read ``get_total_flops()``, or per module
    ``get_flop_counts()``. A multiply-add counts 2; BatchNorm, ReLU and additions count nothing."""
    from torch.utils.flop_counter import FlopCounterMode  # here: training reads shapes only

    counter = FlopCounterMode(display=False)
    with counter:
        work()
    return counter


def image_flops(model: nn.Module, in_channels: int, image_size: int) -> int:
    """FLOPs of one image's forward pass in evaluation mode (the ``gflops_per_image`` of ``summary``)."""
    return flop_count(lambda: forward_once(model, in_channels, image_size)).get_total_flops()


def trace(model: nn.Module, modules: dict[str, nn.Module], in_channels: int, image_size: int,
          flops: bool = True) -> tuple[dict[str, tuple[torch.Size, int]], dict[str, int], int]:
    """One forward pass: per watched module its output shape and input channels (of ``f`` for a
    level), its FLOPs, and the model's total FLOPs (a multiply-add counts 2; 0 without ``flops``)."""
    shapes: dict[str, tuple[torch.Size, int]] = {}

    def record(name: str):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            shapes.setdefault(name, (output.shape, args[1 if len(args) > 1 else 0].shape[1]))
        return hook

    # a Level is never called itself: its smoother is, with (u, f, residual, A)
    hooks = [getattr(module, "smoother", module).register_forward_hook(record(name))
             for name, module in modules.items()]
    try:
        if not flops:  # the shapes only: no counter to set up
            forward_once(model, in_channels, image_size)
            return shapes, dict.fromkeys(modules, 0), 0
        counter = flop_count(lambda: forward_once(model, in_channels, image_size))
    finally:
        for hook in hooks:
            hook.remove()
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    flops = {name: module_flops(model, module, counts) for name, module in modules.items()}
    return shapes, flops, counter.get_total_flops()


def module_flops(model: nn.Module, module: nn.Module, counts: dict[str, int]) -> int:
    """FLOPs of the leaf modules (convolutions, linear maps) inside ``module``.

    Summed over leaves because a module's own entry also holds what it runs on borrowed modules:
    a smoother's entry includes its level's ``A``.
    """
    root = type(model).__name__  # the counter names modules "<class of model>.<path>"
    prefix = next(path for path, candidate in model.named_modules() if candidate is module)
    return sum(counts.get(f"{root}.{prefix}.{path}" if path else f"{root}.{prefix}", 0)
               for path, leaf in module.named_modules() if not any(True for _ in leaf.children()))


def summary(model: nn.Module, in_channels: int, image_size: int, flops: bool = True) -> dict[str, Any]:
    """Stem, levels (MgNet) or stages (ResNet), head, parameter total and GFLOPs per image (0 without
    ``flops``), as plain data. ``head`` holds the parameters in no other row: the classifier (and a
    final norm)."""
    modules = watched(model)
    shapes, flops_of, total_flops = trace(model, modules, in_channels, image_size, flops)
    stem, levels, stages = None, [], []
    for name, module in modules.items():
        shape, in_width = shapes[name]
        kind, _, index = name.partition(".")
        common = {"resolution": shape[-1], "parameters": count(module), "gflops": flops_of[name] / 1e9}
        if kind == "stem":
            stem = StemRow(channels=shape[1], **common)
        elif kind == "level":
            steps = module.smoother.steps
            levels.append(LevelRow(int(index) + 1, channels_u=shape[1], channels_f=in_width,
                                   smoothing_steps=steps, **common))
        else:
            stages.append(StageRow(int(index) + 1, channels=shape[1], blocks=len(module), **common))
    rows = [stem, *levels, *stages]
    head = {"parameters": count(model) - sum(row.parameters for row in rows if row is not None),
            "gflops": (total_flops - sum(flops_of.values())) / 1e9}
    return {
        "stem": None if stem is None else asdict(stem),
        "levels": [asdict(row) for row in levels],
        "stages": [asdict(row) for row in stages],
        "head": head,
        "parameters": count(model),
        "gflops_per_image": total_flops / 1e9,
    }
