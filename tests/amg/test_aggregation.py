"""Smoothed aggregation (amg/aggregation.py) on small matrices built here with scipy.sparse: the
strength rule, the greedy aggregates, T and P against their definitions, P^T A P, solves checked
against a dense solve and a factor bound on Poisson."""

import numpy as np
import pytest
import scipy.sparse as sparse
import torch
from scipy.sparse.csgraph import connected_components

from mgnet_cli.amg.aggregation import (aggregate, dinv_a_radius, smoothed_aggregation, smoothed_prolongator,
                                       symmetric_strength, tentative_prolongator)
from mgnet_cli.amg.settings import AmgSettings, SetupSettings
from mgnet_cli.amg.solver import setup
from mgnet_cli.pde.krylov import conjugate_gradients
from mgnet_cli.pde.solve import iterate
from tests.amg.test_setup import factor, jumps, poisson, rhs

AGGREGATION = AmgSettings(coarsening="aggregation")


def chain(n: int) -> sparse.csr_matrix:
    """The 1-D Laplacian tridiag(-1, 2, -1), Dirichlet ends."""
    return sparse.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr")


def test_symmetric_strength_compares_magnitudes_with_the_diagonals():
    A = sparse.csr_matrix(np.array([[4.0, -1.0, 0.5, 0.1], [-1.0, 1.0, 0.0, 0.0],
                                    [0.5, 0.0, 9.0, 0.0], [0.1, 0.0, 0.0, 4.0]]))
    S = symmetric_strength(A, 0.25).toarray()
    # |a_01| = 1 >= 0.25 sqrt(4 * 1) = 0.5; |a_02| = 0.5 < 0.25 sqrt(36) = 1.5; |a_03| = 0.1 < 1: signs ignored
    assert S.tolist() == [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    everything = symmetric_strength(A, 0.0).toarray()
    assert everything.tolist() == ((A.toarray() != 0) & ~np.eye(4, dtype=bool)).astype(float).tolist()


def test_greedy_aggregates_of_a_chain():
    """Pass 1 in row order: {0, 1} (0's only neighbour is free), 2 has a taken neighbour, {2, 3, 4},
    {5, 6, 7}; 8 waits, 9's neighbour 8 is free: {8, 9}."""
    assert aggregate(symmetric_strength(chain(10), 0.25)).tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]


def test_pass_two_joins_a_neighbouring_aggregate_and_isolated_nodes_join_none():
    """A 5 x 5 Poisson grid: every node is within two links of a pass-1 root, so the leftovers join
    a neighbour's aggregate; a node with no strong neighbour (appended, decoupled) stays out."""
    A = sparse.block_diag([poisson(5), sparse.identity(1)], format="csr")
    S = symmetric_strength(A, 0.25)
    which = aggregate(S)
    assert which[-1] == -1 and np.all(which[:-1] >= 0)
    for J in range(which.max() + 1):  # each aggregate is connected in the strength graph
        members = np.flatnonzero(which == J)
        inside = S[members][:, members]
        assert connected_components(inside, directed=False)[0] == 1
    assert 2 <= which.max() + 1 <= 25 // 3  # aggregates of 3 to 9 points


def test_tentative_prolongator_reproduces_the_near_null_vector_with_orthonormal_columns():
    which = np.array([0, 0, 1, 1, 1, -1, 2])
    near_null = np.array([1.0, 2.0, 3.0, 4.0, 0.5, 7.0, 2.0])
    T, coarse = tentative_prolongator(which, near_null)
    assert T.shape == (7, 3)
    assert np.allclose((T.T @ T).toarray(), np.eye(3), atol=1e-15)
    reproduced = T @ coarse
    assert np.allclose(reproduced[which >= 0], near_null[which >= 0], atol=1e-15) and reproduced[5] == 0
    assert np.allclose(coarse, [np.sqrt(5), np.sqrt(25.25), 2.0])


def test_the_spectral_radius_estimate_is_within_one_percent_below():
    """20 Lanczos steps: the largest Ritz value, a lower bound, measured within 0.4 % here."""
    for A in (poisson(15), jumps(15), poisson(31)):
        scale = 1 / np.sqrt(A.diagonal())  # D^-1 A is similar to the symmetric D^-1/2 A D^-1/2: same eigenvalues
        exact = np.abs(np.linalg.eigvalsh(scale[:, None] * A.toarray() * scale[None, :])).max()
        assert 0.99 * exact <= dinv_a_radius(A) <= exact * (1 + 1e-12)
    tiny = chain(5)  # fewer rows than steps: the dense answer
    assert dinv_a_radius(tiny) == pytest.approx(1 + np.cos(np.pi / 6), rel=1e-12)


