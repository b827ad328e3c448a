"""Classical (Ruge-Stueben) AMG setup on a SciPy CSR matrix, vectorised with scipy.sparse / numpy:
strength of connection, C/F splitting, interpolation with truncation, Galerkin coarse operators,
levels until the coarse matrix is small.

Strength (classical, ``theta``): row i depends strongly on j != i when ``-a_ij >= theta max_k
(-a_ik)`` (the negative couplings; a row with none has no strong dependencies).

Splitting: ``rs`` is Ruge-Stueben's first pass (greedy on the measure lambda_i = how many points
depend strongly on i; a bucket queue, the one loop of the setup), followed
(``second_pass``, the default) by its second pass (strong F-F pairs must share a C point);
``pmis`` is Luby-style independent sets on random weights, fully vectorised (coarser, cheaper, weaker).

Interpolation: ``direct``: an F point i takes from its strong C neighbours C_i,
``w_ij = -alpha_i a_ij / a_ii`` (a_ij < 0) and ``-beta_i a_ij / a_ii`` (a_ij > 0), with
alpha_i (beta_i) the sum of i's negative (positive) off-diagonal entries over those in C_i: a row of
zero sum is interpolated exactly on constants. Positive entries with no positive C partner are
lumped onto the diagonal. ``classical`` (the default) also hands strong F-F couplings on to the C
points (``classical_interpolation``); ``extended_i`` reaches the C points of strong F neighbours
too (``extended_i_interpolation``: what PMIS needs). Weights below ``truncation`` times the row's
largest are dropped and the rest rescaled to keep the row sum. ``learned`` keeps classical's split
and pattern and takes the F rows' values from a graph network (learned_interpolation.py).

The level loop (``galerkin_levels``) also serves smoothed aggregation (aggregation.py).
"""

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sparse

from mgnet_cli.amg.settings import Interpolation, SetupSettings, Splitting


@dataclass
class Hierarchy:
    """The matrices finest first (``A[0]`` is the input) and the prolongations between them."""

    A: list[sparse.csr_matrix] = field(default_factory=list)
    P: list[sparse.csr_matrix] = field(default_factory=list)

    def operator_complexity(self) -> float:
        return sum(matrix.nnz for matrix in self.A) / self.A[0].nnz

    def grid_complexity(self) -> float:
        return sum(matrix.shape[0] for matrix in self.A) / self.A[0].shape[0]


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


def strength(A: sparse.csr_matrix, theta: float) -> sparse.csr_matrix:
    """The strong dependencies of each row as a 0/1 CSR matrix (no diagonal): A's pattern masked in
    place (no COO round trip)."""
    n = A.shape[0]
    rows = entry_rows(A)
    values = -A.data
    off = rows != A.indices
    largest = row_max(rows[off], values[off], n)
    strong = off & (values > 0) & (values >= theta * largest[rows])
    return masked(A, strong, ones=True)


def masked(A: sparse.csr_matrix, keep: np.ndarray, ones: bool = False) -> sparse.csr_matrix:
    """The stored entries of A where ``keep`` (A's values, or ones), in canonical CSR (sorted,
    duplicates summed): what a product with 0/1 diagonal matrices or a comparison gives, without
    the products."""
    kept_before = np.concatenate([[0], np.cumsum(keep)])  # kept entries before each stored one
    values = np.ones(int(kept_before[-1])) if ones else A.data[keep]
    M = sparse.csr_matrix((values, A.indices[keep], kept_before[A.indptr]), shape=A.shape)
    M.sum_duplicates()
    return M


def entry_rows(A: sparse.csr_matrix) -> np.ndarray:
    """The row of each stored entry of A (CSR)."""
    return np.repeat(np.arange(A.shape[0], dtype=A.indices.dtype), np.diff(A.indptr))


def off_diagonal(A: sparse.csr_matrix) -> sparse.csr_matrix:
    """A without its diagonal and without stored zeros."""
    if not A.has_canonical_format:
        A = A.copy()
        A.sum_duplicates()
    return masked(A, (entry_rows(A) != A.indices) & (A.data != 0))


