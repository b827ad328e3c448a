"""Smoothed aggregation (Vanek, Mandel and Brezina, Computing 1996), the second family of coarse
spaces beside Ruge-Stueben (setup.py), on a SciPy CSR matrix:

1. Symmetric strength: i and j (i != j) are strong neighbours when ``|a_ij| >= theta sqrt(|a_ii a_jj|)``
   (signs ignored, so positive couplings count; theta = 0 keeps every stored entry).
2. Standard greedy aggregation on that graph: pass 1 (in row order) makes a node whose strong
   neighbours are all free the root of an aggregate of itself and them; pass 2 puts each node left
   into the aggregate of a pass-1 neighbour; pass 3 groups what is still left (rarely anything)
   with its free neighbours. A node with no strong neighbour joins none: its row of P is only what
   the smoothing step gives it.
3. The tentative prolongator T from the near-null space B (constants by default): column J of T
   is B restricted to aggregate J, normalised; the coarse near-null space is the norms, so T B_c = B.
4. P = (I - omega / rho D^-1 A) T: one damped Jacobi step, rho = rho(D^-1 A) estimated by Lanczos.
5. Galerkin coarse operators P^T A P, levels as setup.galerkin_levels stops them.

Pass 1 is a loop (greedy in row order is sequential), over Python lists as split_rs is; the rest
is vectorised.
"""

import numpy as np
import scipy.sparse as sparse

from mgnet_cli.amg.settings import SetupSettings
from mgnet_cli.amg.setup import Hierarchy, galerkin_levels, stalled


def symmetric_strength(A: sparse.csr_matrix, theta: float) -> sparse.csr_matrix:
    """The strong neighbours of each row as a 0/1 CSR matrix (no diagonal; symmetric when A is)."""
    coo = A.tocoo()
    diagonal = np.abs(A.diagonal())
    keep = (coo.row != coo.col) & (coo.data != 0)
    keep &= np.abs(coo.data) >= theta * np.sqrt(diagonal[coo.row] * diagonal[coo.col])
    S = sparse.csr_matrix((np.ones(int(keep.sum())), (coo.row[keep], coo.col[keep])), shape=A.shape)
    S.sort_indices()
    return S


def aggregate(S: sparse.csr_matrix) -> np.ndarray:
    """The aggregate of each node (0, 1, ...; -1 for a node with no strong neighbour), by the
    standard greedy passes (module docstring)."""
    n = S.shape[0]
    pointers, columns = S.indptr.tolist(), S.indices.tolist()
    which = [-1] * n
    count = 0
    for i in range(n):  # pass 1: roots whose neighbourhoods are free
        if which[i] >= 0:
            continue
        neighbours = columns[pointers[i]:pointers[i + 1]]
        if not neighbours or any(which[j] >= 0 for j in neighbours):
            continue
        which[i] = count
        for j in neighbours:
            which[j] = count
        count += 1
    which = np.array(which, dtype=np.int64)
    rows = np.repeat(np.arange(n), np.diff(S.indptr))
    joins = (which[rows] < 0) & (which[S.indices] >= 0)  # pass 2: the first aggregated neighbour
    joining, first = np.unique(rows[joins], return_index=True)
    which[joining] = which[S.indices[joins][first]]
    left = np.flatnonzero((which < 0) & (np.diff(S.indptr) > 0)).tolist()
    for i in left:  # pass 3: new aggregates of what is left and its free neighbours
        if which[i] >= 0:
            continue
        neighbours = S.indices[S.indptr[i]:S.indptr[i + 1]]
        which[neighbours[which[neighbours] < 0]] = count
        which[i] = count
        count += 1
    return which


def tentative_prolongator(which: np.ndarray, near_null: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
    """T (n x aggregates) with column J the near-null vector on aggregate J, of unit norm, and the
    coarse near-null vector (the norms), so that ``T @ coarse == near_null`` on aggregated rows."""
    count = int(which.max()) + 1 if which.size else 0
    rows = np.flatnonzero(which >= 0)
    norms = np.sqrt(np.bincount(which[rows], near_null[rows] ** 2, count))
    safe = np.where(norms > 0, norms, 1.0)
    T = sparse.csr_matrix((near_null[rows] / safe[which[rows]], (rows, which[rows])), shape=(which.size, count))
    return T, norms


LANCZOS_STEPS = 20


def dinv_a_radius(A: sparse.csr_matrix, steps: int = LANCZOS_STEPS) -> float:
    """rho(D^-1 A) as the largest eigenvalue of the symmetric D^-1/2 A D^-1/2, estimated by ``steps``
    Lanczos steps from a fixed random start: the largest Ritz value, a lower bound that is close
    after a few steps for an extreme eigenvalue (``steps`` matrix products; ARPACK to 1 % took 50x
    as many on Poisson n = 255)."""
    scale = 1 / np.sqrt(A.diagonal())
    M = (sparse.diags(scale) @ A @ sparse.diags(scale)).tocsr()
    if M.shape[0] <= steps:
        return float(np.linalg.eigvalsh(M.toarray()).max())
    q = np.random.default_rng(0).random(M.shape[0])
    q /= np.linalg.norm(q)
    previous, beta = np.zeros_like(q), 0.0
    alphas, betas = [], []
    for _ in range(steps):
        w = M @ q - beta * previous
        alpha = float(q @ w)
        w -= alpha * q
        alphas.append(alpha)
        beta = float(np.linalg.norm(w))
        if beta <= 1e-12 * abs(alpha):
            break  # an invariant subspace: the Ritz values are eigenvalues
        betas.append(beta)
        previous, q = q, w / beta
    k = len(alphas)
    tridiagonal = np.diag(alphas) + np.diag(betas[:k - 1], 1) + np.diag(betas[:k - 1], -1)
    return float(np.linalg.eigvalsh(tridiagonal).max())


def smoothed_prolongator(A: sparse.csr_matrix, T: sparse.csr_matrix, omega: float) -> sparse.csr_matrix:
    """P = T - (omega / rho) D^-1 A T: one damped Jacobi step on each column of T."""
    weight = omega / dinv_a_radius(A)
    P = (T - sparse.diags(weight / A.diagonal()) @ (A @ T)).tocsr()
    P.eliminate_zeros()
    P.sort_indices()
    return P


def smoothed_aggregation(A: sparse.csr_matrix, settings: SetupSettings | None = None,
                         near_null: np.ndarray | None = None) -> Hierarchy:
    """The smoothed-aggregation hierarchy of ``A`` (SPD, CSR); ``near_null`` (n,) defaults to ones."""
    settings = settings or SetupSettings()
    carried = [np.ones(A.shape[0]) if near_null is None else np.asarray(near_null, dtype=np.float64)]

    def prolongation(fine: sparse.csr_matrix) -> sparse.csr_matrix | None:
        T, coarse = tentative_prolongator(aggregate(symmetric_strength(fine, settings.aggregation_theta)), carried[-1])
        if stalled(fine.shape[0], T.shape[1]):
            return None
        carried.append(coarse)
        return smoothed_prolongator(fine, T, settings.aggregation_omega)

    return galerkin_levels(A, settings, prolongation)