def test_smoothed_prolongator_is_one_damped_jacobi_step_on_t():
    A = jumps(11)
    T, _ = tentative_prolongator(aggregate(symmetric_strength(A, 0.08)), np.ones(A.shape[0]))
    P = smoothed_prolongator(A, T, 4 / 3)
    D = np.diag(A.diagonal())
    rho = np.abs(np.linalg.eigvals(np.linalg.solve(D, A.toarray()))).max()
    expected = (np.eye(A.shape[0]) - 4 / 3 / rho * np.linalg.solve(D, A.toarray())) @ T.toarray()
    assert np.abs(P.toarray() - expected).max() <= 0.01 * np.abs(expected).max()
    # the sparsity: row i reaches only the aggregates of i and its neighbours
    reach = ((abs(A) + sparse.identity(A.shape[0])) @ abs(T)).toarray() > 0
    assert np.all(reach[P.toarray() != 0])


def test_p_keeps_constants_where_the_row_sum_is_zero():
    n = 15
    A = poisson(n)
    hierarchy = smoothed_aggregation(A, SetupSettings(max_levels=2))
    P = hierarchy.P[0]
    T, coarse = tentative_prolongator(aggregate(symmetric_strength(A, 0.08)), np.ones(n * n))
    sums = P @ coarse
    interior = np.isclose(np.asarray(A.sum(axis=1)).ravel(), 0)
    assert interior.sum() == (n - 2) ** 2
    assert np.allclose(sums[interior], 1.0, atol=1e-14)
    assert np.all(sums[~interior] < 1.0)  # next to the boundary the Dirichlet value 0 pulls it down


def test_galerkin_coarse_matrices_are_p_transpose_a_p_and_spd():
    hierarchy = smoothed_aggregation(jumps(31))
    assert len(hierarchy.A) >= 3 and hierarchy.A[-1].shape[0] <= 64
    for fine, P, coarse in zip(hierarchy.A, hierarchy.P, hierarchy.A[1:]):
        assert abs(coarse - P.T @ fine @ P).max() <= 1e-12 * abs(fine).max()
        assert abs(coarse - coarse.T).max() <= 1e-12 * abs(coarse).max()
        assert np.linalg.eigvalsh(coarse.toarray()).min() > 0
    assert hierarchy.operator_complexity() < 1.6  # aggregates of ~9 points: coarse levels are small


@pytest.mark.parametrize("krylov", ["none", "cg"])
@pytest.mark.parametrize("make", [poisson, jumps], ids=["poisson", "jumps"])
def test_the_solution_matches_a_dense_solve(make, krylov):
    A = make(31)
    cycle, _ = setup(A, AGGREGATION)
    f = rhs(A.shape[0])
    with torch.inference_mode():
        if krylov == "cg":
            u, norms, status = conjugate_gradients(cycle, cycle.levels[0].A, f, 1e-12, 100)
            assert status == "converged"
        else:
            u, norms, _ = iterate(cycle, cycle.levels[0].A, f, 1e-12, 200)
    exact = np.linalg.solve(A.toarray(), f.numpy())
    assert norms[-1] <= 1e-12 * norms[0]
    assert np.abs(u.numpy() - exact).max() <= 1e-8 * np.abs(exact).max()


def test_v_cycle_factor_on_poisson():
    """Measured 0.39 (n = 31) with V(1,1) forward/backward Gauss-Seidel; the bound leaves a margin."""
    cycle, _ = setup(poisson(31), AGGREGATION)
    with torch.inference_mode():
        _, norms, _ = iterate(cycle, cycle.levels[0].A, rhs(31 * 31), 1e-10, 80)
    assert factor(norms) < 0.5


def test_a_matrix_without_strong_couplings_is_one_level():
    A = sparse.diags([np.full(99, 0.01), 4.0 * np.ones(100), np.full(99, 0.01)], [-1, 0, 1], format="csr")
    assert len(smoothed_aggregation(A).A) == 1  # no aggregate: nothing to coarsen


def test_an_unknown_coarsening_is_refused():
    with pytest.raises(ValueError, match="coarsening must be one of classical, aggregation"):
        setup(poisson(9), AmgSettings(coarsening="geometric"))


@pytest.mark.parametrize("theta", [0.0, 0.25])
def test_the_aggregates_are_pyamgs_standard_aggregation(theta):
    """The same greedy passes as PyAMG's standard_aggregation (an independent implementation, in
    C++), on the same strength graph: a 9-point matrix with positive couplings
    (a mixed derivative), jumps, and a block with isolated nodes."""
    pyamg_aggregate = pytest.importorskip("pyamg.aggregation.aggregate")
    n = 20
    central = sparse.diags([-np.ones(n - 1), np.ones(n - 1)], [-1, 1])
    mixed = (poisson(n) + 0.45 * sparse.kron(central, central)).tocsr()  # -u_xx - u_yy - 1.8 u_xy: SPD
    assert np.linalg.eigvalsh(mixed.toarray()).min() > 0
    for A in (mixed, jumps(n), sparse.block_diag([poisson(9), sparse.identity(3)], format="csr")):
        S = symmetric_strength(A, theta)
        AggOp, _ = pyamg_aggregate.standard_aggregation(S)
        labels = np.full(A.shape[0], -1)
        rows, cols = AggOp.nonzero()
        labels[rows] = cols
        assert aggregate(S).tolist() == labels.tolist()
