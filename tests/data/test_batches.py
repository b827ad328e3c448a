"""The on-device batch pipeline: batch shapes, the drop-last rule, crops and flips against a
per-image reference, normalisation numbers, and epochs replayed from the generator state."""

import pytest
import torch
import torch.nn.functional as F

from mgnet_cli.data.batches import BatchLoader, Batching, ImageSet, crop_and_flip
from mgnet_cli.schema.data import AugmentationConfig

CPU = torch.device("cpu")
IDENTITY = {"mean": (0.0,) * 3, "std": (1 / 255,) * 3}  # normalised pixels = the uint8 values


def image_set(count: int, size: int = 8, seed: int = 0) -> ImageSet:
    """Random images whose label is their index, so every output can be traced to its source."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 3, size, size), generator=generator, dtype=torch.uint8)
    return ImageSet(images, torch.arange(count))


def loader_of(data: ImageSet, batch_size: int, generator: torch.Generator | None = None,
              **options) -> BatchLoader:
    """A loader of ``data`` batched as ``options`` (``Batching``'s fields) say."""
    return BatchLoader(data, Batching(batch_size, **options), generator)


def reference_crop(image: torch.Tensor, top: int, left: int, flip: bool, padding: int) -> torch.Tensor:
    """One image, the slow obvious way: pad, slice the window, mirror."""
    _, height, width = image.shape
    padded = F.pad(image, (padding, padding, padding, padding))
    window = padded[:, top : top + height, left : left + width]
    return window.flip(-1) if flip else window


def as_pixels(images: torch.Tensor) -> torch.Tensor:
    return images.round().to(torch.uint8)


def all_windows(image: torch.Tensor, padding: int) -> list[torch.Tensor]:
    offsets = range(2 * padding + 1)
    return [reference_crop(image, top, left, flip, padding)
            for top in offsets for left in offsets for flip in (False, True)]  # fmt: skip


@pytest.mark.parametrize(
    "count, batch_size, drop_last, sizes",
    [(10, 4, False, [4, 4, 2]), (9, 4, False, [4, 4]), (9, 4, True, [4, 4]), (10, 4, True, [4, 4]),
     (8, 4, False, [4, 4]), (3, 8, False, [3]), (1, 8, False, []), (5, 1, False, [1] * 5)],
)  # fmt: skip
def test_batch_sizes_and_the_single_image_rule(
    count: int, batch_size: int, drop_last: bool, sizes: list[int]
) -> None:
    loader = loader_of(image_set(count), batch_size, device=CPU, shuffle=True, drop_last=drop_last,
                         generator=torch.Generator().manual_seed(0), **IDENTITY)  # fmt: skip
    batches = list(loader)
    assert len(loader) == len(sizes) and [len(labels) for _, labels in batches] == sizes
    for images, labels in batches:
        assert images.dtype == torch.float32 and images.shape[1:] == (3, 8, 8)
        assert labels.dtype == torch.int64
    seen = torch.cat([labels for _, labels in batches]) if batches else torch.empty(0, dtype=torch.int64)
    assert len(seen.unique()) == len(seen) == sum(sizes)  # no image twice in an epoch


def test_without_shuffle_images_come_in_order_and_unchanged() -> None:
    data = image_set(10)
    batches = list(loader_of(data, 4, device=CPU, shuffle=False, **IDENTITY))
    assert torch.cat([labels for _, labels in batches]).tolist() == list(range(10))
    assert torch.equal(as_pixels(torch.cat([images for images, _ in batches])), data.images)


def test_normalisation_numbers() -> None:
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1).repeat(2, 1, 2, 2)
    data = ImageSet(images, torch.zeros(2, dtype=torch.int64))
    loader = loader_of(data, 2, mean=(0.5, 0.1, 0.4), std=(0.25, 0.5, 0.2), device=CPU, shuffle=False)
    normalised, _ = next(iter(loader))
    expected = torch.tensor([(0 - 0.5) / 0.25, (0.2 - 0.1) / 0.5, (1 - 0.4) / 0.2])  # -2.0, 0.2, 3.0
    assert torch.allclose(normalised[:, :, 1, 0], expected.expand(2, 3), atol=1e-6)


@pytest.mark.parametrize("padding", [0, 1, 3])
def test_crop_and_flip_matches_the_per_image_reference(padding: int) -> None:
    data = image_set(16, size=6)
    generator = torch.Generator().manual_seed(padding)
    offsets = torch.randint(0, 2 * padding + 1, (16, 2), generator=generator)
    flips = torch.rand(16, generator=generator) < 0.5
    result = crop_and_flip(data.images, offsets, flips, padding)
    assert result.dtype == torch.uint8 and result.shape == data.images.shape
    for index in range(16):
        top, left = offsets[index].tolist()
        expected = reference_crop(data.images[index], top, left, bool(flips[index]), padding)
        assert torch.equal(result[index], expected), f"image {index}, offset {(top, left)}"


