"""The AMG hierarchy (setup.py) as levels of the shared cycle (mgnet_cli/cycle.py): a sparse
operator (torch sparse CSR, float64) per level, P and P^T as the transfers, the smoothers that suit a
general matrix, and a direct (Cholesky) solve on the coarsest level. Vectors are 1-D tensors.

Smoothers: ``l1_jacobi`` (damped by 1/(a_ii + sum_j |a_ij|), j != i: convergent for any SPD
matrix, its own adjoint), ``gauss_seidel`` (forward sweeps before the coarse correction, backward
after: a symmetric V cycle; compiled triangular solves on the CPU, kernels.py), ``symmetric_gauss_seidel`` (a
forward and a backward sweep per step) and ``chebyshev`` (a polynomial in D^-1 A over
[rho/30, 1.1 rho], rho from power iterations; its own adjoint, runs on any device).
"""

import warnings
from collections.abc import Callable

import numpy as np
import scipy.sparse as sparse
import torch
from torch import nn

from mgnet_cli.amg.aggregation import smoothed_aggregation
from mgnet_cli.amg.settings import DENSE_ROWS, AmgSettings, AmgSmoother, Coarsening, SetupSettings
from mgnet_cli.amg.setup import Hierarchy, ruge_stuben
from mgnet_cli.cycle import Level, MultigridCycle, zero_if_none
from mgnet_cli.pde.smoothers import ChebyshevPolynomial, Smoother
from mgnet_cli.pde.solve import SolveResult, solve_system


def to_torch(matrix: sparse.csr_matrix, device: str | torch.device = "cpu") -> torch.Tensor:
    matrix = sparse.csr_matrix(matrix, dtype=np.float64)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": printed once per process otherwise
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(matrix.indptr.astype(np.int64)),
                                       torch.from_numpy(matrix.indices.astype(np.int64)),
                                       torch.from_numpy(matrix.data), size=matrix.shape,
                                       dtype=torch.float64, device=device, check_invariants=False)


