"""How F points take their values from C points: the prolongation P of one level, from the matrix,
its strength and its C/F splitting (splitting.py).

Interpolation: ``direct``: an F point i takes from its strong C neighbours C_i,
``w_ij = -alpha_i a_ij / a_ii`` (a_ij < 0) and ``-beta_i a_ij / a_ii`` (a_ij > 0), with
alpha_i (beta_i) the sum of i's negative (positive) off-diagonal entries over those in C_i: a row of
zero sum is interpolated exactly on constants. Positive entries with no positive C partner are
lumped onto the diagonal. ``classical`` (the default) also hands strong F-F couplings on to the C
points (``classical_interpolation``); ``extended_i`` reaches the C points of strong F neighbours
too (``extended_i_interpolation``: what PMIS needs). Weights below ``truncation`` times the row's
largest are dropped and the rest rescaled to keep the row sum. ``learned`` keeps classical's split
and pattern and takes the F rows' values from a graph network (learned_interpolation.py).

Direct interpolation and the truncation are vectorised (numpy); classical and extended+i weights
come from one compiled kernel, a loop over the F rows (kernels.interpolation_weights: the sparse
products it replaced took 4x as long at jumps n = 1023).
"""

import numpy as np
import scipy.sparse as sparse

from mgnet_cli.amg.settings import Interpolation
from mgnet_cli.amg.splitting import canonical


