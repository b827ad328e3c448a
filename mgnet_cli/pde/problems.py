"""The problems multigrid meets in practice: ``-∇·(k ∇u) = g`` and ``-∇·(K ∇u) = g``, unit square.

Zero Dirichlet boundary, ``n = 2^L - 1`` interior points per side, ``h = 1 / (n + 1)``, stencils
scaled by ``1 / h^2`` (k = 1 gives the Laplacian of poisson.py exactly). A diffusion coefficient
``k`` is one positive value per control volume (the ``h x h`` box around each unknown); the
5-point finite-volume stencil couples two neighbours through the harmonic mean of their ``k``
(the flux through the face between them), and a box on the boundary through its own ``k``.
``K`` of the anisotropic problem is ``diag(1, epsilon)`` rotated by ``theta``: the 9-point stencil
of ``-(K11 u_xx + 2 K12 u_xy + K22 u_yy)`` with central differences.
"""

import math
import os
from pathlib import Path
from typing import IO

import numpy as np
import numpy.lib.format as npy_format
import torch

from mgnet_cli.errors import MgnetError
from mgnet_cli.schema.solve import AnisotropicProblemConfig, Coefficient, DiffusionProblemConfig, PoissonProblemConfig
from mgnet_cli.untrusted import open_regular

PROBLEM = DiffusionProblemConfig  # the schema states the defaults


def coefficient_field(kind: str, n: int, seed: int = 0, sigma: float = PROBLEM.sigma, contrast: float = PROBLEM.contrast,
                      block: int = PROBLEM.block, file: Path | str | None = None) -> torch.Tensor:
    """``k`` per control volume, (n, n) float64: ``exp(sigma N(0,1))``; 1 or ``contrast`` at
    random; a checkerboard of ``block x block`` boxes of 1 and ``contrast``; 1; or a ``.npy`` file."""
    generator = torch.Generator().manual_seed(seed)
    if kind == "lognormal":
        return torch.exp(sigma * torch.randn(n, n, generator=generator, dtype=torch.float64))
    if kind == "jumps":
        high = torch.rand(n, n, generator=generator, dtype=torch.float64) < 0.5
        return torch.where(high, contrast, 1.0).to(torch.float64)
    if kind == "checkerboard":
        index = torch.arange(n) // block
        odd = (index[:, None] + index[None, :]) % 2 == 1
        return torch.where(odd, contrast, 1.0).to(torch.float64)
    if kind == "constant":
        return torch.ones(n, n, dtype=torch.float64)
    if kind == "file":
        return read_field(Path(file) if file is not None else Path(""), n)
    raise ValueError(f"coefficient must be one of {', '.join(choice.value for choice in Coefficient)}, got {kind!r}")


CONTRAST_BOUND = 1e12  # max/min of a coefficient file: beyond it the coarse solve loses every digit
MAGNITUDE_BOUND = 1e30  # |log10 k| above 30 overflows a float32 stencil at n = 8191
NPY_HEADERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}


def read_field(path: Path, n: int) -> torch.Tensor:
    """A coefficient field from a ``.npy`` file (a regular file, read once): (n, n) real floats,
    finite, positive, in ``[1/MAGNITUDE_BOUND, MAGNITUDE_BOUND]`` and of contrast at most
    ``CONTRAST_BOUND``; else ValueError. The header's dtype and shape and the file's size are
    checked before the data are read, so a header that lies reads nothing."""
    try:
        with open_regular(path, "the file") as file:
            dtype, order, size = npy_header(file, path, n)
            data = file.read(size)
    except MgnetError as error:
        raise ValueError(str(error)) from None
    array = np.frombuffer(data, dtype).reshape((n, n), order=order).astype(np.float64)
    field = torch.from_numpy(array)
    if not torch.isfinite(field).all() or (field <= 0).any():
        raise ValueError(f"{path}: every coefficient must be finite and > 0")
    low, high = float(field.min()), float(field.max())
    if low < 1 / MAGNITUDE_BOUND or high > MAGNITUDE_BOUND:
        raise ValueError(f"{path}: the coefficients span [{low:.3g}, {high:.3g}]; mgnet solves with "
                         f"coefficients in [{1 / MAGNITUDE_BOUND:g}, {MAGNITUDE_BOUND:g}]: rescale them")
    if high / low > CONTRAST_BOUND:
        raise ValueError(f"{path}: the coefficients' contrast max/min = {high / low:.3g} is above "
                         f"{CONTRAST_BOUND:g}, where the coarse solve loses every digit: give a field of "
                         f"contrast at most {CONTRAST_BOUND:g}")
    return field


