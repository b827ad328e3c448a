"""The in-memory batch pipeline: the whole data set sits on the device as uint8 and every batch
is shuffled, cropped, flipped and normalised there with batched tensor ops (no per-image work)."""

from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from mgnet_cli.schema.data import AugmentationConfig


@dataclass(frozen=True)
class ImageSet:
    """Images and their labels, kept as the files store them (no normalisation)."""

    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return self.labels.shape[0]


def crop_and_flip(
    images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, padding: int
) -> torch.Tensor:
    """Crop each image from its zero-padded copy and mirror it where asked, in one gather.

    images (B, C, H, W); offsets (B, 2) int64 top-left corners (row, column) in 0..2*padding;
    flips (B,) bool. Returns (B, C, H, W) with the dtype of images.
    """
    batch, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding)) if padding else images
    rows = offsets[:, 0, None] + torch.arange(height, device=images.device)  # (B, H)
    columns = offsets[:, 1, None] + torch.arange(width, device=images.device)  # (B, W)
    columns = torch.where(flips[:, None], columns.flip(1), columns)  # mirrored: read right to left
    batch_index = torch.arange(batch, device=images.device)[:, None, None, None]
    channel_index = torch.arange(channels, device=images.device)[None, :, None, None]
    return padded[batch_index, channel_index, rows[:, None, :, None], columns[:, None, None, :]]


def shard_slice(size: int, shard: tuple[int, int]) -> slice:
    """A rank's part of a batch of ``size`` images: ``shard = (rank, world size)``; the parts are
    contiguous, in rank order, and differ in size by at most one (as ``Tensor.tensor_split``'s)."""
    rank, world = shard
    base, extra = divmod(size, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def batch_windows(count: int, batch_size: int, shard: tuple[int, int] = (0, 1), min_images: int = 2,
                  drop_last: bool = False) -> Iterator[slice]:
    """A rank's part of each global batch of an epoch of ``count`` images, as positions in the
    epoch's order. The final partial batch is used unless ``drop_last``, when each rank's part of it
    holds ``min_images`` (2 to train: BatchNorm cannot train on one; 0 to evaluate every image, a
    rank whose part is empty skipping it)."""
    full, rest = divmod(count, batch_size)
    tail = not drop_last and rest > 0 and rest // shard[1] >= min_images
    for start in range(0, (full + tail) * batch_size, batch_size):
        part = shard_slice(min(batch_size, count - start), shard)
        if part.stop > part.start:
            yield slice(start + part.start, start + part.stop)


@dataclass(frozen=True)
class Batching:
    """How a ``BatchLoader`` serves one split: ``batch_size`` images a batch (the global batch in
    data-parallel training), normalised by ``mean`` and ``std`` (per channel, in [0, 1] pixel units)
    on ``device``; shuffled and augmented each epoch if asked; NHWC if ``channels_last``.

    ``shard = (rank, world size)``: this rank's part of each batch (``shard_slice``). With
    ``drop_last`` False the final partial batch is kept unless each rank's part of it would hold
    fewer than ``min_images`` (2 to train: BatchNorm cannot train on one; 0 keeps every image, for
    evaluation, a rank whose part is empty skipping it)."""

    batch_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device = torch.device("cpu")
    shuffle: bool = False
    augmentation: AugmentationConfig | None = None
    drop_last: bool = False
    channels_last: bool = False
    shard: tuple[int, int] = (0, 1)
    min_images: int = 2

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size}: a batch holds 1 image or more")
        if not 0 <= self.shard[0] < self.shard[1]:
            raise ValueError(f"shard={self.shard} is not (rank, world size) with 0 <= rank < world size")
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean and std need a value per channel each, got {len(self.mean)} and {len(self.std)}")


