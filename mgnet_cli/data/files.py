"""Finding a data set's files on disk, and fetching them through torchvision when allowed."""

import logging
from collections.abc import Callable
from pathlib import Path

from mgnet_cli.errors import DataError

log = logging.getLogger(__name__)


def require_files(
    dataset: str,
    where: str,
    expected: str,
    how_to: str,
    *,
    locate: Callable[[], Path | None],
    download: bool,
    fetch: Callable[[], object],
) -> Path:
    """Return the folder that holds the data set's files, downloading them first if allowed.

    `locate` returns the folder, or None while files are missing; `fetch` downloads them and is
    called only when `download` is true. Otherwise a DataError of three lines: what is missing
    and where (and why no download helped), the files expected, and `how_to` (one line).
    """
    folder = locate()
    if folder is not None:
        return folder
    if not download:
        problem = "download is off"
    else:
        log.info("%s not found in %s; downloading it through torchvision", dataset, where)
        try:
            fetch()
        except Exception as error:  # no network, bad archive, full disk...: all end the same way
            problem = f"download failed: {_first_line(error)}"
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


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    detail = text[0][:160] if text else ""
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