def f_to(M: sparse.csr_matrix, is_c: np.ndarray, to_c: bool) -> sparse.csr_matrix:
    """M's entries in F rows and C columns (``to_c``) or F columns."""
    return masked(M, ~is_c[entry_rows(M)] & (is_c[M.indices] == to_c))


def split_rs(S: sparse.csr_matrix) -> np.ndarray:
    """Ruge-Stueben first pass: True for C points. The point most depended upon (ties to the smaller
    index) becomes C, those depending on it F, and the points those F points depend on count one more.

    A bucket queue, one bucket per measure (a measure stays within 0..2x its start: each dependant
    adds one as it becomes F or takes one as it becomes C): a bucket holds its points of the starting
    measure as a sorted list read by a cursor (most points are never touched again: no heap work for
    them) and a small heap of the points that arrived later. A measure that falls is not re-filed at
    once: the stale entry, met first, is moved down then; a point is taken when its entry's bucket is
    its measure, so the order is exactly the heap's (largest measure, smaller index)."""
    n = S.shape[0]
    ST = S.T.tocsr()
    start = np.diff(ST.indptr)  # how many points depend strongly on each
    unassigned = (np.diff(S.indptr) > 0) | (start > 0)  # the rest (isolated points) are F
    buckets = 2 * int(start.max(initial=0)) + 1
    points = np.flatnonzero(unassigned)
    order = points[np.argsort(start[points], kind="stable")]  # by measure, then index
    bounds = np.cumsum(np.bincount(start[points], minlength=buckets)).tolist()
    order = order.tolist()
    initial = [order[low:high] for low, high in zip([0] + bounds[:-1], bounds)]
    cursor = [0] * buckets
    arrived: list[list[int]] = [[] for _ in range(buckets)]
    measure = start.tolist()
    state = np.where(unassigned, 0, 2).tolist()  # 0 unassigned, 1 C, 2 F
    # Python lists, not arrays: the loop reads one entry at a time, and a list entry is 5x cheaper
    S_ptr, S_idx, T_ptr, T_idx = S.indptr.tolist(), S.indices.tolist(), ST.indptr.tolist(), ST.indices.tolist()
    pop, push = heapq.heappop, heapq.heappush
    top = buckets - 1
    while top >= 0:
        heap, sorted_, at = arrived[top], initial[top], cursor[top]  # the top bucket, held while it stays on top
        end, raised = len(sorted_), top
        while raised == top:
            if at < end and not (heap and heap[0] < sorted_[at]):
                i = sorted_[at]
                at += 1
            elif heap:
                i = pop(heap)
            else:
                raised = -1  # this bucket is empty
                break
            if state[i]:
                continue
            if measure[i] != top:  # fell since it was filed here: file it where it is now
                push(arrived[measure[i]], i)
                continue
            state[i] = 1
            for j in T_idx[T_ptr[i]:T_ptr[i + 1]]:  # j depends on i: j is F
                if state[j] == 0:
                    state[j] = 2
                    for k in S_idx[S_ptr[j]:S_ptr[j + 1]]:  # what j depends on gains weight
                        if state[k] == 0:
                            m = measure[k] = measure[k] + 1
                            push(arrived[m], k)
                            if m > raised:
                                raised = m
            for j in S_idx[S_ptr[i]:S_ptr[i + 1]]:  # what i depends on loses weight (re-filed when met)
                if state[j] == 0:
                    measure[j] -= 1
        cursor[top] = at
        top = top - 1 if raised < 0 else raised
    return np.array(state, dtype=np.int8) == 1


