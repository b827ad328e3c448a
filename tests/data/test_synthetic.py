"""Synthetic data: deterministic per seed, balanced labels, and learnable by a small CNN."""

import pytest
import torch
from torch import nn

from mgnet_cli.data.batches import BatchLoader, Batching
from mgnet_cli.data.synthetic import load_synthetic
from mgnet_cli.schema import rules
from mgnet_cli.schema.data import AugmentationConfig, SyntheticConfig

SIZES = ("num_train", "num_test", "num_classes", "image_size", "channels", "seed")


def synthetic(**changes):
    """``dataset=synthetic`` (its schema's sizes and seed) with ``changes``."""
    return load_synthetic(**{key: rules.default(SyntheticConfig, key) for key in SIZES} | changes)


def test_same_seed_same_data_other_seed_other_data() -> None:
    first, again, other = synthetic(seed=3), synthetic(seed=3), synthetic(seed=4)
    assert torch.equal(first.train.images, again.train.images)
    assert torch.equal(first.test.labels, again.test.labels)
    assert first.mean == again.mean
    assert (first.train.images != other.train.images).float().mean() > 0.5


def test_shapes_labels_and_statistics() -> None:
    data = synthetic(num_train=60, num_test=30, num_classes=6, image_size=28, channels=1, seed=1)
    assert data.train.images.shape == (60, 1, 28, 28) and data.test.images.shape == (30, 1, 28, 28)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    assert data.train.labels.bincount().tolist() == [10] * 6  # balanced, every label in 0..5
    assert data.test.labels.min() >= 0 and data.test.labels.max() == 5 and data.num_classes == 6
    pixels = data.train.images.float() / 255
    assert data.mean == pytest.approx([pixels.mean().item()], abs=1e-6)
    assert data.std == pytest.approx([pixels.std().item()], abs=1e-6)
    assert 0.15 < data.std[0] < 0.4  # patterns and noise spread the pixels without saturating them


def test_test_set_does_not_change_the_train_set_and_root_is_ignored() -> None:
    small = synthetic(num_test=10, root="/does/not/exist", download=True)
    large = synthetic(num_test=100)
    assert torch.equal(small.train.images, large.train.images)
    assert not torch.equal(small.test.images, large.test.images[:10])


def test_sizes_are_validated() -> None:
    with pytest.raises(ValueError, match=r"num_classes=1: 2 or more"):
        synthetic(num_classes=1)


def test_a_small_cnn_learns_it_in_two_epochs() -> None:
    torch.manual_seed(0)
    data = synthetic(num_train=512, num_test=256, seed=0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(4),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(32, data.num_classes),
    )  # fmt: skip
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    common = {"mean": data.mean, "std": data.std, "device": torch.device("cpu")}
    augmentation = AugmentationConfig(crop_padding=2, flip=True)
    train = BatchLoader(data.train, Batching(64, shuffle=True, augmentation=augmentation, **common),
                        torch.Generator().manual_seed(0))
    for _ in range(2):
        for images, labels in train:
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        test = BatchLoader(data.test, Batching(128, **common))
        correct = sum((model(images).argmax(1) == labels).sum().item() for images, labels in test)
    assert correct / len(data.test) > 0.4  # chance is 0.1; this seed reaches about 0.7
