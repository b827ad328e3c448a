"""The in-memory batch pipeline: the whole data set sits on the device as uint8 and every batch
is shuffled, cropped, flipped and normalised there with batched tensor ops (no per-image work)."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mgnet_cli.data.splits import ImageSet
from mgnet_cli.errors import ConfigError


@dataclass(frozen=True)
class Augmentation:
    """Random training-time augmentation, drawn independently for every image."""

    crop_padding: int = 0  # random crop after zero-padding this many pixels per side
    flip: bool = False  # random horizontal flip

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise ConfigError(
                f"augmentation.crop_padding={self.crop_padding} is not allowed: use 0 or more"
            )

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip


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


class BatchLoader:
    """Batches of (images float32 normalised (B, C, H, W), labels int64 (B,)) on `device`.

    The uint8 images move to `device` once. Each epoch draws its order, crop offsets and flips from
    `generator` (a CPU torch.Generator; None uses torch's global generator) when iteration starts,
    so restoring `generator.get_state()` replays an epoch exactly. With drop_last False the final
    partial batch is kept unless it would hold a single image, which BatchNorm cannot train on
    (`min_images=0`: keep every image, for evaluation).

    `shard = (rank, world size)`: in data-parallel training `batch_size` is the global batch and this
    rank yields its part of each one (`shard_slice`); every rank draws the same order and augmentation,
    so the ranks' parts together are exactly the batches of a single process, for any world size.
    A rank whose part of the final evaluation batch is empty skips it.
    """

    def __init__(
        self,
        data: ImageSet,
        batch_size: int,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device,
        shuffle: bool,
        augmentation: Augmentation | None = None,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        channels_last: bool = False,
        shard: tuple[int, int] = (0, 1),
        min_images: int = 2,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} is not allowed: use 1 or more")
        if not 0 <= shard[0] < shard[1]:
            raise ValueError(f"shard={shard} is not (rank, world size) with 0 <= rank < world size")
        channels = data.images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean and std need {channels} values each, got {len(mean)} and {len(std)}")
        self.images = data.images.to(device)  # (N, C, H, W) uint8
        self.labels = data.labels.to(device)  # (N,) int64
        self.batch_size = batch_size
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.device = torch.device(device)
        self.shuffle = shuffle
        self.augmentation = augmentation if augmentation is not None and augmentation.active else None
        self.generator = generator
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.shard = shard
        self.min_images = min_images

    def __len__(self) -> int:
        """Batches per epoch (this rank's)."""
        return sum(1 for _ in self._windows())

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.labels)
        if self.shuffle:
            order = torch.randperm(count, generator=self.generator)
        else:
            order = torch.arange(count)
        order = order.to(self.device)
        offsets, flips = self._draw_augmentation(count)
        for window in self._windows():
            index = order[window]
            images = self.images[index]
            if self.augmentation is not None:
                padding = self.augmentation.crop_padding
                images = crop_and_flip(images, offsets[window], flips[window], padding)
            yield self._normalise(images), self.labels[index]

    def _windows(self) -> Iterator[slice]:
        return batch_windows(len(self.labels), self.batch_size, self.shard, self.min_images, self.drop_last)

    def _draw_augmentation(self, count: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Crop offsets (count, 2) and flips (count,) for one epoch, in epoch order."""
        if self.augmentation is None:
            return None, None
        padding = self.augmentation.crop_padding
        if padding:
            offsets = torch.randint(0, 2 * padding + 1, (count, 2), generator=self.generator)
        else:
            offsets = torch.zeros(count, 2, dtype=torch.int64)
        if self.augmentation.flip:
            flips = torch.rand(count, generator=self.generator) < 0.5
        else:
            flips = torch.zeros(count, dtype=torch.bool)
        return offsets.to(self.device), flips.to(self.device)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 pixels -> float32 (x / 255 - mean) / std."""
        images = images.float().div_(255).sub_(self.mean).div_(self.std)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images
