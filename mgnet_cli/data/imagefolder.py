"""ImageNet-style folders, ``root/train/<class>/*.jpg`` and ``root/val/<class>/*.jpg``, decoded in
DataLoader workers (too large to hold in memory like CIFAR).

Classes are the sorted folder names of ``train/``; ``val/`` is the evaluation set (reported as
``test``, as papers report ImageNet's validation set). Training images get the standard ImageNet
augmentation (random-resized crop to ``image_size``, horizontal flip), evaluation images a resize of
the shorter side to ``resize`` and a centre crop. Workers return uint8 crops; the batch is moved to
the device and normalised there.
"""

import functools
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from mgnet_cli.data.batches import Batches, batch_windows
from mgnet_cli.errors import ConfigError, DataError
from mgnet_cli.schema.data import AugmentationConfig

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def layout_error(root: Path, problem: str) -> DataError:
    return DataError(f"imagefolder: {problem}\n  expected layout: {root}/train/<class>/*.jpg and "
                     f"{root}/val/<class>/*.jpg (.jpg, .jpeg or .png; set dataset.root)")


def class_folders(split: Path, root: Path) -> list[str]:
    """Sorted names of the class folders in ``split``."""
    if not split.is_dir():
        raise layout_error(root, f"{split} is not a folder")
    with os.scandir(split) as entries:
        names = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    if not names:
        raise layout_error(root, f"{split} has no class folders")
    return names


@dataclass(frozen=True)
class FileSamples:
    """Image files and their labels; paths are bytes relative to ``folder`` in one numpy array,
    so forked workers share them without copying (no per-item Python objects)."""

    folder: Path
    paths: np.ndarray  # (N,) bytes
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


def scan(split: Path, root: Path, classes: Sequence[str], names: Sequence[str]) -> FileSamples:
    """The images of the class folders ``names`` in ``split``, labelled by their index in ``classes``."""
    paths: list[bytes] = []
    labels: list[int] = []
    for name in names:
        with os.scandir(split / name) as entries:
            files = sorted(e.name for e in entries
                           if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES))
        if not files and split.name == "train":
            raise layout_error(root, f"{split / name} holds no .jpg, .jpeg or .png images")
        paths += [os.fsencode(f"{name}/{file}") for file in files]
        labels += [classes.index(name)] * len(files)
    if not paths:
        raise layout_error(root, f"{split} holds no .jpg, .jpeg or .png images")
    return FileSamples(split, np.array(paths, dtype=np.bytes_), np.array(labels, dtype=np.int64))


class ImageFiles(Dataset):
    """``(image uint8 (3, S, S), label)`` per file: decoded with PIL, then ``transform``ed."""

    def __init__(self, samples: FileSamples, transform: Any) -> None:
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.samples.folder / os.fsdecode(self.samples.paths[index])
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")  # greyscale, CMYK and palette images too
        except (OSError, ValueError) as error:
            raise DataError(f"{path}: cannot decode the image ({error})") from error
        return self.transform(image), int(self.samples.labels[index])


class RankBatches(Sampler[list[int]]):
    """A DataLoader's batches of indices: this rank's part of each global batch of ``order``'s epoch
    (the rules of ``batch_windows``), so the ranks' parts together are a single process's batches."""

    def __init__(self, order: Sampler[int], batch_size: int, shard: tuple[int, int],
                 min_images: int) -> None:
        self.order, self.batch_size, self.shard, self.min_images = order, batch_size, shard, min_images

    def __len__(self) -> int:
        return sum(1 for _ in batch_windows(len(self.order), self.batch_size, self.shard, self.min_images))

    def __iter__(self) -> Iterator[list[int]]:
        epoch = list(self.order)  # a shuffling sampler draws the epoch's order from its generator here
        for window in batch_windows(len(epoch), self.batch_size, self.shard, self.min_images):
            yield epoch[window]


def offset_worker_seed(rank: int, worker_id: int) -> None:
    """A worker's random stream on rank > 0: every rank's worker i starts from the same seed (one
    generator state on all ranks), so without this the ranks' augmentations would repeat each other."""
    torch.manual_seed(hash((torch.initial_seed(), rank)) % 2**63)


class DeviceBatches:
    """A DataLoader's uint8 batches moved to ``device`` and normalised there: float (B, 3, S, S)."""

    def __init__(self, loader: DataLoader, device: torch.device, mean: Sequence[float],
                 std: Sequence[float], channels_last: bool = False) -> None:
        self.loader = loader
        self.device = device
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255  # pixel units
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Nothing to set: the workers draw each epoch's augmentation (no alternating flips here)."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        try:
            for images, labels in self.loader:
                images = images.to(self.device, non_blocking=True).float()  # (B, 3, S, S)
                images = images.sub_(self.mean).div_(self.std).contiguous(memory_format=self.memory_format)
                yield images, labels.to(self.device, non_blocking=True)
        except DataError as error:  # from a worker, torch wraps the message in its traceback
            raise DataError(worker_message(str(error))) from None