def second_pass(S: sparse.csr_matrix, is_c: np.ndarray) -> np.ndarray:
    """Ruge-Stueben's second pass, in vectorised rounds: two F points that depend strongly on each
    other must share a strong C point (else classical interpolation loses their coupling). Each
    round promotes to C the F points with the most such unserved pairs among their unserved
    partners (ties to the larger index), until no pair is left. A served pair stays served (C only
    grows), so each round checks only the pairs the last one left unserved."""
    is_c = is_c.copy()
    n = S.shape[0]
    rows = np.repeat(np.arange(n, dtype=S.indices.dtype), np.diff(S.indptr))
    cols = S.indices
    pair = (S.data != 0) & ~is_c[rows] & ~is_c[cols]  # strong F-F dependencies
    rows, cols = rows[pair], cols[pair]
    index_score = np.arange(n) / n  # unique: ties go to the larger index
    while True:
        unserved = ~share_a_c_point(S, is_c, rows, cols)
        rows, cols = rows[unserved], cols[unserved]
        if rows.size == 0:
            return is_c
        count = np.bincount(np.concatenate([rows, cols]), minlength=n).astype(np.float64)
        score = count + index_score
        best = np.zeros(n)
        np.maximum.at(best, rows, score[cols])
        np.maximum.at(best, cols, score[rows])
        promote = (count > 0) & (score > best)
        is_c[promote] = True
        still_f = ~is_c[rows] & ~is_c[cols]
        rows, cols = rows[still_f], cols[still_f]


