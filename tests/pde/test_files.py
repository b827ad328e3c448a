"""Coefficient files (``problem.coefficient=file``): the ``.npy`` header is checked before any data
are read, only regular files are opened, the field is read once, and extreme fields are refused."""

import io
import os

import numpy as np
import numpy.lib.format as npy_format
import pytest

from mgnet_cli import schema
from mgnet_cli.cli.solve_settings import coefficient_file
from mgnet_cli.pde.problems import finest_stencil
from mgnet_cli.errors import ConfigError
from mgnet_cli.pde.problems import read_field
from tests.helpers import mgnet_solve, one_line_error


def header_only(path, shape, descr="<f8", tail=b"\0" * 16) -> None:
    """A ``.npy`` file whose header promises ``shape`` and which holds only ``tail`` after it."""
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    path.write_bytes(header.getvalue() + tail)


def extreme(low: float, high: float):
    field = np.ones((7, 7))
    field[0, 0], field[-1, -1] = low, high
    return field


def npz(path) -> None:
    with open(path, "wb") as file:  # numpy.savez would add .npz to the name
        np.savez(file, k=np.ones((7, 7)))


@pytest.mark.parametrize("n, write, message", [
    (4095, lambda p: header_only(p, (4095, 4095)), "holds 16 bytes of data where its header says 134,152,200"),
    (7, lambda p: header_only(p, (7, 7), tail=b"\0" * 400), "holds 400 bytes of data where its header says 392"),
    (193_023, lambda p: header_only(p, (193_023, 193_023)), "holds 16 bytes of data where its header says "
                                                             "298,063,028,232"),  # 298 GB asked
    (7, lambda p: header_only(p, (8, 8)), "holds an array of shape (8, 8)"),
    (7, lambda p: p.write_bytes(b""), "is empty"),
    (7, npz, "is an .npz archive"),
    (7, lambda p: np.save(p, np.ones((7, 7), dtype=complex)), "holds complex128, not real floating-point"),
    (7, lambda p: np.save(p, np.ones((7, 7), dtype=np.int64)), "holds int64, not real floating-point"),
    (7, lambda p: np.save(p, np.ones((7, 7), dtype=[("k", "<f8")])), "not real floating-point"),
    (7, lambda p: np.save(p, extreme(1e-13, 1.0)), "contrast max/min = 1e+13 is above 1e+12"),
    (7, lambda p: np.save(p, extreme(1e200, 1e200)), "mgnet solves with coefficients in [1e-30, 1e+30]"),
    (7, lambda p: p.write_bytes(b"\x93NUMPY\x03\x00" + b"\0" * 64), "format version 3.0 is not 1.0 or 2.0"),
])
def test_a_bad_coefficient_file_is_refused_before_its_data_are_read(tmp_path, n, write, message):
    path = tmp_path / "k.npy"
    write(path)
    with pytest.raises(ValueError) as refused:
        read_field(path, n)
    assert message in str(refused.value) and str(path) in str(refused.value)


def test_fortran_order_and_other_float_widths_read_as_written(tmp_path):
    field = np.arange(1.0, 50.0).reshape(7, 7)
    np.save(tmp_path / "f.npy", np.asfortranarray(field.astype(">f4")))
    assert read_field(tmp_path / "f.npy", 7).numpy().tolist() == field.tolist()


def test_only_regular_files_are_opened(tmp_path):
    fifo = tmp_path / "k.npy"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # so that an old reader would fail on the bytes, not block
    os.write(writer, b"garbage!")
    try:
        with pytest.raises(ValueError, match="is a FIFO, not a regular file"):
            read_field(fifo, 7)
    finally:
        os.close(writer)
    with pytest.raises(ValueError, match="is a directory, not a regular file"):
        read_field(tmp_path, 7)


def test_the_field_is_read_once_and_the_solve_uses_what_was_checked(tmp_path, compose_config):
    field = np.exp(np.random.default_rng(0).standard_normal((15, 15)))
    np.save(tmp_path / "k.npy", field)
    cfg = compose_config("problem=diffusion", "problem.n=15", "problem.coefficient=file",
                         f"problem.file={tmp_path / 'k.npy'}", config_name="solve", tiny=False)
    problem = schema.check(cfg, "solve").problem
    values = coefficient_file(problem)
    (tmp_path / "k.npy").write_bytes(b"")  # changed after the check: never read again
    assert values.numpy().tolist() == field.tolist()
    assert finest_stencil(problem, field=values).shape == (3, 3, 15, 15)


def test_a_bad_file_is_one_config_error_naming_the_key(tmp_path, compose_config):
    header_only(tmp_path / "k.npy", (15, 15))
    cfg = compose_config("problem=diffusion", "problem.n=15", "problem.coefficient=file",
                         f"problem.file={tmp_path / 'k.npy'}", config_name="solve", tiny=False)
    with pytest.raises(ConfigError, match=r"problem.file='.*k.npy': .* holds 16 bytes of data"):
        coefficient_file(schema.check(cfg, "solve").problem)


def test_a_file_given_with_another_coefficient_is_refused(tmp_path):
    run = tmp_path / "run"
    line = one_line_error(mgnet_solve("problem=diffusion", "problem.n=15", "problem.file=k.npy",
                                      f"hydra.run.dir={run}", cwd=tmp_path), "solve")
    assert "problem.file=k.npy: read only with problem.coefficient=file, not lognormal" in line
    assert not run.exists()
