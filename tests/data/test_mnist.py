"""MNIST / Fashion-MNIST IDX readers: files written here, Debian's Fashion-MNIST, failure paths."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from mgnet_cli.data.mnist import load_fashion_mnist, load_mnist
from mgnet_cli.errors import DataError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
NAMES = {
    "train-images-idx3-ubyte": 0x803,
    "train-labels-idx1-ubyte": 0x801,
    "t10k-images-idx3-ubyte": 0x803,
    "t10k-labels-idx1-ubyte": 0x801,
}


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file: magic (0, 0, type 0x08 = uint8, ndim), big-endian sizes, then the raw bytes."""
    magic = 0x800 + array.ndim if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(folder: Path, name: str, array: np.ndarray, gz: bool) -> Path:
    path = folder / (f"{name}.gz" if gz else name)
    content = idx_bytes(array)
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def write_mnist(
    folder: Path, gz: bool = True, num_train: int = 12, num_test: int = 5
) -> dict[str, np.ndarray]:
    """The four IDX files in folder; returns the arrays by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (num_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(num_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (num_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, num_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder, name, array, gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_images_and_labels(tmp_path: Path, gz: bool) -> None:
    arrays = write_mnist(tmp_path / "MNIST" / "raw", gz=gz)
    data = load_mnist(tmp_path, download=False)
    assert data.train.images.shape == (12, 1, 28, 28) and data.test.images.shape == (5, 1, 28, 28)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    np.testing.assert_array_equal(data.train.images[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.test.images[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    assert data.train.labels.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert data.test.labels.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert (data.name, data.num_classes, data.in_channels, data.image_size) == ("mnist", 10, 1, 28)
    assert data.mean == (0.1307,) and data.std == (0.3081,)


def test_fashion_mnist_reads_torchvision_and_plain_layouts(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path / "tv" / "FashionMNIST" / "raw", gz=False)
    data = load_fashion_mnist(tmp_path / "tv", download=False)
    np.testing.assert_array_equal(data.train.images[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    assert data.mean == (0.2860,) and data.std == (0.3530,) and data.name == "fashion_mnist"
    plain = write_mnist(tmp_path / "plain", gz=True, num_train=7)
    data = load_fashion_mnist(tmp_path / "plain", download=False)
    assert len(data.train) == 7
    assert data.test.labels.tolist() == plain["t10k-labels-idx1-ubyte"].tolist()


def test_mnist_does_not_take_the_plain_layout(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=True)  # Fashion-MNIST's Debian layout: files straight in root
    with pytest.raises(DataError, match=r"MNIST not found in .*MNIST/raw"):
        load_mnist(tmp_path, download=False)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("train-images-idx3-ubyte", idx_bytes(np.zeros((3, 28, 28)), magic=0x801),
         "magic 0x00000803, found 0x00000801"),
        ("train-labels-idx1-ubyte", b"\x00\x00", "too short"),
        ("t10k-images-idx3-ubyte", idx_bytes(np.zeros((5, 28, 28)))[:-100],
         "needs 3936 bytes, the file holds 3836"),
        ("t10k-images-idx3-ubyte", idx_bytes(np.zeros((5, 28, 27))), "should be 28x28, found 28x27"),
        ("t10k-labels-idx1-ubyte", idx_bytes(np.zeros(4)), "4 labels for 5 images"),
        ("t10k-labels-idx1-ubyte", idx_bytes(np.array([0, 1, 2, 3, 10])), r"0\.\.9, found 10"),
    ],
)
def test_malformed_idx_files_name_the_file(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    raw = tmp_path / "MNIST" / "raw"
    write_mnist(raw, gz=False)
    (raw / name).write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        load_mnist(tmp_path, download=False)
    assert str(caught.value).startswith(str(raw)) and name in str(caught.value)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    write_mnist(raw, gz=True)
    path = raw / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: cannot read it"):
        load_mnist(tmp_path, download=False)


def test_missing_files_without_download_explain_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_fashion_mnist(tmp_path, download=False)
    message = str(caught.value)
    assert len(message.splitlines()) <= 3 and "download is off" in message
    assert str(tmp_path / "FashionMNIST" / "raw") in message
    assert all(f"{name}[.gz]" in message for name in NAMES)


def test_download_through_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(root: str, train: bool = True, download: bool = False, **_: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr("torchvision.datasets.MNIST", offline)
    with pytest.raises(DataError, match="download failed: RuntimeError: Error downloading"):
        load_mnist(tmp_path, download=True)

    def fake_download(root: str, train: bool = True, download: bool = False, **_: object) -> None:
        write_mnist(Path(root) / "MNIST" / "raw", gz=False, num_train=3)

    monkeypatch.setattr("torchvision.datasets.MNIST", fake_download)
    assert len(load_mnist(tmp_path, download=True).train) == 3


@pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(), reason=f"no {DEBIAN_FASHION} (apt-get install dataset-fashion-mnist)"
)
def test_real_fashion_mnist_from_the_debian_package() -> None:
    data = load_fashion_mnist(DEBIAN_FASHION, download=False)
    assert data.train.images.shape == (60000, 1, 28, 28) and data.test.images.shape == (10000, 1, 28, 28)
    assert data.train.labels.bincount().tolist() == [6000] * 10
    assert data.test.labels.bincount().tolist() == [1000] * 10
    pixels = data.train.images.float() / 255
    assert abs(pixels.mean().item() - 0.2860) < 1e-3 and abs(pixels.std().item() - 0.3530) < 1e-3
