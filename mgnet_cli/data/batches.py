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


class BatchLoader:
    """Batches of (images float32 normalised (B, C, H, W), labels int64 (B,)) on `device`.

    The uint8 images move to `device` once. Each epoch draws its order, crop offsets and flips from
    `generator` (a CPU torch.Generator; None uses torch's global generator) when iteration starts,
    so restoring `generator.get_state()` replays an epoch exactly. With drop_last False the final
    partial batch is kept unless it would hold a single image, which BatchNorm cannot train on.
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
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} is not allowed: use 1 or more")
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

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(len(self.labels), self.batch_size)
        return full + (rest > 1 and not self.drop_last)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.labels)
        if self.shuffle:
            order = torch.randperm(count, generator=self.generator)
        else:
            order = torch.arange(count)
        order = order.to(self.device)
        offsets, flips = self._draw_augmentation(count)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images[index]
            if self.augmentation is not None:
                window = slice(start, start + len(index))
                padding = self.augmentation.crop_padding
                images = crop_and_flip(images, offsets[window], flips[window], padding)
            yield self._normalise(images), self.labels[index]

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
