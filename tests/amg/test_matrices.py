"""Matrix files: .mtx and .npz round-trip exactly; every bad file is one line naming the file."""

import os

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sparse

from mgnet_cli.amg.matrices import read_matrix, read_vector, write_matrix
from mgnet_cli.errors import MgnetError
from mgnet_cli.memory import free_memory


def poisson_1d(n: int) -> sparse.csr_matrix:
    return sparse.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr")


@pytest.mark.parametrize("suffix", [".mtx", ".npz"])
def test_a_written_matrix_reads_back_bit_for_bit(tmp_path, suffix):
    rng = np.random.default_rng(0)
    B = sparse.random(30, 30, density=0.1, random_state=1, format="csr")
    A = (B @ B.T + sparse.identity(30) * (1 + rng.random())).tocsr()  # SPD, irrational-looking entries
    write_matrix(tmp_path / f"A{suffix}", A)
    read = read_matrix(tmp_path / f"A{suffix}")
    assert read.shape == (30, 30) and read.dtype == np.float64
    assert abs(read - A).max() == 0.0
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_a_general_matrix_market_file_from_elsewhere_is_read(tmp_path):
    path = tmp_path / "A.mtx"
    path.write_text("%%MatrixMarket matrix coordinate real general\n% a comment\n2 2 4\n"
                    "1 1 4.0\n1 2 -1.0\n2 1 -1.0\n2 2 3.0\n")
    assert read_matrix(path).toarray().tolist() == [[4.0, -1.0], [-1.0, 3.0]]


