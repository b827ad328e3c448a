"""CIFAR readers: standard-format files written here, the real shared subset, and every failure path."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from mgnet_cli.data.cifar import CIFAR10_MEAN, CIFAR100_STD, load_cifar10, load_cifar100
from mgnet_cli.errors import ConfigError, DataError

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]  # fmt: skip
CIFAR10_FILES = [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch", "batches.meta"]


def write_pickle(path: Path, content: dict, str_keys: bool = False) -> None:
    """A pickle like the official ones (bytes keys, protocol 2), or a Python 3 one (str keys)."""
    if not str_keys:
        content = {key.encode(): value for key, value in content.items()}
    path.write_bytes(pickle.dumps(content, protocol=2))


def make_batch(rng: np.random.Generator, count: int, label_keys: dict[str, int], tag: str) -> dict:
    """A batch dict with random pixels and labels cycling through every class."""
    batch = {
        "batch_label": tag.encode(),
        "data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        "filenames": [f"{tag}_{index:04d}.png".encode() for index in range(count)],
    }
    for key, num_classes in label_keys.items():
        batch[key] = [int(label) for label in rng.permutation(np.arange(count) % num_classes)]
    return batch


def write_cifar10(
    root: Path, per_batch: int = 6, num_test: int = 4, tag: str = "batch", str_keys: bool = False
) -> dict[str, dict]:
    """Standard CIFAR-10 layout under root; returns the batch dicts by file name."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {f"data_batch_{index}": make_batch(rng, per_batch, {"labels": 10}, f"{tag}{index}")
               for index in range(1, 6)}  # fmt: skip
    batches["test_batch"] = make_batch(rng, num_test, {"labels": 10}, f"{tag}_test")
    for name, content in batches.items():
        write_pickle(folder / name, content, str_keys)
    names = [name.encode() for name in CIFAR10_NAMES]
    meta = {"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}
    write_pickle(folder / "batches.meta", meta, str_keys)
    return batches


def write_cifar100(root: Path, num_train: int = 120, num_test: int = 40) -> dict:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    splits = {name: make_batch(rng, count, {"fine_labels": 100, "coarse_labels": 20}, name)
              for name, count in (("train", num_train), ("test", num_test))}  # fmt: skip
    for name, content in splits.items():
        write_pickle(folder / name, content)
    meta = {"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            "coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}  # fmt: skip
    write_pickle(folder / "meta", meta)
    return splits


@pytest.mark.parametrize(
    "tag, str_keys", [("training batch ", False), ("mini_subset-", False), ("py3 ", True)]
)
def test_cifar10_reads_planes_labels_and_names(tmp_path: Path, tag: str, str_keys: bool) -> None:
    batches = write_cifar10(tmp_path, tag=tag, str_keys=str_keys)
    data = load_cifar10(tmp_path, download=False)
    assert data.train.images.shape == (30, 3, 32, 32) and data.test.images.shape == (4, 3, 32, 32)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    rows = np.concatenate([batches[f"data_batch_{index}"]["data"] for index in range(1, 6)])
    # pixel (c, y, x) of image i is column c*1024 + y*32 + x: red, green, blue planes, row-major
    for image, channel, y, x in [(0, 0, 0, 0), (7, 1, 5, 31), (29, 2, 31, 3)]:
        assert data.train.images[image, channel, y, x] == rows[image, channel * 1024 + y * 32 + x]
    np.testing.assert_array_equal(data.train.images.numpy().reshape(30, -1), rows)
    np.testing.assert_array_equal(data.test.images.numpy().reshape(4, -1), batches["test_batch"]["data"])
    labels = sum((batches[f"data_batch_{index}"]["labels"] for index in range(1, 6)), [])
    assert data.train.labels.tolist() == labels
    assert data.classes == tuple(CIFAR10_NAMES) and data.num_classes == 10
    assert data.mean == CIFAR10_MEAN and data.std == (0.2470, 0.2435, 0.2616)
    assert (data.name, data.in_channels, data.image_size, data.val) == ("cifar10", 3, 32, None)


@pytest.mark.parametrize("labels, num_classes", [("fine", 100), ("coarse", 20)])
def test_cifar100_fine_and_coarse_labels(tmp_path: Path, labels: str, num_classes: int) -> None:
    splits = write_cifar100(tmp_path)
    data = load_cifar100(tmp_path, download=False, labels=labels)
    assert data.train.images.shape == (120, 3, 32, 32) and data.test.images.shape == (40, 3, 32, 32)
    assert data.train.labels.tolist() == splits["train"][f"{labels}_labels"]
    assert data.test.labels.tolist() == splits["test"][f"{labels}_labels"]
    assert data.num_classes == num_classes and data.classes[-1] == f"{labels}{num_classes - 1}"
    assert data.mean == (0.5071, 0.4865, 0.4409) and data.std == CIFAR100_STD
    np.testing.assert_array_equal(data.test.images.numpy().reshape(40, -1), splits["test"]["data"])


def test_cifar100_rejects_unknown_label_kind(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    with pytest.raises(ConfigError, match=r"dataset\.labels='medium'.*'fine'.*'coarse'"):
        load_cifar100(tmp_path, download=False, labels="medium")


def test_truncated_file_names_the_file(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="data_batch_3") as caught:
        load_cifar10(tmp_path, download=False)
    assert str(path) in str(caught.value)


def test_garbage_and_foreign_objects_are_rejected_without_running_them(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "test_batch").write_bytes(b"this is not a pickle at all")
    with pytest.raises(DataError, match="test_batch"):
        load_cifar10(tmp_path, download=False)
    # a pickle that would build an arbitrary object (here a Path) is refused by the reader
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": tmp_path / "evil"}, protocol=2))
    with pytest.raises(DataError, match=r"test_batch.*unexpected object pathlib"):
        load_cifar10(tmp_path, download=False)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"data": np.zeros((6, 3000), np.uint8)}, r"N x 3072 pixels, found uint8 array of shape \(6, 3000\)"),
        ({"data": [[0] * 3072] * 6}, "should be a uint8 array, found list"),
        ({"data": np.zeros((6, 3072), np.float32)}, "found float32"),
        ({"labels": [0, 1, 2]}, "'labels' should be 6 integers"),
        ({"labels": [0, 1, 2, 3, 4, 10]}, r"labels should lie in 0\.\.9, found 0\.\.10"),
        ({"labels": [0, 1, 2, 3, 4, -1]}, r"labels should lie in 0\.\.9"),
        ({"labels": None, "fine_labels": [0] * 6}, "no 'labels' entry"),
    ],
)
def test_malformed_content_is_rejected(tmp_path: Path, change: dict, message: str) -> None:
    batches = write_cifar10(tmp_path)
    content = {key: value for key, value in {**batches["data_batch_2"], **change}.items()
               if value is not None}  # fmt: skip
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    write_pickle(path, content)
    with pytest.raises(DataError, match=message) as caught:
        load_cifar10(tmp_path, download=False)
    assert str(caught.value).startswith(str(path))


