"""CIFAR-10 and CIFAR-100, read from the python-pickle batches of the official tarballs.

Files are validated by shape and content, not by checksum, so shortened batches (such as the
shared CIFAR-10 subset) load as long as they are well formed.
"""

import logging
import pickle
from pathlib import Path

import numpy as np
import torch

from mgnet_cli.data.files import ROOT_KEYS, require_files, torchvision_download
from mgnet_cli.data.batches import ImageSet
from mgnet_cli.data.splits import ImageData
from mgnet_cli.errors import ConfigError, DataError
from mgnet_cli.schema.data import CIFAR100_CLASSES

log = logging.getLogger(__name__)

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{index}" for index in range(1, 6))
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

PIXELS = 3 * 32 * 32  # one row of `data`: the red, green and blue 32x32 planes in turn

# The only globals a CIFAR pickle needs: numpy arrays and dtypes (old and new numpy module names).
_ALLOWED_GLOBALS = {
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that builds plain containers and numpy arrays only, so a data file cannot run code."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(module, name)


def read_pickle(path: Path) -> dict[str, object]:
    """One CIFAR pickle as a dict with str keys; DataError naming the file if it cannot be read."""
    try:
        with path.open("rb") as file:
            content = _ArrayUnpickler(file, encoding="latin1").load()
    except Exception as error:  # truncated or corrupt pickles fail in many ways; all mean "bad file"
        problem = f"{type(error).__name__}: {error}"
        raise DataError(f"{path}: not a readable CIFAR pickle ({problem})") from error
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(content).__name__}")
    return {_text(key): value for key, value in content.items()}


def read_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one batch file, checked."""
    content = read_pickle(path)
    data = content.get("data")
    if not isinstance(data, np.ndarray):
        raise DataError(f"{path}: 'data' should be a uint8 array, found {type(data).__name__}")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        found = f"{data.dtype} array of shape {data.shape}"
        raise DataError(f"{path}: 'data' should be a uint8 array of N x {PIXELS} pixels, found {found}")
    if label_key not in content:
        raise DataError(f"{path}: no '{label_key}' entry (found {', '.join(sorted(content))})")
    labels = np.asarray(content[label_key])
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(data):
        raise DataError(
            f"{path}: '{label_key}' should be {len(data)} integers, one per image, found {labels.shape}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        found = f"{labels.min()}..{labels.max()}"
        raise DataError(f"{path}: labels should lie in 0..{num_classes - 1}, found {found}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_class_names(path: Path, key: str, num_classes: int) -> tuple[str, ...]:
    """Class names from a CIFAR meta file."""
    names = read_pickle(path).get(key)
    if not isinstance(names, list) or len(names) != num_classes:
        raise DataError(f"{path}: '{key}' should list {num_classes} class names")
    return tuple(_text(name) for name in names)


def _text(value: object) -> str:
    """A str from a Python-2 pickle's bytes or str."""
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def _image_set(paths: list[Path], label_key: str, num_classes: int) -> ImageSet:
    batches = [read_batch(path, label_key, num_classes) for path in paths]
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    return ImageSet(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels))


def _require_folder(
    name: str,
    folder: Path,
    files: tuple[str, ...],
    url: str,
    download: bool,
    dataset: str,
) -> Path:
    """``folder`` once it holds ``files``, downloaded through ``torchvision.datasets.<dataset>`` if allowed."""

    def locate() -> Path | None:
        return folder if all((folder / file).is_file() for file in files) else None

    return require_files(
        name,
        str(folder),
        ", ".join(files),
        f"download {url} and extract it into {folder.parent}, or point {ROOT_KEYS}"
        f" at a folder that holds {folder.name}/",
        locate=locate,
        download=download,
        fetch=torchvision_download(folder.parent, dataset),
        root=folder.parent,
    )


def load_cifar10(root: Path, download: bool) -> ImageData:
    """CIFAR-10 from root/cifar-10-batches-py: 10 classes of 32x32 colour images."""
    root = Path(root)
    files = (*CIFAR10_TRAIN, "test_batch", "batches.meta")
    folder = _require_folder("CIFAR-10", root / CIFAR10_FOLDER, files, CIFAR10_URL, download, "CIFAR10")
    classes = read_class_names(folder / "batches.meta", "label_names", 10)
    train = _image_set([folder / name for name in CIFAR10_TRAIN], "labels", 10)
    test = _image_set([folder / "test_batch"], "labels", 10)
    log.info("CIFAR-10 from %s: %d train and %d test images", folder, len(train), len(test))
    return ImageData("cifar10", train, test, classes, CIFAR10_MEAN, CIFAR10_STD)


def load_cifar100(root: Path, download: bool, labels: str) -> ImageData:
    """CIFAR-100 from root/cifar-100-python, with its 100 fine or 20 coarse classes."""
    if labels not in CIFAR100_CLASSES:
        raise ConfigError(
            f"dataset.labels={labels!r} is not allowed: use "
            + " or ".join(f"'{kind}' ({count} classes)" for kind, count in CIFAR100_CLASSES.items())
        )
    root = Path(root)
    files = ("train", "test", "meta")
    folder = _require_folder("CIFAR-100", root / CIFAR100_FOLDER, files, CIFAR100_URL, download, "CIFAR100")
    num_classes = CIFAR100_CLASSES[labels]
    classes = read_class_names(folder / "meta", f"{labels}_label_names", num_classes)
    train = _image_set([folder / "train"], f"{labels}_labels", num_classes)
    test = _image_set([folder / "test"], f"{labels}_labels", num_classes)
    log.info(
        "CIFAR-100 (%s labels) from %s: %d train and %d test images",
        labels, folder, len(train), len(test),
    )  # fmt: skip
    name = "cifar100" if labels == "fine" else "cifar100-coarse"
    return ImageData(name, train, test, classes, CIFAR100_MEAN, CIFAR100_STD)
