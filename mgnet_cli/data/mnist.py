"""MNIST and Fashion-MNIST, read from their IDX files (gzipped or not) in torchvision's layout."""

import gzip
import logging
from pathlib import Path

import numpy as np
import torch

from mgnet_cli.data.files import ROOT_KEYS, require_files, torchvision_download
from mgnet_cli.data.batches import ImageSet
from mgnet_cli.data.splits import ImageData
from mgnet_cli.errors import DataError

log = logging.getLogger(__name__)

# IDX magic numbers: two zero bytes, the element type (0x08 = uint8), then the number of dimensions.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array stored in one IDX file; DataError naming the file if it is not one."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except Exception as error:  # OSError, BadGzipFile, EOFError, zlib.error: all mean "bad file"
        raise DataError(f"{path}: cannot read it ({type(error).__name__}: {error})") from error
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        found = f"0x{int.from_bytes(raw[:4], 'big'):08x}" if len(raw) >= 4 else "a file too short"
        raise DataError(
            f"{path}: not an IDX file of the expected kind (magic 0x{magic:08x}, found {found})"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header cut short ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(f"{path}: IDX shape {shape} needs {expected} bytes, the file holds {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(folder: Path, name: str) -> Path | None:
    """The file `name` in folder, uncompressed or as name.gz."""
    return next((candidate for candidate in (folder / name, folder / f"{name}.gz") if candidate.is_file()), None)


def _image_set(folder: Path, split: str) -> ImageSet:
    images_path, labels_path = (_find(folder, name) for name in FILES[split])
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        found = f"{images.shape[1]}x{images.shape[2]}"
        raise DataError(f"{images_path}: images should be 28x28, found {found}")
    if len(labels) != len(images):
        raise DataError(
            f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path.name}"
        )
    if len(labels) and labels.max() >= 10:
        raise DataError(f"{labels_path}: labels should lie in 0..9, found {labels.max()}")
    images = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28); frombuffer is read-only
    return ImageSet(images, torch.from_numpy(labels.astype(np.int64)))


def _load(
    name: str,
    folder_name: str,
    url: str,
    root: Path,
    download: bool,
    plain_layout: bool,
) -> tuple[ImageSet, ImageSet]:
    """Train and test sets from root/folder_name/raw (or root itself, with plain_layout); a download
    goes through ``torchvision.datasets.<folder_name>``, which writes root/folder_name/raw."""
    raw = root / folder_name / "raw"
    candidates = (raw, root) if plain_layout else (raw,)
    expected = [file for files in FILES.values() for file in files]

    def locate() -> Path | None:
        complete = (folder for folder in candidates if all(_find(folder, file) for file in expected))
        return next(complete, None)

    where = f"{raw} or {root}" if plain_layout else str(raw)
    folder = require_files(
        name,
        where,
        ", ".join(f"{file}[.gz]" for file in expected),
        f"download the four files from {url} into {raw}, or point {ROOT_KEYS}"
        f" at a folder that holds {folder_name}/raw/",
        locate=locate,
        download=download,
        fetch=torchvision_download(root, folder_name),
        root=root,
    )
    train, test = _image_set(folder, "train"), _image_set(folder, "test")
    log.info("%s from %s: %d train and %d test images", name, folder, len(train), len(test))
    return train, test


def load_mnist(root: Path, download: bool) -> ImageData:
    """MNIST handwritten digits from root/MNIST/raw: 10 classes of 28x28 grey images."""
    root = Path(root)
    url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    train, test = _load("MNIST", "MNIST", url, root, download, False)
    return ImageData("mnist", train, test, MNIST_CLASSES, (0.1307,), (0.3081,))


def load_fashion_mnist(root: Path, download: bool) -> ImageData:
    """Fashion-MNIST: 10 classes of 28x28 grey images of clothes.

    Read from root/FashionMNIST/raw, or straight from root: the layout of Debian's
    dataset-fashion-mnist package, so dataset.root=/usr/share/datasets/fashion-mnist works.
    """
    root = Path(root)
    url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    train, test = _load("Fashion-MNIST", "FashionMNIST", url, root, download, True)
    return ImageData("fashion_mnist", train, test, FASHION_CLASSES, (0.2860,), (0.3530,))
