"""Classical (Ruge-Stueben) AMG setup on a SciPy CSR matrix: each level's strength and C/F splitting
(splitting.py) and interpolation (interpolation.py), Galerkin coarse operators ``P^T A P``, levels
until the coarse matrix is small. The level loop (``galerkin_levels``) also serves smoothed
aggregation (aggregation.py).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sparse

from mgnet_cli.amg.interpolation import INTERPOLATE
from mgnet_cli.amg.settings import Interpolation, SetupSettings, Splitting
from mgnet_cli.amg.splitting import second_pass, split_pmis, split_rs, strength


@dataclass
class Hierarchy:
    """The matrices finest first (``A[0]`` is the input) and the prolongations between them."""

    A: list[sparse.csr_matrix] = field(default_factory=list)
    P: list[sparse.csr_matrix] = field(default_factory=list)

    def operator_complexity(self) -> float:
        return sum(matrix.nnz for matrix in self.A) / self.A[0].nnz

    def grid_complexity(self) -> float:
        return sum(matrix.shape[0] for matrix in self.A) / self.A[0].shape[0]


def stalled(rows: int, coarse_rows: int) -> bool:
    """Coarsening has stalled: no coarse point, or fewer than 10 % fewer rows."""
    return not 0 < coarse_rows < 0.9 * rows


def galerkin_levels(A: sparse.csr_matrix, settings: SetupSettings,
                    prolongation: Callable[[sparse.csr_matrix], sparse.csr_matrix | None]) -> Hierarchy:
    """Levels ``P^T A P`` with ``P = prolongation(A)`` until a matrix has at most ``coarsest_size``
    rows, there are ``max_levels`` levels, or ``prolongation`` answers None (coarsening stalled)."""
    hierarchy = Hierarchy(A=[sparse.csr_matrix(A, dtype=np.float64)])
    while len(hierarchy.A) < settings.max_levels and hierarchy.A[-1].shape[0] > settings.coarsest_size:
        fine = hierarchy.A[-1]
        P = prolongation(fine)
        if P is None:
            break
        coarse = (P.T @ fine @ P).tocsr()
        coarse.sum_duplicates()
        coarse.eliminate_zeros()
        coarse.sort_indices()
        hierarchy.P.append(P)
        hierarchy.A.append(coarse)
    return hierarchy


def ruge_stuben(A: sparse.csr_matrix, settings: SetupSettings | None = None,
                interpolate: Callable[..., sparse.csr_matrix] | None = None) -> Hierarchy:
    """The classical AMG hierarchy of ``A`` (SPD, CSR): levels until a matrix has at most
    ``coarsest_size`` rows, ``max_levels`` levels, or coarsening stalls (fewer than 10 % fewer
    rows, or no C point). ``interpolate(A, S, is_c, truncation)`` makes P where the settings'
    interpolation is ``learned`` (the network's: solver.hierarchy_of)."""
    settings = settings or SetupSettings()
    if settings.splitting not in tuple(Splitting):
        raise ValueError(f"splitting must be one of {', '.join(Splitting)}, got {settings.splitting!r}")
    if settings.interpolation not in tuple(Interpolation):
        raise ValueError(f"interpolation must be one of {', '.join(Interpolation)}, got {settings.interpolation!r}")
    if settings.interpolation != Interpolation.learned:
        interpolate = INTERPOLATE[Interpolation(settings.interpolation)]
    elif interpolate is None:
        raise ValueError("interpolation=learned needs the network's interpolate (learned_interpolation.py)")

    def prolongation(fine: sparse.csr_matrix) -> sparse.csr_matrix | None:
        S = strength(fine, settings.theta)
        is_c = split_rs(S) if settings.splitting == "rs" else split_pmis(S, settings.pmis_seed)
        if settings.second_pass:
            is_c = second_pass(S, is_c)
        if stalled(fine.shape[0], int(is_c.sum())):
            return None
        return interpolate(fine, S, is_c, settings.truncation)

    return galerkin_levels(A, settings, prolongation)
