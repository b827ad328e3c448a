"""What the training loop iterates: training batches and named evaluation sets, on the device."""

from collections.abc import Iterable, Sized
from dataclasses import dataclass
from typing import Protocol

import torch

from mgnet_cli.data.batches import Augmentation, BatchLoader
from mgnet_cli.data.splits import ImageData


class BatchSource(Sized, Iterable, Protocol):
    """An epoch's batches: ``(images float (B, C, H, W), labels int64 (B,))`` on the device."""


@dataclass
class Batches:
    """The batch sources of one run; ``generator`` decides the order and augmentation of training
    batches, so saving and restoring its state replays the data exactly (resume)."""

    train: BatchSource
    evaluations: dict[str, BatchSource]  # "test", and "val" when a validation split is held out
    generator: torch.Generator


def in_memory_batches(
    data: ImageData,
    batch_size: int,
    eval_batch_size: int,
    device: torch.device,
    augmentation: Augmentation | None,
    seed: int,
    channels_last: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> Batches:
    """Batches for a data set held in memory: the uint8 images move to ``device`` once.

    ``shard = (rank, world size)``: this rank's part of every global batch (data-parallel runs);
    evaluation keeps every image, each evaluated by exactly one rank.
    """
    generator = torch.Generator().manual_seed(seed)
    common = {"mean": data.mean, "std": data.std, "device": device, "channels_last": channels_last,
              "shard": shard}
    train = BatchLoader(data.train, batch_size, shuffle=True, augmentation=augmentation,
                        generator=generator, **common)
    evaluations = {name: BatchLoader(split, eval_batch_size, shuffle=False, min_images=0, **common)
                   for name, split in (("test", data.test), ("val", data.val)) if split is not None}
    return Batches(train, evaluations, generator)