def share_a_c_point(S: sparse.csr_matrix, is_c: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For each pair (rows[k], cols[k]): do the two depend strongly on a common C point?"""
    if rows.size == 0:
        return np.zeros(0, dtype=bool)
    to_c = masked(S, is_c[S.indices] & (S.data != 0), ones=True)
    return np.asarray(to_c[rows].multiply(to_c[cols]).sum(axis=1)).ravel() > 0


def split_pmis(S: sparse.csr_matrix, seed: int = 0) -> np.ndarray:
    """PMIS: points with weight = (points depending on them) + U(0, 1) join C where they beat every
    undecided strong neighbour; their dependants become F; repeat. Vectorised: one sparse product
    per round."""
    n = S.shape[0]
    G = ((S + S.T) > 0).astype(np.float64).tocsr()  # strong in either direction
    weight = np.diff(S.T.tocsr().indptr) + np.random.default_rng(seed).random(n)
    state = np.zeros(n, dtype=np.int8)
    state[np.diff(S.T.tocsr().indptr) == 0] = 2  # nobody depends on it: F
    state[np.diff(G.indptr) == 0] = 2
    coo = G.tocoo()
    while np.any(state == 0):
        undecided = state == 0
        live = undecided[coo.row] & undecided[coo.col]
        beaten = np.zeros(n, dtype=bool)
        beaten[coo.row[live & (weight[coo.col] > weight[coo.row])]] = True
        new_c = undecided & ~beaten
        state[new_c] = 1
        depends_on_new_c = (S @ new_c.astype(np.float64)) > 0
        state[(state == 0) & depends_on_new_c] = 2
    return state == 1


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
    ``w_ij = -(a_ij + sum_k a_ik a_kj / sum_{m in C_i} a_km) / (a_ii + sum_weak a_in + lumped)``.
    All by sparse products: no loop over points."""
    n = A.shape[0]
    off = off_diagonal(A)
    strong = off.multiply(S > 0).tocsr()  # a_ij on the strong pattern (negative entries only)
    a_fc = f_to(strong, is_c, to_c=True)  # i in F, j in C_i
    a_ff = f_to(strong, is_c, to_c=False)  # i in F, k a strong F neighbour
    a_ff.eliminate_zeros()
    pattern_c = a_fc.copy()
    pattern_c.data[:] = 1.0
    negative = masked(off, off.data < 0)
    reach = sparse.csr_matrix(pattern_c @ negative.T)  # (i, k): sum over m in C_i of a_km (negative)
    ff = a_ff.tocoo()
    d = lookup(reach, ff.row, ff.col)
    served = d != 0
    ratio = sparse.csr_matrix((ff.data[served] / d[served], (ff.row[served], ff.col[served])), shape=A.shape)
    lumped = np.bincount(ff.row[~served], ff.data[~served], n)
    numerator = (a_fc + (ratio @ negative).multiply(pattern_c)).tocoo()
    weak = np.asarray((off - strong).sum(axis=1)).ravel()
    denominator = A.diagonal() + weak + lumped
    coarse_index = np.cumsum(is_c) - 1
    weights = -numerator.data / denominator[numerator.row]
    return assemble(n, is_c, numerator.row, coarse_index[numerator.col], weights, truncation)


def extended_i_interpolation(A: sparse.csr_matrix, S: sparse.csr_matrix, is_c: np.ndarray,
                             truncation: float) -> sparse.csr_matrix:
    """P with extended+i weights (De Sterck, Falgout, Nolting and Yang, NLAA 2008; hypre's ext+i):
    an F point i interpolates from C^_i, its strong C neighbours and those of its strong F
    neighbours k (distance two: what PMIS and HMIS splittings need). Each k hands a_ik on to C^_i and
    to i itself in proportion to k's negative couplings abar_kl to them, ``d_ik = sum_{l in C^_i}
    abar_kl + abar_ki`` (lumped onto the diagonal where that is 0); couplings to points outside C^_i
    that are not strong F neighbours go onto the diagonal:
    ``w_ij = -(a_ij + sum_k a_ik abar_kj / d_ik) / (a_ii + sum_k a_ik abar_ki / d_ik + sum_weak a_in)``.
    A row of zero sum interpolates constants exactly. Sparse products, no loop over points."""
    n = A.shape[0]
    off = off_diagonal(A)
    negative = masked(off, off.data < 0)  # abar: the couplings of the sign opposite to a_kk > 0
    s_c = masked(S, is_c[S.indices])  # strong C neighbours of every row
    s_ff = f_to(S, is_c, to_c=False)  # i in F, k a strong F neighbour
    reach = ((f_to(S, is_c, to_c=True) + s_ff @ s_c) > 0).astype(np.float64).tocsr()  # C^_i, F rows only
    a_ff = off.multiply(s_ff).tocsr()
    a_ff.eliminate_zeros()
    ff = a_ff.tocoo()
    back = lookup(negative, ff.col, ff.row)  # abar_ki
    d = np.asarray(reach[ff.row].multiply(negative[ff.col]).sum(axis=1)).ravel() + back
    served = d != 0
    ratio = sparse.csr_matrix((ff.data[served] / d[served], (ff.row[served], ff.col[served])), shape=A.shape)
    to_i = np.bincount(ff.row[served], ff.data[served] * back[served] / d[served], n)
    lumped = np.bincount(ff.row[~served], ff.data[~served], n)
    on_reach = off.multiply(reach).tocsr()
    numerator = (on_reach + (ratio @ negative).multiply(reach)).tocoo()
    weak = np.asarray(off.sum(axis=1)).ravel() - np.asarray(on_reach.sum(axis=1)).ravel() \
        - np.asarray(a_ff.sum(axis=1)).ravel()
    denominator = A.diagonal() + weak + to_i + lumped
    coarse_index = np.cumsum(is_c) - 1
    weights = -numerator.data / denominator[numerator.row]
    return assemble(n, is_c, numerator.row, coarse_index[numerator.col], weights, truncation)


INTERPOLATE = {Interpolation.classical: classical_interpolation, Interpolation.direct: direct_interpolation,
               Interpolation.extended_i: extended_i_interpolation}


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
    interpolation is ``learned`` (``learned_interpolation.learned``: this module cannot import it)."""
    settings = settings or SetupSettings()
    if settings.splitting not in tuple(Splitting):
        raise ValueError(f"splitting must be one of {', '.join(Splitting)}, got {settings.splitting!r}")
    if settings.interpolation not in tuple(Interpolation):
        raise ValueError(f"interpolation must be one of {', '.join(Interpolation)}, got {settings.interpolation!r}")
    if settings.interpolation != Interpolation.learned:
        interpolate = INTERPOLATE[Interpolation(settings.interpolation)]
    elif interpolate is None:
        raise ValueError("interpolation=learned needs the network's interpolate (learned_interpolation.learned)")

    def prolongation(fine: sparse.csr_matrix) -> sparse.csr_matrix | None:
        S = strength(fine, settings.theta)
        is_c = split_rs(S) if settings.splitting == "rs" else split_pmis(S, settings.pmis_seed)
        if settings.second_pass:
            is_c = second_pass(S, is_c)
        if stalled(fine.shape[0], int(is_c.sum())):
            return None
        return interpolate(fine, S, is_c, settings.truncation)

    return galerkin_levels(A, settings, prolongation)
