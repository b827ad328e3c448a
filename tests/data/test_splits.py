"""Validation split: sizes, disjointness, determinism per seed, and the one-line range error."""

import pytest
import torch

from mgnet_cli.data.batches import ImageSet
from mgnet_cli.data.splits import ImageData, split_validation
from mgnet_cli.errors import ConfigError


def make_data(count: int = 50) -> ImageData:
    """Each image holds its own index, so images and labels can be traced through the split."""
    images = torch.arange(count, dtype=torch.uint8).view(count, 1, 1, 1).expand(count, 1, 4, 4).clone()
    labels = torch.arange(count) % 5
    test = ImageSet(images[:3], labels[:3])
    return ImageData("toy", ImageSet(images, labels), test, tuple("abcde"), (0.5,), (0.25,))


def test_split_moves_images_without_loss_or_overlap() -> None:
    data = make_data()
    split = split_validation(data, 12, seed=0)
    assert len(split.train) == 38 and len(split.val) == 12 and split.test is data.test
    train_ids, val_ids = split.train.images[:, 0, 0, 0].tolist(), split.val.images[:, 0, 0, 0].tolist()
    assert sorted(train_ids + val_ids) == list(range(50))
    assert train_ids == sorted(train_ids) and val_ids == sorted(val_ids)  # original order kept
    assert split.val.labels.tolist() == [index % 5 for index in val_ids]  # labels travel along
    assert len(set(split.val.labels.tolist())) > 1  # a random choice, not one class or the first rows
    assert val_ids != list(range(12)) and val_ids != list(range(38, 50))
    assert data.val is None and len(data.train) == 50  # the input is left alone


def test_split_is_deterministic_per_seed() -> None:
    data = make_data()
    first, again, other = (split_validation(data, 10, seed) for seed in (3, 3, 4))
    assert torch.equal(first.val.images, again.val.images)
    assert torch.equal(first.train.labels, again.train.labels)
    assert not torch.equal(first.val.images, other.val.images)


def test_zero_returns_the_data_unchanged() -> None:
    data = make_data()
    assert split_validation(data, 0, seed=1) is data


@pytest.mark.parametrize("val_size", [50, 51, -1])
def test_out_of_range_sizes_are_config_errors(val_size: int) -> None:
    with pytest.raises(ConfigError) as caught:
        split_validation(make_data(), val_size, seed=0)
    message = str(caught.value)
    assert "\n" not in message and f"dataset.val_size={val_size}" in message
    assert "0 (no validation set) to 49" in message


def test_largest_allowed_split_keeps_one_training_image() -> None:
    split = split_validation(make_data(), 49, seed=0)
    assert len(split.train) == 1 and len(split.val) == 49
