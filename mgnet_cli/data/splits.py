"""Data sets held in memory as uint8 image tensors, with a held-out validation split."""

from dataclasses import dataclass, replace

import torch

from mgnet_cli.data.batches import BatchLoader, Batches, Batching, ImageSet
from mgnet_cli.errors import ConfigError
from mgnet_cli.schema.data import AugmentationConfig


@dataclass(frozen=True)
class ImageData:
    """A classification data set: train and test sets, optional validation set, class names."""

    name: str
    train: ImageSet
    test: ImageSet
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # per-channel normalisation, in [0, 1] pixel units
    std: tuple[float, ...]
    val: ImageSet | None = None

    def batches(self, batch_size: int, eval_batch_size: int, device: torch.device,
                augmentation: AugmentationConfig | None, seed: int,
                channels_last: bool = False, shard: tuple[int, int] = (0, 1)) -> Batches:
        """The run's batch sources (NHWC images if ``channels_last``; this rank's part of every
        global batch with ``shard = (rank, world size)``, evaluation keeping every image, each
        evaluated by exactly one rank); the uint8 images move to ``device`` once (data/batches.py)."""
        generator = torch.Generator().manual_seed(seed)
        common = {"mean": tuple(self.mean), "std": tuple(self.std), "device": device,
                  "channels_last": channels_last, "shard": shard}
        train = Batching(batch_size, shuffle=True, augmentation=augmentation, **common)
        evaluation = Batching(eval_batch_size, min_images=0, **common)
        evaluations = {name: BatchLoader(split, evaluation)
                       for name, split in (("test", self.test), ("val", self.val)) if split is not None}
        return Batches(BatchLoader(self.train, train, generator), evaluations, generator)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[-1]


def split_validation(data: ImageData, val_size: int, seed: int) -> ImageData:
    """Move `val_size` training images, a seeded random choice across all classes, into `val`.

    Both parts keep the original order of the training set; 0 returns `data` unchanged.
    """
    if val_size == 0:
        return data
    count = len(data.train)
    if not 0 < val_size < count:
        raise ConfigError(
            f"dataset.val_size={val_size} is out of range: use 0 (no validation set) to {count - 1}"
        )
    if data.val is not None:
        raise ValueError(f"{data.name} already has a validation set of {len(data.val)} images")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    val_index, train_index = order[:val_size].sort().values, order[val_size:].sort().values
    train = ImageSet(data.train.images[train_index], data.train.labels[train_index])
    val = ImageSet(data.train.images[val_index], data.train.labels[val_index])
    return replace(data, train=train, val=val)