def worker_message(text: str) -> str:
    """A DataError's own message out of the traceback text a DataLoader worker sends back."""
    prefix = f"{DataError.__module__}.{DataError.__qualname__}: "
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return lines[-1][len(prefix):] if lines else text


@dataclass(frozen=True)
class FolderData:
    """An image-folder data set; quacks like ``ImageData`` for the command line."""

    name: str
    classes: tuple[str, ...]
    train: FileSamples
    test: FileSamples  # the val/ folder
    image_size: int  # side of the crops the model sees
    resize: int  # evaluation: shorter side before the centre crop
    crop_scale: tuple[float, float] | None  # training crop's area fraction; None = evaluation crop
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_workers: int
    val: None = None  # no split of train/: val/ is the held-out set

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return 3

    def transform(self, augmentation: AugmentationConfig | None) -> Any:
        """PIL image -> uint8 (3, S, S): augmented for training, or the evaluation crop (None)."""
        from torchvision.transforms import v2  # imported here: slow, and only needed to train

        if augmentation is not None and augmentation.crop_padding:
            raise ConfigError(f"dataset.augmentation.crop_padding={augmentation.crop_padding}: "
                              "imagefolder crops with random-resized crops; set it to 0")
        if augmentation is not None and augmentation.flip_alternating:
            raise ConfigError("dataset.augmentation.flip_alternating=true: imagefolder's workers draw a new "
                              "flip every epoch; set it to false")
        if augmentation is None or self.crop_scale is None:
            steps = [v2.Resize(self.resize), v2.CenterCrop(self.image_size)]
        else:
            steps = [v2.RandomResizedCrop(self.image_size, scale=self.crop_scale)]
        if augmentation is not None and augmentation.flip:
            steps.append(v2.RandomHorizontalFlip())
        return v2.Compose([*steps, v2.PILToTensor()])

    def batches(self, batch_size: int, eval_batch_size: int, device: torch.device,
                augmentation: AugmentationConfig | None, seed: int, channels_last: bool = False,
                shard: tuple[int, int] = (0, 1)) -> Batches:
        """Training and evaluation batches decoded by ``num_workers`` workers; ``generator`` draws
        the training order and the workers' seeds (so the augmentation) of every epoch.
        ``shard = (rank, world size)``: this rank's part of every global batch (data-parallel runs)."""
        generator = torch.Generator().manual_seed(seed)
        common = {"num_workers": self.num_workers, "pin_memory": device.type == "cuda",
                  "worker_init_fn": functools.partial(offset_worker_seed, shard[0]) if shard[0] else None}
        train_files = ImageFiles(self.train, self.transform(augmentation))
        train_order = RankBatches(RandomSampler(train_files, generator=generator), batch_size, shard,
                                  min_images=2)  # BatchNorm needs 2 images
        train = DataLoader(train_files, batch_sampler=train_order, generator=generator, **common)
        test_files = ImageFiles(self.test, self.transform(None))
        test_order = RankBatches(SequentialSampler(test_files), eval_batch_size, shard, min_images=0)
        test = DataLoader(test_files, batch_sampler=test_order, **common)
        wrap = {"device": device, "mean": self.mean, "std": self.std, "channels_last": channels_last}
        return Batches(DeviceBatches(train, **wrap), {"test": DeviceBatches(test, **wrap)}, generator)


def load_imagefolder(
    root: Path,
    num_classes: int,
    image_size: int,
    resize: int,
    crop_scale: Sequence[float] | None,
    mean: Sequence[float],
    std: Sequence[float],
    num_workers: int,
) -> FolderData:
    """Finds the images under ``root`` (nothing is decoded yet) and checks their layout; the sizes
    come checked by the schema (``ImageFolderConfig``: 0 < image_size <= resize, 0 < low <= high <= 1)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise layout_error(root, f"{root} does not exist")
    classes = class_folders(root / "train", root)
    if len(classes) != num_classes:
        raise ConfigError(f"{root / 'train'} has {len(classes)} class folders but "
                          f"dataset.num_classes={num_classes}: set dataset.num_classes={len(classes)}")
    val_classes = class_folders(root / "val", root)
    unknown = sorted(set(val_classes) - set(classes))
    if unknown:
        raise layout_error(root, f"{root / 'val'} has class folders that train/ lacks: "
                                 f"{', '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''}")
    train = scan(root / "train", root, classes, classes)
    test = scan(root / "val", root, classes, val_classes)
    log.info("image folders %s: %d classes, %d train and %d val images",
             root, len(classes), len(train), len(test))
    return FolderData(root.name, tuple(classes), train, test, image_size, resize,
                      None if crop_scale is None else (float(crop_scale[0]), float(crop_scale[1])),
                      tuple(mean), tuple(std), num_workers)