def test_missing_folder_without_download_explains_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_cifar10(tmp_path / "nowhere", download=False)
    message = str(caught.value)
    assert len(message.splitlines()) <= 3
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    assert all(name in message for name in CIFAR10_FILES)
    assert "cifar-10-python.tar.gz" in message and "download is off" in message
    assert "MGNET_DATA_DIR / dataset.root at a folder that holds cifar-10-batches-py/" in message


def test_one_missing_file_counts_as_missing(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "batches.meta").unlink()
    with pytest.raises(DataError, match="CIFAR-10 not found in .*cifar-10-batches-py"):
        load_cifar10(tmp_path, download=False)


def test_failed_download_becomes_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def offline(root: str, train: bool = True, download: bool = False, **_: object) -> None:
        calls.append((root, train, download))
        raise OSError("<urlopen error [Errno -2] Name or service not known>\nsecond line")

    monkeypatch.setattr("torchvision.datasets.CIFAR100", offline)
    with pytest.raises(DataError) as caught:
        load_cifar100(tmp_path, download=True, labels="fine")
    message = str(caught.value)
    assert calls == [(str(tmp_path), False, True)]
    assert "download failed: OSError: <urlopen error" in message and "second line" not in message
    assert len(message.splitlines()) <= 3 and str(tmp_path / "cifar-100-python") in message
    assert "cifar-100-python.tar.gz" in message and "train, test, meta" in message


def test_successful_download_is_read_with_our_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_download(root: str, train: bool = True, download: bool = False, **_: object) -> None:
        assert download
        write_cifar10(Path(root), per_batch=3, num_test=2)

    monkeypatch.setattr("torchvision.datasets.CIFAR10", fake_download)
    data = load_cifar10(tmp_path, download=True)
    assert len(data.train) == 15 and len(data.test) == 2


def test_real_cifar10_subset(shared_data: Path) -> None:
    """The shared subset ($MGNET_SHARED_DATA/cifar10-mini; the conftest fixture skips without it)."""
    data = load_cifar10(shared_data, download=False)
    assert data.train.images.shape == (5000, 3, 32, 32) and data.test.images.shape == (2000, 3, 32, 32)
    assert data.classes[0] == "airplane" and data.num_classes == 10
    assert sorted(data.train.labels.unique().tolist()) == list(range(10))
    assert data.train.labels.bincount().min() > 400  # about 500 per class
    # the subset's pixel statistics are close to the full data set's normalisation constants
    measured = (data.train.images.float() / 255).mean(dim=(0, 2, 3))
    assert np.allclose(measured.numpy(), CIFAR10_MEAN, atol=0.02)


def test_a_failed_download_leaves_no_empty_folder(tmp_path):
    """torchvision makes its folders before it fails (here: no network); the empty ones go."""
    from mgnet_cli.data.files import require_files

    root = tmp_path / "data"

    def fetch_without_network():
        (root / "cifar-10-batches-py").mkdir(parents=True)
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    with pytest.raises(DataError, match="download failed: OSError"):
        require_files("CIFAR-10", str(root / "cifar-10-batches-py"), "data_batch_1", "download it",
                      locate=lambda: None, download=True, fetch=fetch_without_network, root=root)
    assert not root.exists() and tmp_path.is_dir()
