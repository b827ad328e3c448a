"""Which points of a SciPy CSR matrix become coarse (C) and which stay fine (F), and the CSR helpers
the setup shares. PMIS is vectorised with scipy.sparse / numpy; strength and Ruge-Stueben's two
passes (sequential by nature) run compiled (kernels.py).

Strength (classical, ``theta``): row i depends strongly on j != i when ``-a_ij >= theta max_k
(-a_ik)`` (the negative couplings; a row with none has no strong dependencies).

Splitting: ``rs`` is Ruge-Stueben's first pass (greedy on the measure lambda_i = how many points
depend strongly on i), followed
(``second_pass``, the default) by its second pass (strong F-F pairs must share a C point);
``pmis`` is Luby-style independent sets on random weights, fully vectorised (coarser, cheaper, weaker).
"""

import numpy as np
import scipy.sparse as sparse


def strength(A: sparse.csr_matrix, theta: float) -> sparse.csr_matrix:
    """The strong dependencies of each row as a 0/1 CSR matrix (no diagonal), compiled
    (kernels.strong_pattern: one pass over each row for its largest coupling, one to keep)."""
    from mgnet_cli.amg import kernels  # numba, imported by a setup only

    A = canonical(A)
    S_ptr, S_idx = kernels.strong_pattern(*kernels.pattern(A), A.data.astype(np.float64, copy=False), float(theta))
    return sparse.csr_matrix((np.ones(S_idx.size), S_idx, S_ptr), shape=A.shape)


def canonical(M: sparse.csr_matrix) -> sparse.csr_matrix:
    """M itself, or a copy with sorted indices and duplicates summed."""
    if M.has_canonical_format:
        return M
    M = M.copy()
    M.sum_duplicates()
    return M


def entry_rows(A: sparse.csr_matrix) -> np.ndarray:
    """The row of each stored entry of A (CSR)."""
    return np.repeat(np.arange(A.shape[0], dtype=A.indices.dtype), np.diff(A.indptr))


def split_rs(S: sparse.csr_matrix) -> np.ndarray:
    """Ruge-Stueben first pass: True for C points. The point most depended upon (ties to the smaller
    index) becomes C, those depending on it F, and the points those F points depend on count one more.
    Compiled (kernels.first_pass: the starting measures sorted once, a heap for the rises); isolated
    points are F."""
    from mgnet_cli.amg import kernels  # numba, imported by a setup only (not by every mgnet solve)

    ST = S.T.tocsr()
    unassigned = (np.diff(S.indptr) > 0) | (np.diff(ST.indptr) > 0)
    state = np.where(unassigned, kernels.UNASSIGNED, kernels.FINE).astype(np.int8)
    kernels.first_pass(*kernels.pattern(S), *kernels.pattern(ST), state)
    return state == kernels.COARSE


def second_pass(S: sparse.csr_matrix, is_c: np.ndarray) -> np.ndarray:
    """Ruge-Stueben's second pass, in rounds: two F points that depend strongly on each other must
    share a strong C point (else classical interpolation loses their coupling). Each round promotes
    to C the F points with the most unserved pairs among their unserved partners (ties to the larger
    index), until no pair is left. Compiled (kernels.second_pass_rounds): a served pair stays served
    (C only grows), so each round checks only the pairs the last one left unserved."""
    from mgnet_cli.amg import kernels  # numba, imported by a setup only

    is_c = is_c.astype(np.bool_)  # a copy
    rows = entry_rows(S).astype(np.int64)
    pair = (S.data != 0) & ~is_c[rows] & ~is_c[S.indices]  # strong F-F dependencies
    S_ptr, S_idx = kernels.pattern(S)
    kernels.second_pass_rounds(S_ptr, S_idx, is_c, rows[pair], S_idx[pair])
    return is_c


def split_pmis(S: sparse.csr_matrix, seed: int = 0) -> np.ndarray:
    """PMIS: points with weight = (points depending on them) + U(0, 1) join C where they beat every
    undecided strong neighbour; their dependants become F; repeat. Vectorised: one sparse product
    per round."""
    n = S.shape[0]
    G = ((S + S.T) > 0).astype(np.float64).tocsr()  # strong in either direction
    depended_on = np.diff(S.T.tocsr().indptr)  # how many points depend strongly on each
    weight = depended_on + np.random.default_rng(seed).random(n)
    state = np.zeros(n, dtype=np.int8)
    state[depended_on == 0] = 2  # nobody depends on it: F
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