def one_line(path, match: str) -> str:
    with pytest.raises(MgnetError) as caught:
        read_matrix(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and match in message, message
    return message


def test_not_square(tmp_path):
    path = tmp_path / "A.npz"
    sparse.save_npz(path, sparse.csr_matrix(np.ones((3, 4))))
    one_line(path, "not square (3 x 4)")
    mtx = tmp_path / "B.mtx"
    scipy.io.mmwrite(mtx, sparse.coo_matrix(np.ones((2, 5))))
    one_line(mtx, "not square (2 x 5)")


def test_not_symmetric(tmp_path):
    A = poisson_1d(6).tolil()
    A[0, 1] = -1.5
    path = tmp_path / "A.npz"
    sparse.save_npz(path, A.tocsr())
    one_line(path, "not symmetric (max |A - A^T| = 0.5")


def test_symmetric_up_to_round_off_is_accepted(tmp_path):
    A = poisson_1d(6).tolil()
    A[0, 1] = -1.0 + 1e-14
    write_matrix(tmp_path / "A.npz", A.tocsr())
    assert read_matrix(tmp_path / "A.npz").shape == (6, 6)


@pytest.mark.parametrize("value", [0.0, -2.0])
def test_a_diagonal_entry_not_positive(tmp_path, value):
    A = poisson_1d(5).tolil()
    A[3, 3] = value
    write_matrix(tmp_path / "A.mtx", A.tocsr())
    one_line(tmp_path / "A.mtx", "diagonal entry 3 is")


HEADER = "%%MatrixMarket matrix coordinate real general\n"


@pytest.mark.parametrize("body, says", [
    ("2 2 3\n1 1 1.0\n1 2 0.5\n2 1 0.5\n", "diagonal entry 1 is 0"),  # a missing diagonal entry
    ("2 2 2\n1 1 nan\n2 2 1.0\n", "not finite"),
    ("1000000000 1000000000 900000000000\n1 1 1.0\n", "32-bit indices"),  # refused before reading
    ("1 1 1\n1 1 1.0 2.0\n", "only real"),  # with the complex header below
], ids=["missing_diagonal", "nan", "beyond_32_bit_indices", "complex"])
def test_a_bad_matrix_market_file_is_one_line(tmp_path, body, says):
    path = tmp_path / "A.mtx"
    path.write_text((HEADER.replace("real", "complex") if says == "only real" else HEADER) + body)
    one_line(path, says)


def test_a_header_too_large_for_memory_is_refused_before_reading(tmp_path):
    bound = free_memory()
    if bound is None or bound.free > 60 * 2**30:
        pytest.skip("this host has room for the 2e9 entries the header claims")
    path = tmp_path / "A.mtx"
    path.write_text("%%MatrixMarket matrix coordinate real general\n100000000 100000000 2000000000\n1 1 1.0\n")
    one_line(path, "GiB")


def test_an_npz_whose_shape_is_too_large_is_refused(tmp_path):
    path = tmp_path / "A.npz"
    np.savez(path, format=np.array("csr"), shape=np.array([2**40, 2**40]), data=np.ones(2),
             indices=np.zeros(2, dtype=np.int64), indptr=np.zeros(3, dtype=np.int64))
    one_line(path, "32-bit indices")


def test_an_npz_with_a_pickled_member_is_not_unpickled(tmp_path):
    path = tmp_path / "A.npz"
    np.savez(path, format=np.array(["csr", {"evil": 1}], dtype=object), shape=np.array([2, 2]))
    one_line(path, "unreadable as .npz")


@pytest.mark.parametrize("name, content", [
    ("A.mtx", b"not a matrix at all\n"),
    ("A.mtx", b"%%MatrixMarket matrix coordinate real general\n2 2\n"),
    ("A.mtx", b"%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1.0\n"),  # fewer entries than said
    ("A.npz", b"PK\x03\x04 broken zip"), ("A.npz", b""), ("A.npz", b"\x00" * 64),
])
def test_an_unreadable_file_is_one_line(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    one_line(path, "")


def test_an_npz_that_is_not_a_sparse_matrix(tmp_path):
    path = tmp_path / "A.npz"
    np.savez(path, x=np.ones(3))
    one_line(path, "not a SciPy sparse .npz")


def test_missing_file_folder_fifo_dangling_link_and_unknown_suffix(tmp_path):
    one_line(tmp_path / "none.mtx", "does not exist")
    (tmp_path / "folder.mtx").mkdir()
    one_line(tmp_path / "folder.mtx", "is a directory, not a regular file")
    os.mkfifo(tmp_path / "fifo.mtx")  # refused at once, not waited on for a writer
    one_line(tmp_path / "fifo.mtx", "is a FIFO, not a regular file")
    (tmp_path / "dangling.mtx").symlink_to(tmp_path / "gone.mtx")
    one_line(tmp_path / "dangling.mtx", "does not exist")
    one_line(tmp_path / "A.csv", "unknown suffix '.csv'")


def test_a_link_to_a_matrix_file_is_read_as_the_file(tmp_path):
    write_matrix(tmp_path / "A.mtx", poisson_1d(5))
    (tmp_path / "link.mtx").symlink_to(tmp_path / "A.mtx")
    assert (read_matrix(tmp_path / "link.mtx") != poisson_1d(5)).nnz == 0


def test_a_huge_matrix_market_header_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "A.mtx"
    path.write_bytes(b"%%MatrixMarket matrix coordinate real general\n" + b"%" * (3 * 2**20) + b"\n2 2 1\n1 1 1\n")
    one_line(path, "a header (banner, comments and size line) longer than 1 MiB")


@pytest.mark.parametrize("shape", [(6,), (6, 1)])
def test_a_vector_reads_from_npy_and_matrix_market(tmp_path, shape):
    values = np.arange(6.0).reshape(shape)
    np.save(tmp_path / "b.npy", values)
    scipy.io.mmwrite(tmp_path / "b.mtx", values.reshape(6, 1))
    scipy.io.mmwrite(tmp_path / "c.mtx", sparse.coo_matrix(values.reshape(6, 1)))  # coordinates, 0 left out
    for name in ("b.npy", "b.mtx", "c.mtx"):
        assert read_vector(tmp_path / name, 6).tolist() == list(np.arange(6.0)), name


def vector_fault(path, rows: int, says: str) -> None:
    with pytest.raises(MgnetError) as caught:
        read_vector(path, rows)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and says in message, message


def test_a_bad_vector_file_is_one_line(tmp_path):
    np.save(tmp_path / "short.npy", np.ones(5))
    vector_fault(tmp_path / "short.npy", 6, "shape (5,), but the matrix has 6 rows")
    np.save(tmp_path / "nan.npy", np.array([1.0, np.nan]))
    vector_fault(tmp_path / "nan.npy", 2, "not finite")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    vector_fault(tmp_path / "objects.npy", 2, "unreadable")  # never unpickled
    np.save(tmp_path / "big.npy", np.ones(10**5))
    vector_fault(tmp_path / "big.npy", 6, "larger than a vector of 6 numbers could be")
    vector_fault(tmp_path / "b.csv", 6, "unknown suffix '.csv'")
    vector_fault(tmp_path / "none.npy", 6, "does not exist")
