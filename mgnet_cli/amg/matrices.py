"""A symmetric positive definite matrix from a file, and back: Matrix Market (``.mtx``, SciPy's
reader) or SciPy's sparse ``.npz`` (read without pickle). Every fault of the file is one line (a
DataError naming the file): unreadable, too large for memory, not square, not symmetric, a diagonal
entry that is not positive, an entry that is not finite. Writes are atomic (storage.write_atomic)."""

import io
import os
from pathlib import Path
from typing import IO

import numpy as np
import scipy.io
import scipy.sparse as sparse
import torch

from mgnet_cli.amg.settings import MATRIX_SUFFIXES as SUFFIXES
from mgnet_cli.amg.settings import VECTOR_SUFFIXES
from mgnet_cli.errors import DataError
from mgnet_cli.memory import free_memory
from mgnet_cli.storage import write_atomic
from mgnet_cli.untrusted import open_regular

SYMMETRY_TOLERANCE = 1e-10  # max |A - A^T| relative to max |A|
BYTES_PER_ENTRY = 40  # COO triples read, then CSR built and transposed for the symmetry check
HEADER_BYTES = 2**20  # a Matrix Market header (comments included) longer than this is refused


def _fault(path: Path, problem: str) -> DataError:
    return DataError(f"matrix file {path}: {problem}")


def _check_room(path: Path, rows: int, cols: int, entries: int) -> None:
    """Refuses a header whose sizes could not be held (before anything is allocated)."""
    if rows < 0 or cols < 0 or entries < 0:
        raise _fault(path, f"negative size in the header ({rows} x {cols}, {entries} entries)")
    if rows != cols:
        raise _fault(path, f"not square ({rows} x {cols}); AMG needs a square SPD matrix")
    if max(rows, entries) >= 2**31:
        raise _fault(path, f"{rows} rows and {entries} entries are more than 32-bit indices hold")
    needed = BYTES_PER_ENTRY * entries + 16 * rows
    bound = free_memory()
    if bound is not None and needed > bound.free:
        raise _fault(path, f"{rows} rows and {entries} entries need about {needed / 2**30:.1f} GiB, "
                           f"more than the {bound.free / 2**30:.1f} GiB of {bound.source}")


def _header(file: IO[bytes], path: Path) -> io.BytesIO:
    """The Matrix Market banner, comments and size line (at most HEADER_BYTES), for ``mminfo``
    (SciPy 1.17's ``mminfo`` aborts the process on a file object; a header in memory is safe)."""
    header = io.BytesIO()
    for line in iter(lambda: file.readline(HEADER_BYTES), b""):
        header.write(line)
        if header.tell() >= HEADER_BYTES:
            raise _fault(path, f"a header (banner, comments and size line) longer than {HEADER_BYTES // 2**20} MiB")
        if header.tell() > len(line) and line.strip() and not line.startswith(b"%"):
            break  # the size line
    header.seek(0)
    return header


def _read_mtx(file: IO[bytes], path: Path) -> sparse.csr_matrix:
    try:
        rows, cols, entries, layout, field, symmetry = scipy.io.mminfo(_header(file, path))
    except Exception as error:  # SciPy raises ValueError, OSError, IndexError... on a bad header
        raise _fault(path, f"not a Matrix Market file ({_first_line(error)})") from None
    if field not in ("real", "integer", "pattern"):
        raise _fault(path, f"field {field!r}: only real, integer or pattern matrices are read")
    if symmetry in ("symmetric", "skew-symmetric", "hermitian"):
        entries *= 2
    _check_room(path, int(rows), int(cols), int(entries))
    try:
        file.seek(0)
        matrix = scipy.io.mmread(file)
    except Exception as error:
        raise _fault(path, f"unreadable ({_first_line(error)})") from None
    return sparse.csr_matrix(matrix, dtype=np.float64)