def npy_header(file: IO[bytes], path: Path, n: int) -> tuple[np.dtype, str, int]:
    """(dtype, order, bytes of data) of a ``.npy`` file of (n, n) real floats, the file positioned at
    its data; ValueError if it is empty, an ``.npz`` archive, of another dtype, shape or size."""
    start = file.read(6)
    if not start:
        raise ValueError(f"{path} is empty: save the field with numpy.save(path, k)")
    if start.startswith(b"PK"):
        raise ValueError(f"{path} is an .npz archive: save the one field with numpy.save(path, k)")
    file.seek(0)
    try:
        version = npy_format.read_magic(file)
        if version not in NPY_HEADERS:
            raise ValueError(f"format version {version[0]}.{version[1]} is not 1.0 or 2.0")
        shape, fortran_order, dtype = NPY_HEADERS[version](file)
    except ValueError as error:
        raise ValueError(f"{path} is not a .npy file numpy.save writes ({error})") from None
    if dtype.kind != "f" or dtype.fields is not None:
        raise ValueError(f"{path} holds {dtype}, not real floating-point numbers: save "
                         f"k.astype(numpy.float64)")
    if tuple(shape) != (n, n):
        raise ValueError(f"{path} holds an array of shape {tuple(shape)} ({dtype}); problem.n={n} "
                         f"needs ({n}, {n}) numbers")
    size = n * n * dtype.itemsize
    held = os.fstat(file.fileno()).st_size - file.tell()
    if held != size:
        raise ValueError(f"{path} holds {held:,} bytes of data where its header says {size:,} "
                         f"(({n}, {n}) {dtype}): the file is truncated or damaged")
    return dtype, "F" if fortran_order else "C", size


def diffusion_stencil(k: torch.Tensor) -> torch.Tensor:
    """The 5-point finite-volume ``-∇·(k ∇u)`` for ``k`` (n, n): (3, 3, n, n), harmonic faces."""
    n = k.shape[-1]
    scale = float(n + 1) ** 2
    faces_x = 2 * k[:, :-1] * k[:, 1:] / (k[:, :-1] + k[:, 1:])  # between columns j and j + 1
    faces_y = 2 * k[:-1, :] * k[1:, :] / (k[:-1, :] + k[1:, :])  # between rows i and i + 1
    west, east, north, south = k.clone(), k.clone(), k.clone(), k.clone()  # boundary faces: own k
    west[:, 1:], east[:, :-1] = faces_x, faces_x
    north[1:, :], south[:-1, :] = faces_y, faces_y
    stencil = k.new_zeros(3, 3, n, n)
    stencil[1, 0], stencil[1, 2], stencil[0, 1], stencil[2, 1] = -west, -east, -north, -south
    stencil[1, 1] = west + east + north + south
    return stencil * scale


def anisotropic_stencil(n: int, epsilon: float, theta: float) -> torch.Tensor:
    """The 9-point ``-∇·(K ∇u)``, ``K = Q diag(1, epsilon) Q^T``, ``Q`` the rotation by ``theta``."""
    c, s = math.cos(theta), math.sin(theta)
    k11, k22, k12 = c * c + epsilon * s * s, s * s + epsilon * c * c, (1 - epsilon) * c * s
    taps = torch.tensor([[-k12 / 2, -k22, k12 / 2],
                         [-k11, 2 * (k11 + k22), -k11],
                         [k12 / 2, -k22, -k12 / 2]], dtype=torch.float64)
    return (taps * float(n + 1) ** 2).view(3, 3, 1, 1).expand(3, 3, n, n).contiguous()


def finest_stencil(problem: PoissonProblemConfig, dtype: torch.dtype = torch.float64,
                   device: torch.device | str = "cpu", field: torch.Tensor | None = None) -> torch.Tensor:
    """The finest grid's (3, 3, n, n) stencil of a checked ``problem`` (configs/problem/; ``field``:
    a diffusion coefficient already read, a file's)."""
    if isinstance(problem, DiffusionProblemConfig):
        if field is None:
            field = coefficient_field(str(problem.coefficient), problem.n, problem.field_seed, problem.sigma,
                                      problem.contrast, problem.block, problem.file)
        stencil = diffusion_stencil(field)
    elif isinstance(problem, AnisotropicProblemConfig):
        stencil = anisotropic_stencil(problem.n, problem.epsilon, problem.theta)
    else:
        stencil = diffusion_stencil(torch.ones(problem.n, problem.n, dtype=torch.float64))
    return stencil.to(dtype=dtype, device=device)


def label(problem: PoissonProblemConfig) -> str:
    """A short description of a checked ``problem`` for logs and plot titles."""
    if isinstance(problem, DiffusionProblemConfig):
        detail = {"lognormal": f"sigma={problem.sigma:g}", "jumps": f"1/{problem.contrast:g}",
                  "checkerboard": f"1/{problem.contrast:g}, block {problem.block}",
                  "constant": "k=1", "file": str(problem.file)}[str(problem.coefficient)]
        return f"diffusion {problem.coefficient} ({detail})"
    if isinstance(problem, AnisotropicProblemConfig):
        return f"anisotropic eps={problem.epsilon:g} theta={problem.theta:.4g}"
    return "poisson"
