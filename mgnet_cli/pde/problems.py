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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

Coefficient = Literal["lognormal", "jumps", "checkerboard", "constant", "file"]
COEFFICIENTS: tuple[str, ...] = ("lognormal", "jumps", "checkerboard", "constant", "file")


def coefficient_field(kind: Coefficient, n: int, seed: int = 0, sigma: float = 1.0,
                      contrast: float = 1e3, block: int = 8, file: Path | None = None) -> torch.Tensor:
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
    raise ValueError(f"coefficient must be one of {COEFFICIENTS}, got {kind!r}")


def read_field(path: Path, n: int) -> torch.Tensor:
    """A coefficient field from a ``.npy`` file: (n, n) finite positive numbers, else ValueError."""
    array = np.load(path, allow_pickle=False)
    if array.shape != (n, n) or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{path} holds an array of shape {array.shape} ({array.dtype}); "
                         f"problem.n={n} needs ({n}, {n}) numbers")
    field = torch.from_numpy(array.astype(np.float64))
    if not torch.isfinite(field).all() or (field <= 0).any():
        raise ValueError(f"{path}: every coefficient must be finite and > 0")
    return field


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


ProblemKind = Literal["poisson", "diffusion", "anisotropic"]
PROBLEMS: tuple[str, ...] = ("poisson", "diffusion", "anisotropic")


@dataclass(frozen=True)
class Problem:
    """One of the problems, with everything that fixes its finest stencil (``configs/problem/``)."""

    kind: ProblemKind = "poisson"
    n: int = 255
    coefficient: Coefficient = "lognormal"
    sigma: float = 1.0
    contrast: float = 1e3
    block: int = 8
    file: Path | None = None
    field_seed: int = 0
    epsilon: float = 0.01
    theta: float = 0.0

    def field(self) -> torch.Tensor:
        """The diffusion coefficient per control volume, (n, n)."""
        return coefficient_field(self.coefficient, self.n, self.field_seed, self.sigma,
                                 self.contrast, self.block, self.file)

    def stencil(self, dtype: torch.dtype = torch.float64,
                device: torch.device | str = "cpu") -> torch.Tensor:
        """The finest grid's (3, 3, n, n) stencil."""
        if self.kind == "diffusion":
            stencil = diffusion_stencil(self.field())
        elif self.kind == "anisotropic":
            stencil = anisotropic_stencil(self.n, self.epsilon, self.theta)
        else:
            stencil = diffusion_stencil(torch.ones(self.n, self.n, dtype=torch.float64))
        return stencil.to(dtype=dtype, device=device)

    def label(self) -> str:
        """A short description for logs and plot titles."""
        if self.kind == "diffusion":
            detail = {"lognormal": f"sigma={self.sigma:g}", "jumps": f"1/{self.contrast:g}",
                      "checkerboard": f"1/{self.contrast:g}, block {self.block}",
                      "constant": "k=1", "file": str(self.file)}[self.coefficient]
            return f"diffusion {self.coefficient} ({detail})"
        if self.kind == "anisotropic":
            return f"anisotropic eps={self.epsilon:g} theta={self.theta:.4g}"
        return "poisson"