def test_augmented_batches_are_windows_of_the_padded_images() -> None:
    data, padding = image_set(40, size=8), 2
    augmentation = AugmentationConfig(crop_padding=padding, flip=True)
    loader = loader_of(data, 16, device=CPU, shuffle=True, augmentation=augmentation,
                         generator=torch.Generator().manual_seed(1), **IDENTITY)  # fmt: skip
    matches = []
    for images, labels in loader:
        for image, label in zip(as_pixels(images), labels.tolist()):
            windows = all_windows(data.images[label], padding)
            found = [index for index, window in enumerate(windows) if torch.equal(image, window)]
            assert found, f"output for image {label} is not a window of its padded image"
            matches.append(found[0])
    flipped = [index % 2 for index in matches]
    assert 0.2 < sum(flipped) / len(flipped) < 0.8  # both orientations occur
    offsets = [divmod(index // 2, 2 * padding + 1) for index in matches]  # (top, left) of each window
    assert {top for top, _ in offsets} == {left for _, left in offsets} == set(range(2 * padding + 1))
    assert len(set(offsets)) > 10  # many of the 25 offsets occur, not a few fixed ones


def test_flip_only_mirrors_or_keeps_each_image() -> None:
    data = image_set(64)
    loader = loader_of(data, 64, device=CPU, shuffle=False, augmentation=AugmentationConfig(flip=True),
                         generator=torch.Generator().manual_seed(0), **IDENTITY)  # fmt: skip
    images, _ = next(iter(loader))
    mirrored = (as_pixels(images) == data.images.flip(-1)).flatten(1).all(1)
    kept = (as_pixels(images) == data.images).flatten(1).all(1)
    assert bool((mirrored | kept).all()) and 10 < int(mirrored.sum()) < 54


def test_alternating_flips_mirror_each_image_in_every_other_epoch() -> None:
    """airbench94's alternating flip: a random orientation per image at first, then the other one
    each epoch, whatever the shuffled order (labels say which image a row is)."""
    data = image_set(64)
    loader = loader_of(data, 16, device=CPU, shuffle=True, augmentation=AugmentationConfig(flip=True, flip_alternating=True),
                         generator=torch.Generator().manual_seed(0), **IDENTITY)  # fmt: skip

    def mirrored_in(epoch: int) -> torch.Tensor:
        loader.set_epoch(epoch)
        images, labels = (torch.cat(parts) for parts in zip(*loader))
        pixels = as_pixels(images)
        mirrored = (pixels == data.images[labels].flip(-1)).flatten(1).all(1)
        assert bool((mirrored | (pixels == data.images[labels]).flatten(1).all(1)).all())
        return torch.zeros(64, dtype=torch.bool).index_put((labels,), mirrored)  # by image

    first, second, third = mirrored_in(1), mirrored_in(2), mirrored_in(3)
    assert 10 < int(first.sum()) < 54  # a coin per image at first
    assert torch.equal(second, ~first) and torch.equal(third, first)
    assert torch.equal(mirrored_in(2), second)  # the parity decides, not how many epochs ran


def test_alternating_flips_need_flip() -> None:
    with pytest.raises(ValueError, match="flip_alternating=true alternates flips: set flip=true too"):
        AugmentationConfig(flip=False, flip_alternating=True)


def test_generator_state_replays_an_epoch() -> None:
    generator = torch.Generator().manual_seed(7)
    loader = loader_of(image_set(30), 8, device=CPU, shuffle=True, augmentation=AugmentationConfig(2, True),
                         generator=generator, **IDENTITY)  # fmt: skip
    state = generator.get_state()
    first = list(loader)
    second = list(loader)
    generator.set_state(state)
    replay = list(loader)
    for (images, labels), (images_again, labels_again) in zip(first, replay, strict=True):
        assert torch.equal(images, images_again) and torch.equal(labels, labels_again)
    assert not torch.equal(first[0][1], second[0][1])  # the next epoch has a new order
    assert first[0][1].tolist() != list(range(8))


def test_channels_last_layout_keeps_the_values() -> None:
    data = image_set(6)
    plain, _ = next(iter(loader_of(data, 6, device=CPU, shuffle=False, **IDENTITY)))
    packed, _ = next(iter(loader_of(data, 6, device=CPU, shuffle=False, channels_last=True,
                                      **IDENTITY)))  # fmt: skip
    assert packed.is_contiguous(memory_format=torch.channels_last)
    assert not plain.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(plain, packed)


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="crop_padding=-1"):
        AugmentationConfig(crop_padding=-1)
    with pytest.raises(ValueError, match="batch_size=0"):
        loader_of(image_set(4), 0, device=CPU, shuffle=False, **IDENTITY)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_equal_cpu_batches_for_the_same_generator_state() -> None:
    data, augmentation = image_set(50), AugmentationConfig(crop_padding=2, flip=True)
    outputs = []
    for device in (CPU, torch.device("cuda")):
        loader = loader_of(data, 16, device=device, shuffle=True, augmentation=augmentation,
                             generator=torch.Generator().manual_seed(3), **IDENTITY)  # fmt: skip
        outputs.append([(images.cpu(), labels.cpu()) for images, labels in loader])
        assert next(iter(loader))[0].device.type == device.type
    for (cpu_images, cpu_labels), (cuda_images, cuda_labels) in zip(*outputs, strict=True):
        assert torch.equal(cpu_labels, cuda_labels) and torch.allclose(cpu_images, cuda_images)