class SparseTransfer(nn.Module):
    """``x -> M x`` for a fixed sparse ``M`` (P, or P^T as the restriction; a level's A below): on the
    CPU outside autograd by SciPy's CSR kernel, sharing ``x``'s memory (1.5x torch's sparse product
    there: 7.0 against 10.4 ms at jumps n = 1023), elsewhere by torch's sparse CSR product, its tensor
    made where the vectors are (at once on a device, when first needed on the CPU)."""

    def __init__(self, matrix: sparse.csr_matrix, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.matrix = sparse.csr_matrix(matrix, dtype=np.float64)
        self.tensor = None if torch.device(device).type == "cpu" else to_torch(self.matrix, device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float64 and not (torch.is_grad_enabled() and x.requires_grad):
            return torch.from_numpy(self.matrix @ x.numpy())
        if self.tensor is None or self.tensor.device != x.device:
            self.tensor = to_torch(self.matrix, x.device)
        return torch.mv(self.tensor, x)


class SparseOperator(SparseTransfer):
    """A level's ``A``: its products, ``A.residual(u, f) = f - A u`` and its diagonal; keeps the SciPy
    matrix for the CPU smoothers."""

    def __init__(self, matrix: sparse.csr_matrix, device: str | torch.device = "cpu") -> None:
        super().__init__(matrix, device)
        self.register_buffer("diagonal", torch.from_numpy(self.matrix.diagonal()).to(device), persistent=False)

    def residual(self, u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return f - self(u)


class L1Jacobi(Smoother):
    """``u <- u + r / d``, ``d_i = sum_j |a_ij|``: no damping factor to choose, convergent for SPD."""

    def __init__(self, A: SparseOperator, steps: int) -> None:
        super().__init__(steps)
        d = np.asarray(abs(A.matrix).sum(axis=1)).ravel()
        self.register_buffer("inverse", torch.from_numpy(1.0 / d).to(A.diagonal.device), persistent=False)

    def smooth(self, u, f, residual, A):
        for step in range(self.steps):
            if step:
                residual = A.residual(u, f)
            u = zero_if_none(u, f) + self.inverse * residual
        return u


class GaussSeidel(Smoother):
    """Gauss-Seidel sweeps (compiled triangular solves on the CPU, kernels.py): forward ``(D + L)^-1``,
    or backward ``(D + U)^-1`` where ``reverse`` (krylov.adjoint_post_smoother sets it); ``symmetric``:
    both per step."""

    def __init__(self, A: SparseOperator, steps: int, symmetric: bool = False, reverse: bool = False) -> None:
        super().__init__(steps)
        from mgnet_cli.amg import kernels  # compiled: numba is imported where a sweep is

        self.symmetric, self.reverse = symmetric, reverse
        self.rows = (*kernels.pattern(A.matrix), A.matrix.data)  # int64 indices once: one compiled type
        self.solves = {True: kernels.lower_solve, False: kernels.upper_solve}

    def order(self) -> list[bool]:
        """The triangles of one step, in order: True for the lower (a forward sweep)."""
        return [not self.reverse] + ([self.reverse] if self.symmetric else [])

    def _sweep(self, residual: torch.Tensor, lower: bool) -> torch.Tensor:
        r = np.ascontiguousarray(residual.cpu().numpy(), dtype=np.float64)
        return torch.from_numpy(self.solves[lower](*self.rows, r)).to(residual.device)

    def smooth(self, u, f, residual, A):
        first = True
        for _ in range(self.steps):
            for lower in self.order():
                if not first:
                    residual = A.residual(u, f)
                u = zero_if_none(u, f) + self._sweep(residual, lower)
                first = False
        return u


def spectral_radius(A: SparseOperator, inverse_diagonal: torch.Tensor, iterations: int = 15) -> float:
    """rho(D^-1 A) by power iterations from a fixed random start (an estimate from below)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(A.matrix.shape[0], generator=generator, dtype=torch.float64).to(inverse_diagonal.device)
    estimate = 1.0
    for _ in range(iterations):
        y = inverse_diagonal * A(x)
        estimate = torch.linalg.vector_norm(y).item() / torch.linalg.vector_norm(x).item()
        x = y / torch.linalg.vector_norm(y)
    return estimate


def chebyshev(A: SparseOperator, steps: int) -> ChebyshevPolynomial:
    """``steps`` Chebyshev iterations on ``D^-1 A`` over [rho / 30, 1.1 rho] (the smoothing range):
    the geometric solver's polynomial, with rho measured on this level's matrix."""
    return ChebyshevPolynomial(steps, ratio=30.0, lambda_max=1.1 * spectral_radius(A, 1.0 / A.diagonal))


COARSEST_STEPS = 2  # symmetric Gauss-Seidel steps on a coarsest level too large to factor


def coarsest_solver(A: SparseOperator) -> nn.Module:
    """The coarsest level's solve: a dense Cholesky factor, or, where coarsening stopped above
    DENSE_ROWS rows (a matrix with few strong couplings, which Gauss-Seidel alone reduces fast),
    COARSEST_STEPS symmetric Gauss-Seidel steps (symmetric: the cycle still preconditions CG)."""
    if A.matrix.shape[0] <= DENSE_ROWS:
        return DirectSolve(A)
    return GaussSeidel(A, COARSEST_STEPS, symmetric=True)


class DirectSolve(nn.Module):
    """The coarsest level: ``u + A^-1 (f - A u)`` by a dense Cholesky factor."""

    steps = 1

    def __init__(self, A: SparseOperator) -> None:
        super().__init__()
        dense = torch.from_numpy(A.matrix.toarray()).to(A.diagonal.device)
        self.register_buffer("factor", torch.linalg.cholesky(dense), persistent=False)

    def forward(self, u, f, residual, A):
        correction = torch.cholesky_solve(residual.unsqueeze(1), self.factor).squeeze(1)
        return correction if u is None else u + correction


def make_smoother(name: str, A: SparseOperator, steps: int, post: bool = False) -> nn.Module:
    if name == "l1_jacobi":
        return L1Jacobi(A, steps)
    if name in ("gauss_seidel", "symmetric_gauss_seidel"):
        return GaussSeidel(A, steps, symmetric=name == "symmetric_gauss_seidel", reverse=post)
    if name == "chebyshev":
        return chebyshev(A, steps)
    raise ValueError(f"smoother must be one of {', '.join(AmgSmoother)}, got {name!r}")


def build_cycle(hierarchy: Hierarchy, settings: AmgSettings | None = None,
                device: str | torch.device = "cpu") -> MultigridCycle:
    """The hierarchy's levels in the shared cycle: pre- and post-smoothers (the post-smoother the
    pre-smoother's adjoint, so V(nu, nu) preconditions CG), P^T down, P up, ``coarsest_solver`` at the bottom."""
    settings = settings or AmgSettings()
    levels = []
    for depth, matrix in enumerate(hierarchy.A):
        A = SparseOperator(matrix, device)
        if depth == len(hierarchy.A) - 1:
            levels.append(Level(A, coarsest_solver(A)))
            continue
        P = hierarchy.P[depth]
        levels.append(Level(A, make_smoother(settings.smoother, A, settings.pre_smooth),
                            restrict_residual=SparseTransfer(P.T.tocsr(), device),
                            prolong=SparseTransfer(P, device),
                            post_smoother=make_smoother(settings.smoother, A, settings.post_smooth, post=True)))
    return MultigridCycle(levels, str(settings.cycle))


Interpolate = Callable[[sparse.csr_matrix, sparse.csr_matrix, np.ndarray, float], sparse.csr_matrix]


def hierarchy_of(matrix: sparse.csr_matrix, settings: SetupSettings,
                 interpolate: Interpolate | None = None) -> Hierarchy:
    """The levels of ``matrix`` by the family ``settings.coarsening`` names; ``interpolate(A, S, is_c,
    truncation)`` makes the classical family's P where its interpolation is ``learned`` (the network's,
    loaded or learned by the command: learned_interpolation.py)."""
    if settings.coarsening not in tuple(Coarsening):
        raise ValueError(f"coarsening must be one of {', '.join(Coarsening)}, got {settings.coarsening!r}")
    if settings.coarsening == Coarsening.aggregation:
        return smoothed_aggregation(matrix, settings)
    return ruge_stuben(matrix, settings, interpolate)


def setup(matrix: sparse.csr_matrix, settings: AmgSettings | None = None, device: str | torch.device = "cpu",
          interpolate: Interpolate | None = None) -> tuple[MultigridCycle, Hierarchy]:
    settings = settings or AmgSettings()
    hierarchy = hierarchy_of(matrix, settings, interpolate)
    return build_cycle(hierarchy, settings, device), hierarchy


def solve_matrix(matrix: sparse.csr_matrix, f: torch.Tensor, settings: AmgSettings, tol: float,
                 max_cycles: int, interpolate: Interpolate | None = None) -> tuple[SolveResult, Hierarchy]:
    """``A u = f`` (``f`` float64 on the device the cycle runs on) by the AMG cycle from ``u = 0``, or
    CG preconditioned by it: the setup (hierarchy, smoothers, coarsest factor) timed as
    ``setup_time_s``, the iterations as ``solve_time_s``; ``levels`` are the rows per level
    (``interpolate``: ``hierarchy_of``'s)."""
    built: list[Hierarchy] = []

    def build() -> tuple[MultigridCycle, list[int]]:
        cycle, hierarchy = setup(matrix, settings, f.device, interpolate)
        built.append(hierarchy)
        return cycle, [level.shape[0] for level in hierarchy.A]

    with torch.inference_mode():
        result = solve_system(f, build, tol, max_cycles, settings.krylov)
    return result, built[0]