def row_max(rows: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """``max(0, values of row i)`` for each of the n rows (what ``np.maximum.at`` into zeros gives), by
    one ``reduceat`` over each row's run where ``rows`` is sorted (as a CSR matrix's are)."""
    largest = np.zeros(n)
    if rows.size and np.all(rows[1:] >= rows[:-1]):
        starts = np.flatnonzero(np.concatenate([[True], rows[1:] != rows[:-1]]))
        largest[rows[starts]] = np.maximum(np.maximum.reduceat(values, starts), 0.0)
    else:
        np.maximum.at(largest, rows, values)
    return largest


def lookup(matrix: sparse.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[k], cols[k]]`` for every k, as a float array (SciPy answers a sparse matrix,
    not an empty array, when there is nothing to look up)."""
    if rows.size == 0:
        return np.zeros(0)
    return np.asarray(matrix[rows, cols], dtype=np.float64).ravel()


def direct_interpolation(A: sparse.csr_matrix, S: sparse.csr_matrix, is_c: np.ndarray,
                         truncation: float) -> sparse.csr_matrix:
    """P (n x n_coarse): identity on C points, direct weights (module docstring) on F points."""
    n = A.shape[0]
    coarse_index = np.cumsum(is_c) - 1
    coo = A.tocoo()
    rows, cols, values = coo.row, coo.col, coo.data
    off = rows != cols
    rows, cols, values = rows[off], cols[off], values[off]
    diagonal = A.diagonal().astype(np.float64)
    strong = lookup(S, rows, cols) > 0
    interp = strong & is_c[cols] & ~is_c[rows]

    negative, positive = values < 0, values > 0
    sum_neg = np.bincount(rows, values * negative, n)
    sum_pos = np.bincount(rows, values * positive, n)
    c_neg = np.bincount(rows, values * (negative & interp), n)
    c_pos = np.bincount(rows, values * (positive & interp), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(c_neg != 0, sum_neg / c_neg, 0.0)
        beta = np.where(c_pos != 0, sum_pos / c_pos, 0.0)
    lumped = diagonal + np.where(c_pos == 0, sum_pos, 0.0)  # positive entries with no C partner
    scale = np.where(values[interp] < 0, alpha[rows[interp]], beta[rows[interp]])
    w_rows, w_cols = rows[interp], coarse_index[cols[interp]]
    weights = -scale * values[interp] / lumped[w_rows]

    return assemble(n, is_c, w_rows, w_cols, weights, truncation)


def assemble(n: int, is_c: np.ndarray, w_rows: np.ndarray, w_cols: np.ndarray, weights: np.ndarray,
             truncation: float) -> sparse.csr_matrix:
    """P from the F rows' weights (coarse column indices): truncated, identity on the C points."""
    coarse_index = np.cumsum(is_c) - 1
    if truncation > 0 and weights.size:
        magnitude = np.abs(weights)
        keep = magnitude >= truncation * row_max(w_rows, magnitude, n)[w_rows]
        total = np.bincount(w_rows, weights, n)
        w_rows, w_cols, weights = w_rows[keep], w_cols[keep], weights[keep]
        kept = np.bincount(w_rows, weights, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            rescale = np.where(kept != 0, total / kept, 1.0)
        weights = weights * rescale[w_rows]

    c_points = np.flatnonzero(is_c)
    shape = (n, c_points.size)
    if w_rows.size and (np.any(w_rows[1:] < w_rows[:-1]) or np.any(is_c[w_rows])):  # not F rows in order
        all_rows = np.concatenate([c_points, w_rows])
        all_cols = np.concatenate([coarse_index[c_points], w_cols])
        all_values = np.concatenate([np.ones(c_points.size), weights])
        return sparse.csr_matrix((all_values, (all_rows, all_cols)), shape=shape)
    # F rows in order: CSR directly, each F entry after the C rows above it, each C row's 1 after the F entries above
    indptr = np.concatenate([[0], np.cumsum(np.bincount(w_rows, minlength=n) + is_c)])
    at_f = np.arange(w_rows.size) + coarse_index[w_rows] + 1
    at_c = indptr[c_points]
    data, indices = np.empty(indptr[-1]), np.empty(indptr[-1], dtype=np.int64)
    data[at_f], indices[at_f] = weights, w_cols
    data[at_c], indices[at_c] = 1.0, coarse_index[c_points]
    P = sparse.csr_matrix((data, indices, indptr), shape=shape)
    P.sum_duplicates()  # sorted columns, as the COO route gives
    return P


def classical_interpolation(A: sparse.csr_matrix, S: sparse.csr_matrix, is_c: np.ndarray,
                            truncation: float) -> sparse.csr_matrix:
    """P with classical (Ruge-Stueben) weights: an F point's strong F neighbour k hands its coupling
    a_ik on to i's interpolation points j in proportion to k's negative couplings a_kj to them
    (lumped onto the diagonal where k has none); weak couplings go onto the diagonal:
    ``w_ij = -(a_ij + sum_k a_ik a_kj / sum_{m in C_i} a_km) / (a_ii + sum_weak a_in + lumped)``."""
    return compiled_interpolation(A, S, is_c, truncation, extended=False)


def extended_i_interpolation(A: sparse.csr_matrix, S: sparse.csr_matrix, is_c: np.ndarray,
                             truncation: float) -> sparse.csr_matrix:
    """P with extended+i weights (De Sterck, Falgout, Nolting and Yang, NLAA 2008; hypre's ext+i):
    an F point i interpolates from C^_i, its strong C neighbours and those of its strong F
    neighbours k (distance two: what PMIS and HMIS splittings need). Each k hands a_ik on to C^_i and
    to i itself in proportion to k's negative couplings abar_kl to them, ``d_ik = sum_{l in C^_i}
    abar_kl + abar_ki`` (lumped onto the diagonal where that is 0); couplings to points outside C^_i
    that are not strong F neighbours go onto the diagonal:
    ``w_ij = -(a_ij + sum_k a_ik abar_kj / d_ik) / (a_ii + sum_k a_ik abar_ki / d_ik + sum_weak a_in)``.
    A row of zero sum interpolates constants exactly."""
    return compiled_interpolation(A, S, is_c, truncation, extended=True)


def compiled_interpolation(A: sparse.csr_matrix, S: sparse.csr_matrix, is_c: np.ndarray, truncation: float,
                           extended: bool) -> sparse.csr_matrix:
    """Classical or extended+i P: the F rows' weights by kernels.interpolation_weights, then
    truncated and assembled. S: the strength pattern (``splitting.strength``)."""
    from mgnet_cli.amg import kernels  # numba, imported by a setup only (not by every mgnet solve)

    A, S = canonical(A), canonical(S)  # sums in column order, one entry per column
    w_rows, w_cols, weights = kernels.interpolation_weights(
        *kernels.pattern(A), A.data.astype(np.float64, copy=False), A.diagonal().astype(np.float64),
        *kernels.pattern(S), is_c.astype(np.bool_, copy=False), extended)
    coarse_index = np.cumsum(is_c) - 1
    return assemble(A.shape[0], is_c, w_rows, coarse_index[w_cols], weights, truncation)


INTERPOLATE = {Interpolation.classical: classical_interpolation, Interpolation.direct: direct_interpolation,
               Interpolation.extended_i: extended_i_interpolation}