class BatchLoader:
    """Batches of (images float32 normalised (B, C, H, W), labels int64 (B,)) of ``data``, as
    ``batching`` says, on its device.

    The uint8 images move to the device once. Each epoch draws its order, crop offsets and flips from
    ``generator`` (a CPU torch.Generator; None uses torch's global generator) when iteration starts,
    so restoring ``generator.get_state()`` replays an epoch exactly. In data-parallel training every
    rank draws the same order and augmentation, so the ranks' parts together are exactly the batches
    of a single process, for any world size.
    """

    def __init__(self, data: ImageSet, batching: Batching, generator: torch.Generator | None = None) -> None:
        channels = data.images.shape[1]
        if len(batching.mean) != channels:
            raise ValueError(f"mean and std need {channels} values each, got {len(batching.mean)}")
        device = torch.device(batching.device)
        self.images = data.images.to(device)  # (N, C, H, W) uint8
        self.labels = data.labels.to(device)  # (N,) int64
        self.batching, self.device, self.generator = batching, device, generator
        self.mean = torch.tensor(batching.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(batching.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        augmentation = batching.augmentation
        self.augmentation = augmentation if augmentation is not None and augmentation.active else None
        self.epoch = 1  # set_epoch: alternating flips read its parity
        self.first_flips = None  # (N,) bool, each image's orientation in odd epochs, drawn here once
        if self.augmentation is not None and self.augmentation.flip_alternating:
            self.first_flips = torch.rand(len(self.labels), generator=generator) < 0.5

    def set_epoch(self, epoch: int) -> None:
        """The epoch (from 1) the next iteration serves: with alternating flips, odd epochs mirror
        the images ``first_flips`` marks and even ones the others (the training loop sets it, a
        resumed run too)."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches per epoch (this rank's)."""
        return sum(1 for _ in self._windows())

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.labels)
        order = torch.randperm(count, generator=self.generator) if self.batching.shuffle else torch.arange(count)
        offsets, flips = self._draw_augmentation(order)
        order = order.to(self.device)
        for window in self._windows():
            index = order[window]
            images = self.images[index]
            if self.augmentation is not None:
                padding = self.augmentation.crop_padding
                images = crop_and_flip(images, offsets[window], flips[window], padding)
            yield self._normalise(images), self.labels[index]

    def _windows(self) -> Iterator[slice]:
        b = self.batching
        return batch_windows(len(self.labels), b.batch_size, b.shard, b.min_images, b.drop_last)

    def _draw_augmentation(self, order: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Crop offsets (count, 2) and flips (count,) for one epoch, in epoch ``order`` (CPU)."""
        if self.augmentation is None:
            return None, None
        count = len(order)
        padding = self.augmentation.crop_padding
        if padding:
            offsets = torch.randint(0, 2 * padding + 1, (count, 2), generator=self.generator)
        else:
            offsets = torch.zeros(count, 2, dtype=torch.int64)
        if self.first_flips is not None:  # alternating: no coin, the epoch's parity
            flips = self.first_flips[order] ^ (self.epoch % 2 == 0)
        elif self.augmentation.flip:
            flips = torch.rand(count, generator=self.generator) < 0.5
        else:
            flips = torch.zeros(count, dtype=torch.bool)
        return offsets.to(self.device), flips.to(self.device)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 pixels -> float32 (x / 255 - mean) / std."""
        images = images.float().div_(255).sub_(self.mean).div_(self.std)
        return images.contiguous(memory_format=torch.channels_last) if self.batching.channels_last else images


class BatchSource(Sized, Iterable, Protocol):
    """An epoch's batches: ``(images float (B, C, H, W), labels int64 (B,))`` on the device;
    ``set_epoch`` says which epoch (from 1) the next iteration serves."""

    def set_epoch(self, epoch: int) -> None: ...


@dataclass
class Batches:
    """The batch sources of one run: what the training loop iterates. ``generator`` decides the
    order and augmentation of training batches, so saving and restoring its state replays the data
    exactly (resume)."""

    train: BatchSource
    evaluations: dict[str, BatchSource]  # "test", and "val" when a validation split is held out
    generator: torch.Generator