def _read_npz(file: IO[bytes], path: Path) -> sparse.csr_matrix:
    try:
        with np.load(file, allow_pickle=False) as archive:
            header = {key: archive[key] for key in ("format", "shape") if key in archive.files}
            if "format" not in header or "shape" not in header or header["shape"].shape != (2,):
                raise _fault(path, "not a SciPy sparse .npz (scipy.sparse.save_npz writes format and shape)")
            rows, cols = (int(size) for size in header["shape"])
            stored = archive["data"].shape[0] if "data" in archive.files else 0
            entries = 2 * stored if "row" in archive.files else stored
    except DataError:
        raise
    except Exception as error:  # not a zip, a pickled member, a bad member...
        raise _fault(path, f"unreadable as .npz ({_first_line(error)})") from None
    _check_room(path, rows, cols, entries)
    try:
        file.seek(0)
        matrix = sparse.load_npz(file)
    except Exception as error:
        raise _fault(path, f"unreadable as a SciPy sparse matrix ({_first_line(error)})") from None
    if matrix.dtype.kind not in "biuf":
        raise _fault(path, f"entries of type {matrix.dtype}: only real matrices are read")
    return sparse.csr_matrix(matrix, dtype=np.float64)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def check_spd(matrix: sparse.csr_matrix, path: Path | str = "matrix") -> sparse.csr_matrix:
    """``matrix`` with its entries summed and sorted, if it is square, finite, symmetric (to
    SYMMETRY_TOLERANCE relative to its largest entry) and positive on the diagonal; else one line."""
    path = Path(path)
    rows, cols = matrix.shape
    if rows != cols:
        raise _fault(path, f"not square ({rows} x {cols}); AMG needs a square SPD matrix")
    if rows == 0:
        raise _fault(path, "the matrix is empty (0 x 0)")
    matrix = sparse.csr_matrix(matrix, dtype=np.float64)
    matrix.sum_duplicates()
    matrix.sort_indices()
    if not np.all(np.isfinite(matrix.data)):
        raise _fault(path, "an entry is not finite (nan or inf)")
    scale = np.abs(matrix.data).max(initial=0.0)
    asymmetry = abs(matrix - matrix.T).max() if matrix.nnz else 0.0
    if asymmetry > SYMMETRY_TOLERANCE * scale:
        raise _fault(path, f"not symmetric (max |A - A^T| = {asymmetry:.3g}, {asymmetry / scale:.3g} of "
                           f"max |A|; the tolerance is {SYMMETRY_TOLERANCE:g})")
    diagonal = matrix.diagonal()
    bad = np.flatnonzero(diagonal <= 0)
    if bad.size:
        raise _fault(path, f"diagonal entry {bad[0]} is {diagonal[bad[0]]:.3g} ({bad.size} not positive); "
                           "an SPD matrix has a positive diagonal")
    return matrix


def read_matrix(path: Path | str) -> sparse.csr_matrix:
    """The SPD matrix in ``path`` (.mtx or .npz) as float64 CSR, checked by ``check_spd``."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise _fault(path, f"unknown suffix {path.suffix!r}; give a .mtx (Matrix Market) or .npz (SciPy sparse)")
    reader = _read_mtx if path.suffix.lower() == ".mtx" else _read_npz
    with open_regular(path, "matrix file") as file:  # a FIFO or a folder is refused, not waited on
        return check_spd(reader(file, path), path)


def read_vector(path: Path | str, rows: int) -> torch.Tensor:
    """A right-hand side of ``rows`` finite numbers from ``path``: ``.npy`` (no pickle) of shape
    (rows,) or (rows, 1), or Matrix Market ``.mtx`` (an array, or coordinates of one column); as a
    float64 tensor. Every fault is one line naming the file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VECTOR_SUFFIXES:
        raise _fault(path, f"unknown suffix {path.suffix!r}; give a .npy or a Matrix Market .mtx vector")
    with open_regular(path, "right-hand side file") as file:
        if os.fstat(file.fileno()).st_size > 64 * rows + 2**16:  # 8 bytes an entry in .npy, text longer
            raise _fault(path, f"larger than a vector of {rows:,} numbers could be")
        try:
            if suffix == ".npy":
                values = np.load(file, allow_pickle=False)
            else:
                values = scipy.io.mmread(file)
                values = values.toarray() if sparse.issparse(values) else values
        except Exception as error:  # a bad header, a pickled array, a truncated body...
            raise _fault(path, f"unreadable ({_first_line(error)})") from None
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise _fault(path, f"entries of type {values.dtype}: give real numbers")
    if values.shape not in ((rows,), (rows, 1)):
        raise _fault(path, f"shape {values.shape}, but the matrix has {rows:,} rows: give ({rows},) or ({rows}, 1)")
    values = values.astype(np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise _fault(path, "an entry is not finite (nan or inf)")
    return torch.from_numpy(values)


def stencil_matrix(stencil: torch.Tensor) -> sparse.csr_matrix:
    """A structured problem's (3, 3, n, n) stencil (zero boundary) as the n^2 x n^2 CSR matrix the
    stencil applies, rows ordered like ``u.flatten()`` (``problem.save_matrix``; scripts/bench_amg.py)."""
    n = stencil.shape[-1]
    index = np.arange(n * n).reshape(n, n)
    values, rows, cols = [], [], []
    taps = stencil.detach().cpu().numpy()
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            i0, i1, j0, j1 = max(0, -di), n - max(0, di), max(0, -dj), n - max(0, dj)
            block = taps[1 + di, 1 + dj, i0:i1, j0:j1]
            if np.any(block):
                values.append(block.ravel())
                rows.append(index[i0:i1, j0:j1].ravel())
                cols.append(index[i0 + di:i1 + di, j0 + dj:j1 + dj].ravel())
    return sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n * n, n * n))


def write_matrix(path: Path | str, matrix: sparse.spmatrix) -> None:
    """Writes ``matrix`` to ``path`` (.mtx: Matrix Market, general real coordinates; .npz: SciPy
    sparse CSR, compressed), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise _fault(path, f"unknown suffix {path.suffix!r}; give a .mtx or .npz")
    matrix = sparse.csr_matrix(matrix, dtype=np.float64)
    if suffix == ".mtx":
        write_atomic(path, lambda file: scipy.io.mmwrite(file, matrix.tocoo(), precision=17))
    else:
        buffer = io.BytesIO()
        sparse.save_npz(buffer, matrix, compressed=True)
        write_atomic(path, lambda file: file.write(buffer.getvalue()))
