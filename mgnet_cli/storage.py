"""Files a run writes: atomically (temporary file, fsync, rename), one writer per run folder.

A crash or ``kill -9`` at any moment leaves either the previous complete file or the new one, and
the temporary file it leaves behind is removed by the next run that holds the folder's lock.
"""

import fcntl
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from mgnet_cli.errors import MgnetError

LOCK_NAME = ".mgnet.lock"
TEMPORARY = ".*.tmp"  # what write_atomic names its temporary files


class WriteError(MgnetError):
    """A file of the run could not be written (full disk, read-only or missing folder)."""


def write_atomic(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Calls ``write(file)`` on a temporary file beside ``path``, then renames it over ``path``;
    an OSError becomes a WriteError naming the file (the previous version stays complete)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o644)  # mkstemp makes files private; results are for sharing
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except Exception as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        cause = error if isinstance(error, OSError) else error.__context__  # torch.save wraps it
        if isinstance(cause, OSError):
            raise WriteError(f"cannot write {path}: {cause.strerror or cause}; the previous "
                             "version, if any, is intact") from error
        raise
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def link_atomic(source: Path, path: Path) -> None:
    """``path`` becomes the same file as ``source`` (a hard link, renamed into place: no copy, no
    half file); where the file system has no hard links, an atomic copy."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        write_atomic(path, lambda file: file.write(Path(source).read_bytes()))


def write_text_atomic(path: Path, text: str) -> None:
    """Writes ``text`` (UTF-8), atomically."""
    write_atomic(Path(path), lambda file: file.write(text.encode()))


def write_json_atomic(path: Path, data: Any) -> None:
    """Writes ``data`` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


class RunLock:
    """An exclusive lock on a run folder for as long as a process writes it (``flock``, released
    by the kernel when the process ends, however it ends). Taking it removes the temporary files
    an earlier, killed writer left."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._file: IO[str] | None = None

    def __enter__(self) -> "RunLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        file = open(self.folder / LOCK_NAME, "a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            owner = file.read().strip() or "another process"
            file.close()
            raise MgnetError(f"{self.folder} is being written by {owner}: wait for it to finish, "
                             "or write this run elsewhere (hydra.run.dir=...)") from None
        file.truncate(0)
        file.write(f"mgnet (pid {os.getpid()})\n")
        file.flush()
        self._file = file
        for orphan in self.folder.glob(TEMPORARY):
            orphan.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()  # releases the lock
            self._file = None


def check_unlocked(folder: Path) -> None:
    """Raises MgnetError when a process holds ``folder``'s lock; reads, writes nothing."""
    path = Path(folder) / LOCK_NAME
    if not path.is_file():
        return
    with open(path) as file:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = file.read().strip() or "another process"
            raise MgnetError(f"{folder} is being written by {owner}: wait for it to finish, "
                             "or write this run elsewhere (hydra.run.dir=...)") from None
