"""Finding a data set's files on disk, and fetching them through torchvision when allowed."""

import logging
from collections.abc import Callable
from pathlib import Path

from mgnet_cli.errors import DataError

log = logging.getLogger(__name__)

ROOT_KEYS = "MGNET_DATA_DIR / dataset.root"  # what a new training run reads its data folder from


def naming(key: str, error: DataError) -> DataError:
    """``error`` with its fix naming ``key``, the data folder's key of a command that does not read
    ROOT_KEYS (a resume reads the folder its run recorded, ``mgnet eval`` takes ``dataset_root``)."""
    return DataError(str(error).replace(ROOT_KEYS, key).replace("dataset.root", key))


def require_files(
    dataset: str,
    where: str,
    expected: str,
    how_to: str,
    *,
    locate: Callable[[], Path | None],
    download: bool,
    fetch: Callable[[], object],
    root: Path,
) -> Path:
    """Return the folder that holds the data set's files, downloading them first if allowed.

    `locate` returns the folder, or None while files are missing; `fetch` downloads them and is
    called only when `download` is true; a failed one leaves no empty folder it made under or
    above `root`. Otherwise a DataError of three lines: what is missing
    and where (and why no download helped), the files expected, and `how_to` (one line).
    """
    folder = locate()
    if folder is not None:
        return folder
    if not download:
        problem = "download is off"
    else:
        log.info("%s not found in %s; downloading it through torchvision", dataset, where)
        before = folders_at(Path(root))
        try:
            fetch()
        except Exception as error:  # no network, bad archive, full disk...: all end the same way
            problem = f"download failed: {_first_line(error)}"
            remove_new_empty_folders(Path(root), before)
        else:
            folder = locate()
            if folder is not None:
                return folder
            problem = "the download did not produce them"
    raise DataError(
        f"{dataset} not found in {where} ({problem})\n"
        f"  expected files: {expected}\n"
        f"  to fix: {how_to}"
    )


def torchvision_download(root: Path, dataset: str) -> Callable[[], None]:
    """What downloads ``torchvision.datasets.<dataset>`` into ``root`` (its train and test files)."""

    def fetch() -> None:
        from torchvision import datasets  # imported here: slow, and only needed to download

        getattr(datasets, dataset)(str(root), train=False, download=True)

    return fetch


def folders_at(root: Path) -> set[Path]:
    """``root``, the folders above it and the folders below it that exist now."""
    existing = {folder for folder in (root, *root.parents) if folder.is_dir()}
    return existing | ({path for path in root.rglob("*") if path.is_dir()} if root.is_dir() else set())


def remove_new_empty_folders(root: Path, before: set[Path]) -> None:
    """A failed download leaves no empty folder it made (``data/``, ``data/MNIST/raw``, ...)."""
    for folder in sorted(folders_at(root) - before, key=lambda path: len(path.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    detail = text[0][:160] if text else ""
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
