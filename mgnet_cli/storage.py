"""Files a run writes: atomically (temporary file, fsync, rename), one writer per run folder, and
never through a symbolic link inside the run folder.

A crash or ``kill -9`` at any moment leaves either the previous complete file or the new one, and
the temporary file it leaves behind is removed by the next run that holds the folder's lock. A run
folder received from someone else may hold links (``train.log``, ``.hydra`` → a file elsewhere):
every file and folder below the folder a write starts from is opened with ``O_NOFOLLOW`` (each
folder by its descriptor, so nothing can be swapped in between), and a link is refused in one line.
"""

import errno
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from mgnet_cli.errors import MgnetError

LOCK_NAME = ".mgnet.lock"
TEMPORARY = ".*.tmp"  # what write_atomic names its temporary files
NO_FOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
FOLDER = os.O_RDONLY | os.O_DIRECTORY | NO_FOLLOW


class WriteError(MgnetError, OSError):
    """A file of the run could not be written (full disk, read-only or missing folder, a link).
    An OSError too, so that code which survives a failed write (``except OSError``) survives it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "cannot write"


def refusal(path: Path, error: OSError, root: Path) -> WriteError:
    """The one line for an OSError met writing ``path``: a link below ``root`` is named as one."""
    if isinstance(error, WriteError):
        return error
    inside = [p for p in (path, *path.parents) if root in p.parents]
    link = next((p for p in inside if p.is_symlink()), None) if error.errno in (errno.ELOOP, errno.ENOTDIR) else None
    if link is not None:
        return WriteError(f"cannot write {path}: {link} is a symbolic link (to {os.readlink(link)}); mgnet "
                          "writes a run folder's own files only, never where a link points: remove the link")
    return WriteError(f"cannot write {path}: {error.strerror or error}")


def open_folder(root: Path, parts: tuple[str, ...], create: bool = True) -> int:
    """A descriptor of ``root/parts``: ``root`` (the folder the user named) as it is, each folder
    below it opened without following a link (and made, with ``create``)."""
    if create:
        root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            inner = os.open(part, FOLDER, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def below(path: Path, root: Path | None) -> tuple[Path, tuple[str, ...]]:
    """``(root, the folders from root to path's folder)``; ``root`` defaults to path's folder."""
    root = path.parent if root is None else Path(root)
    return root, path.parent.relative_to(root).parts


def open_own(path: Path, flags: int, root: Path | None = None) -> int:
    """A descriptor of the regular file ``path``, no link followed below ``root``: a link, a FIFO
    or a device in a run folder is refused (WriteError) instead of written through."""
    path = Path(path)
    root, parts = below(path, root)
    try:
        folder = open_folder(root, parts, create=bool(flags & os.O_CREAT))
        try:
            fd = os.open(path.name, flags | NO_FOLLOW | os.O_NONBLOCK, 0o644, dir_fd=folder)
        finally:
            os.close(folder)
    except OSError as error:
        raise refusal(path, error, root) from error
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise WriteError(f"cannot write {path}: not a regular file; a run folder's files are its own")
    os.set_blocking(fd, True)
    return fd


def write_atomic(path: Path, write: Callable[[IO[bytes]], Any], root: Path | None = None) -> None:
    """Calls ``write(file)`` on a temporary file beside ``path``, then renames it over ``path``;
    no link below ``root`` (default: path's folder) is followed; an OSError becomes a WriteError
    naming the file (the previous version stays complete)."""
    path = Path(path)
    root, parts = below(path, root)
    folder, tmp = None, None
    try:
        folder = open_folder(root, parts)
        tmp = f".{path.name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NO_FOLLOW, 0o644, dir_fd=folder)
        os.fchmod(fd, 0o644)  # whatever the umask: results are for sharing
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)  # replaces a link, never follows it
        tmp = None
    except Exception as error:
        cause = error if isinstance(error, OSError) else error.__context__  # torch.save wraps it
        if isinstance(cause, OSError):
            problem = refusal(path, cause, root)
            raise WriteError(f"{problem}; the previous version, if any, is intact") from error
        raise
    finally:
        if folder is not None:
            if tmp is not None:
                try:
                    os.unlink(tmp, dir_fd=folder)
                except FileNotFoundError:
                    pass
            os.close(folder)


def link_atomic(source: Path, path: Path) -> None:
    """``path`` becomes the same file as ``source`` (a hard link, renamed into place: no copy, no
    half file); where the file system has no hard links, an atomic copy."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp, follow_symlinks=False)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        write_atomic(path, lambda file: file.write(Path(source).read_bytes()))


def write_text_atomic(path: Path, text: str, root: Path | None = None) -> None:
    """Writes ``text`` (UTF-8), atomically."""
    write_atomic(Path(path), lambda file: file.write(text.encode()), root)


def write_json_atomic(path: Path, data: Any, root: Path | None = None) -> None:
    """Writes ``data`` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n", root)


def busy(folder: Path, owner: str) -> MgnetError:
    return MgnetError(f"{folder} is being written by {owner}: wait for it to finish, "
                      "or write this run elsewhere (hydra.run.dir=...)")


class RunLock:
    """An exclusive lock on a run folder for as long as a process writes it (``flock``, released
    by the kernel when the process ends, however it ends). Taking it removes the temporary files
    an earlier, killed writer left."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._file: IO[str] | None = None

    def __enter__(self) -> "RunLock":
        file = os.fdopen(open_own(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, self.folder), "r+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = file.read().strip() or "another process"
            file.close()
            raise busy(self.folder, owner) from None
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
    """Raises MgnetError when a process holds ``folder``'s lock (or the lock is a link); reads,
    writes nothing."""
    path = Path(folder) / LOCK_NAME
    if not os.path.lexists(path):
        return
    with os.fdopen(open_own(path, os.O_RDONLY), "r") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy(folder, file.read().strip() or "another process") from None
