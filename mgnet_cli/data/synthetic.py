"""A learnable image data set generated in memory, for tests and quick runs without files.

Each class owns a fixed random low-frequency colour pattern (a mean colour plus a smooth spatial
pattern, mirror-symmetric so that random flips keep the class); every sample is its class pattern
plus independent pixel noise, so a small CNN separates the classes within a couple of epochs.
"""

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from mgnet_cli.data.batches import ImageSet
from mgnet_cli.data.splits import ImageData

log = logging.getLogger(__name__)

COLOUR_SCALE = 30.0  # pixel units: spread of a class's mean colour around mid-grey
PATTERN_SCALE = 40.0  # pixel units: spread of a class's spatial pattern around its colour
NOISE_SCALE = 60.0  # pixel units: standard deviation of the per-pixel noise


def load_synthetic(
    *,
    num_train: int,
    num_test: int,
    num_classes: int,
    image_size: int,
    channels: int,
    seed: int,
    root: Path | None = None,
    download: bool = False,
) -> ImageData:
    """Class patterns plus noise, deterministic per seed; `root` and `download` are ignored.

    The test set is drawn after the train set, so changing num_test leaves the train images alone.
    """
    del root, download  # accepted so that every loader is called the same way
    if min(num_train, num_test, image_size, channels) < 1 or num_classes < 2:
        raise ValueError(f"sizes {num_train}, {num_test}, {image_size}, {channels}: each 1 or more; "
                         f"num_classes={num_classes}: 2 or more")
    generator = torch.Generator().manual_seed(seed)
    patterns = _class_patterns(num_classes, channels, image_size, generator)
    train = _samples(patterns, num_train, generator)
    test = _samples(patterns, num_test, generator)
    pixels = train.images.float() / 255
    mean = tuple(pixels.mean(dim=(0, 2, 3)).tolist())
    std = tuple(pixels.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
    classes = tuple(f"pattern_{index}" for index in range(num_classes))
    log.info("synthetic data: %d classes, %d train and %d test images", num_classes, num_train, num_test)
    return ImageData("synthetic", train, test, classes, mean, std)


def _class_patterns(
    num_classes: int, channels: int, image_size: int, generator: torch.Generator
) -> torch.Tensor:
    """(K, C, S, S) float patterns: random values on a coarse grid, smoothly upsampled."""
    grid = max(2, image_size // 8)  # 4x4 control points for 32x32 images
    colour = torch.randn(num_classes, channels, 1, 1, generator=generator)
    coarse = torch.randn(num_classes, channels, grid, grid, generator=generator)
    coarse = (coarse + coarse.flip(-1)) / 2  # mirror-symmetric, so a random flip keeps the class
    smooth = F.interpolate(coarse, size=(image_size, image_size), mode="bicubic", align_corners=False)
    return 128.0 + COLOUR_SCALE * colour + PATTERN_SCALE * smooth / smooth.std()


def _samples(patterns: torch.Tensor, count: int, generator: torch.Generator) -> ImageSet:
    """`count` noisy copies of the patterns, classes balanced and shuffled."""
    num_classes = patterns.shape[0]
    labels = (torch.arange(count) % num_classes)[torch.randperm(count, generator=generator)]
    noise = NOISE_SCALE * torch.randn(count, *patterns.shape[1:], generator=generator)
    images = (patterns[labels] + noise).round().clamp(0, 255).to(torch.uint8)
    return ImageSet(images, labels)
