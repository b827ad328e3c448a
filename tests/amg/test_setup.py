"""The Ruge-Stueben setup and its cycle on small matrices built here with scipy.sparse (not by the
solver's own problem code): solves checked against a dense solve, convergence factors, P on constants."""

import numpy as np
import pytest
import scipy.sparse as sparse
import torch

from mgnet_cli.amg.settings import AmgCycle, AmgSettings, AmgSmoother, SetupSettings
from mgnet_cli.amg.interpolation import classical_interpolation, direct_interpolation, extended_i_interpolation
from mgnet_cli.amg.setup import ruge_stuben
from mgnet_cli.amg.splitting import second_pass, split_pmis, split_rs, strength
from mgnet_cli.amg.solver import GaussSeidel, SparseOperator, setup
from mgnet_cli.pde.krylov import conjugate_gradients
from mgnet_cli.pde.solve import iterate


def poisson(n: int) -> sparse.csr_matrix:
    """The 5-point Laplacian (times h^2) on n x n interior points, Dirichlet boundary."""
    T = sparse.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    identity = sparse.identity(n)
    return (sparse.kron(T, identity) + sparse.kron(identity, T)).tocsr()


def jumps(n: int, boxes: int = 4, contrast: float = 1e-3, seed: int = 0) -> sparse.csr_matrix:
    """-div(k grad u) on n x n interior points, finite volumes: k constant on each of boxes x boxes
    squares, 1 or ``contrast`` at random; each edge's coefficient the arithmetic mean of the two cells
    beside it (the cells are the (n + 1)^2 squares between grid lines)."""
    rng = np.random.default_rng(seed)
    box_values = np.where(rng.random((boxes, boxes)) < 0.5, 1.0, contrast)
    centres = (np.arange(n + 1) + 0.5) / (n + 1)
    which = np.minimum((centres * boxes).astype(int), boxes - 1)
    k = box_values[which[:, None], which[None, :]]  # cell (i, j): between grid lines i, i+1 and j, j+1
    index = np.arange(n * n).reshape(n, n)
    rows, cols, values = [], [], []
    diagonal = np.zeros((n, n))
    # point (i, j) sits at grid node (i + 1, j + 1), between cells i..i+1 and j..j+1
    for axis in (0, 1):
        # edge from point p to its neighbour along axis: coefficient = mean of the two cells it borders
        cells = k[:, :-1] + k[:, 1:] if axis == 0 else k[:-1, :] + k[1:, :]
        edge = cells / 2  # axis 0: (n + 1, n), the edge between node rows i and i + 1 at column j
        if axis == 0:
            diagonal += edge[:-1, :] + edge[1:, :]
            w = edge[1:-1, :]  # between points (i, j) and (i + 1, j)
            a, b = index[:-1, :], index[1:, :]
        else:
            diagonal += edge[:, :-1] + edge[:, 1:]
            w = edge[:, 1:-1]
            a, b = index[:, :-1], index[:, 1:]
        rows += [a.ravel(), b.ravel()]
        cols += [b.ravel(), a.ravel()]
        values += [-w.ravel(), -w.ravel()]
    rows.append(index.ravel())
    cols.append(index.ravel())
    values.append(diagonal.ravel())
    return sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n * n, n * n))


def factor(norms: list[float]) -> float:
    """Geometric mean reduction over the second half of the cycles."""
    half = len(norms) // 2
    return (norms[-1] / norms[half]) ** (1 / (len(norms) - 1 - half))


def rhs(size: int, seed: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(size))


def test_the_test_matrices_are_spd():
    for A in (poisson(7), jumps(7)):
        assert abs(A - A.T).max() == 0
        assert np.linalg.eigvalsh(A.toarray()).min() > 0
    assert jumps(15).diagonal().min() > 0


@pytest.mark.parametrize("interpolation", ["direct", "classical", "extended_i"])
@pytest.mark.parametrize("splitting", ["rs", "pmis"])
@pytest.mark.parametrize("make", [poisson, jumps], ids=["poisson", "jumps"])
def test_the_solution_matches_a_dense_solve(make, splitting, interpolation):
    A = make(31)
    cycle, hierarchy = setup(A, AmgSettings(splitting=splitting, interpolation=interpolation))
    assert len(hierarchy.A) >= 3 and hierarchy.A[-1].shape[0] <= 64
    f = rhs(A.shape[0])
    with torch.inference_mode():
        u, norms, _ = iterate(cycle, cycle.levels[0].A, f, 1e-13, 200)
    exact = np.linalg.solve(A.toarray(), f.numpy())
    assert norms[-1] <= 1e-13 * norms[0]
    assert np.abs(u.numpy() - exact).max() <= 1e-8 * np.abs(exact).max()


def test_galerkin_coarse_matrices_are_p_transpose_a_p_and_spd():
    hierarchy = ruge_stuben(jumps(31))
    for fine, P, coarse in zip(hierarchy.A, hierarchy.P, hierarchy.A[1:]):
        assert abs(coarse - P.T @ fine @ P).max() <= 1e-12 * abs(fine).max()
        assert abs(coarse - coarse.T).max() <= 1e-12 * abs(coarse).max()
        if coarse.shape[0] <= 600:
            assert np.linalg.eigvalsh(coarse.toarray()).min() > 0


@pytest.mark.parametrize("make", [poisson, jumps], ids=["poisson", "jumps"])
def test_after_the_second_pass_every_strong_f_pair_shares_a_c_point(make):
    """On the first coarse level (a 9-point Galerkin matrix): on the 5-point fine grid the first pass
    leaves no strong F-F pair, so the second pass has nothing to do there."""
    A = ruge_stuben(make(31), SetupSettings(second_pass=False)).A[1]
    S = strength(A, 0.25)
    first = split_rs(S)
    both = second_pass(S, first)
    assert np.all(both[first]) and both.sum() >= first.sum()  # it only adds C points
    to_c = (S @ sparse.diags(both.astype(float))).tocsr()
    shared = (to_c @ to_c.T).toarray()
    f = ~both
    pairs = np.argwhere((S.toarray() > 0) & f[:, None] & f[None, :])
    assert all(shared[i, j] > 0 for i, j in pairs)
    assert both.sum() > first.sum()  # the first pass alone left some pairs unserved (jumps: 119 -> 152 C)


def test_strength_is_classical_with_theta():
    A = sparse.csr_matrix(np.array([[4.0, -1.0, -0.2, 0.5], [-1.0, 4.0, 0.0, 0.0],
                                    [-0.2, 0.0, 4.0, 0.0], [0.5, 0.0, 0.0, 4.0]]))
    S = strength(A, 0.25).toarray()
    # row 0: -a_0j = 1, 0.2, -0.5: only j = 1 reaches 0.25 * 1; positive couplings are never strong
    assert S[0].tolist() == [0, 1, 0, 0]
    assert S[2].tolist() == [1, 0, 0, 0] and S[3].tolist() == [0, 0, 0, 0]
    assert np.all(np.diag(strength(poisson(5), 0.25).toarray()) == 0)


@pytest.mark.parametrize("split", [split_rs, split_pmis])
def test_every_f_point_of_poisson_has_a_strong_c_neighbour_and_c_points_are_independent(split):
    A = poisson(15)
    S = strength(A, 0.25)
    is_c = split(S)
    c_neighbours = S @ is_c.astype(float)
    assert np.all(c_neighbours[~is_c] >= 1)
    assert 0.2 < is_c.mean() < 0.6
    if split is split_rs:  # the first pass makes C an independent set of the strength graph
        assert np.all((S @ is_c.astype(float))[is_c] == 0)


@pytest.mark.parametrize("interpolate", [direct_interpolation, classical_interpolation, extended_i_interpolation])
@pytest.mark.parametrize("split", [split_rs, split_pmis])
def test_p_interpolates_constants_where_the_row_sum_is_zero(interpolate, split):
    n = 15
    A = poisson(n)
    S = strength(A, 0.25)
    is_c = split(S)
    P = interpolate(A, S, is_c, truncation=0.0)
    sums = np.asarray(P.sum(axis=1)).ravel()
    interior = np.isclose(np.asarray(A.sum(axis=1)).ravel(), 0)
    assert interior.sum() == (n - 2) ** 2
    assert np.allclose(sums[interior], 1.0, atol=1e-14)
    assert np.all(sums[~interior & ~is_c] < 1.0)  # next to the boundary the Dirichlet value 0 is interpolated too
    assert np.all(sums[is_c] == 1.0) and np.all(P[is_c].max(axis=1).toarray() == 1.0)


def test_classical_interpolation_hands_strong_f_couplings_on_to_the_c_points():
    """C points 0 and 3, F points 1 and 2, every coupling strong and each row summing to zero. F
    point 1 hands its coupling -1 to point 2 on to 0 and 3 as 2 couples to them (3 : 1): classical
    weights (1 + 3/4, 1 + 1/4) / 3; direct ones share the lost coupling evenly, 1/2 and 1/2."""
    A = sparse.csr_matrix(np.array([[4.0, -1, -3, 0], [-1, 3, -1, -1], [-3, -1, 5, -1], [0, -1, -1, 2]]))
    S = strength(A, 0.25)
    is_c = np.array([True, False, False, True])
    classical = classical_interpolation(A, S, is_c, truncation=0.0).toarray()
    assert np.allclose(classical, [[1, 0], [7 / 12, 5 / 12], [0.7, 0.3], [0, 1]], atol=1e-15)
    direct = direct_interpolation(A, S, is_c, truncation=0.0).toarray()
    assert np.allclose(direct, [[1, 0], [0.5, 0.5], [0.75, 0.25], [0, 1]], atol=1e-15)


def test_extended_i_interpolation_reaches_c_points_two_strong_links_away():
    """The chain 0 - 1 - 2 - 3 - 4 (tridiag(-1, 2, -1)) with C points 0 and 4: point 2 has no C
    neighbour, so classical interpolation leaves its row empty; extended+i reaches 0 and 4 through
    1 and 3: each hands a_2k = -1 on to {0, 4} and 2 in proportion to its couplings (-1 to each),
    ``d = -2``, so w = (1/2, 1/2), linear interpolation. Point 1's set is {0} (3 has no strong C
    neighbour): w_10 = 1."""
    A = sparse.diags([-np.ones(4), 2 * np.ones(5), -np.ones(4)], [-1, 0, 1], format="csr")
    S = strength(A, 0.25)
    is_c = np.array([True, False, False, False, True])
    extended = extended_i_interpolation(A, S, is_c, truncation=0.0).toarray()
    assert np.allclose(extended, [[1, 0], [1, 0], [0.5, 0.5], [0, 1], [0, 1]], atol=1e-15)
    assert np.all(classical_interpolation(A, S, is_c, truncation=0.0).toarray()[2] == 0)


def test_extended_i_weights_by_hand():
    """The 4 x 4 matrix of the classical test, C = {0, 3}: F point 1's strong F neighbour 2 has
    d_12 = abar_20 + abar_23 + abar_21 = -5, so it hands on 1/5 of its rows: numerators -1 - 3/5,
    -1 - 1/5, diagonal 3 - 1/5: w = (4/7, 3/7); point 2: d = -3, (10/3, 4/3) / (14/3) = (5/7, 2/7)."""
    A = sparse.csr_matrix(np.array([[4.0, -1, -3, 0], [-1, 3, -1, -1], [-3, -1, 5, -1], [0, -1, -1, 2]]))
    S = strength(A, 0.25)
    is_c = np.array([True, False, False, True])
    extended = extended_i_interpolation(A, S, is_c, truncation=0.0).toarray()
    assert np.allclose(extended, [[1, 0], [4 / 7, 3 / 7], [5 / 7, 2 / 7], [0, 1]], atol=1e-15)


def test_pmis_with_extended_i_converges_where_direct_interpolation_does_not():
    """Jumps n = 63, PMIS without the second pass: measured 0.287 per V(1,1) cycle with extended+i
    (operator complexity 2.36) against 0.699 with direct interpolation."""
    A = jumps(63)
    settings = AmgSettings(splitting="pmis", second_pass=False, interpolation="extended_i")
    cycle, hierarchy = setup(A, settings)
    with torch.inference_mode():
        _, norms, _ = iterate(cycle, cycle.levels[0].A, rhs(63 * 63), 1e-10, 80)
    assert factor(norms) < 0.40 and hierarchy.operator_complexity() < 3.0


def test_truncation_keeps_row_sums_and_drops_small_weights():
    T = sparse.diags([-np.ones(14), 2 * np.ones(15), -np.ones(14)], [-1, 0, 1])
    A = (sparse.kron(T, sparse.identity(15)) + 0.3 * sparse.kron(sparse.identity(15), T)).tocsr()
    S = strength(A, 0.25)  # 0.3 >= 0.25: both directions strong, weights 1 : 0.3
    is_c = split_rs(S)
    full = direct_interpolation(A, S, is_c, truncation=0.0)
    truncated = direct_interpolation(A, S, is_c, truncation=0.5)
    assert truncated.nnz < full.nnz
    assert np.abs(truncated.data).min() >= 0.5 * np.abs(full.data).max() * 0.3  # the weak ones went
    assert np.allclose(np.asarray(full.sum(axis=1)).ravel(), np.asarray(truncated.sum(axis=1)).ravel())


def test_v_cycle_factor_on_poisson_31_is_below_0_2():
    cycle, hierarchy = setup(poisson(31))
    with torch.inference_mode():
        _, norms, _ = iterate(cycle, cycle.levels[0].A, rhs(31 * 31), 1e-10, 60)
    assert factor(norms) < 0.2
    assert hierarchy.operator_complexity() < 3.0


def test_v_cycle_factor_on_jumps_63():
    """Measured 0.199 (V(1,1), forward/backward Gauss-Seidel, RS with its second pass, classical
    interpolation, n = 63, 4 x 4 boxes, seed 0; 0.198 at n = 31, 0.209 at n = 127; the first pass with
    direct interpolation: 0.214 / 0.346 / 0.401); the bound leaves a margin across hosts."""
    cycle, _ = setup(jumps(63))
    with torch.inference_mode():
        _, norms, _ = iterate(cycle, cycle.levels[0].A, rhs(63 * 63), 1e-10, 80)
    assert factor(norms) < JUMPS_BOUND


JUMPS_BOUND = 0.30


@pytest.mark.parametrize("smoother", list(AmgSmoother))
@pytest.mark.parametrize("shape", list(AmgCycle))
def test_every_smoother_and_shape_converges_and_cg_converges_faster(smoother, shape):
    A = jumps(31)
    settings = AmgSettings(smoother=smoother, cycle=shape, pre_smooth=2 if smoother == "chebyshev" else 1,
                           post_smooth=2 if smoother == "chebyshev" else 1)
    cycle, _ = setup(A, settings)
    f = rhs(A.shape[0])
    with torch.inference_mode():
        _, norms, _ = iterate(cycle, cycle.levels[0].A, f, 1e-10, 200)
        u, cg_norms, status = conjugate_gradients(cycle, cycle.levels[0].A, f, 1e-10, 200)
    assert norms[-1] <= 1e-10 * norms[0] and status == "converged"
    assert len(cg_norms) <= len(norms)
    exact = np.linalg.solve(A.toarray(), f.numpy())
    assert np.abs(u.numpy() - exact).max() <= 1e-7 * np.abs(exact).max()


def test_gauss_seidel_v_cycle_is_symmetric_so_cg_may_use_it():
    """One cycle from zero is a linear map B; with backward post-sweeps B = B^T."""
    A = poisson(7)
    cycle, _ = setup(A, AmgSettings(coarsest_size=10))
    with torch.inference_mode():
        B = torch.stack([cycle(None, e, e) for e in torch.eye(49, dtype=torch.float64)], dim=1)
    assert torch.allclose(B, B.T, atol=1e-13)


@pytest.mark.parametrize("exactly_symmetric", [True, False])
def test_gauss_seidel_sweeps_solve_the_triangles(exactly_symmetric):
    """A forward sweep from zero is (D + L)^-1 f, a backward one (D + U)^-1 f, on a symmetric matrix
    and on one symmetric only to round-off (as Galerkin levels are)."""
    A = jumps(9)
    if not exactly_symmetric:
        A = (A + sparse.triu(A, k=1) * 1e-3).tocsr()
    operator = SparseOperator(A)
    f = rhs(81)
    dense = A.toarray()
    for reverse, triangle in ((False, np.tril(dense)), (True, np.triu(dense))):
        with torch.inference_mode():
            u = GaussSeidel(operator, 1, reverse=reverse)(None, f, f, operator)
        exact = np.linalg.solve(triangle, f.numpy())
        assert np.abs(u.numpy() - exact).max() <= 1e-12 * np.abs(exact).max()


def test_settings_outside_the_choices_are_refused():
    with pytest.raises(ValueError, match="splitting must be one of rs, pmis"):
        ruge_stuben(poisson(9), SetupSettings(splitting="cljp"))
    with pytest.raises(ValueError, match="interpolation must be one of classical, direct"):
        ruge_stuben(poisson(9), SetupSettings(interpolation="extended"))
    with pytest.raises(ValueError, match="smoother must be one of"):
        setup(poisson(9), AmgSettings(smoother="ilu"))


@pytest.mark.parametrize("suffix", [".mtx", ".npz"])
def test_a_matrix_from_a_file_is_solved_as_the_dense_solve_says(tmp_path, suffix):
    from mgnet_cli.amg.matrices import read_matrix, write_matrix

    write_matrix(tmp_path / f"A{suffix}", jumps(23, seed=3))
    A = read_matrix(tmp_path / f"A{suffix}")
    cycle, _ = setup(A)
    f = rhs(A.shape[0], seed=4)
    with torch.inference_mode():
        u, norms, status = conjugate_gradients(cycle, cycle.levels[0].A, f, 1e-12, 100)
    exact = np.linalg.solve(A.toarray(), f.numpy())
    assert status == "converged" and np.abs(u.numpy() - exact).max() <= 1e-8 * np.abs(exact).max()


def test_a_coarsest_level_too_large_to_factor_is_smoothed_instead():
    """Coarsening stops at once on a matrix with no strong couplings (every off-diagonal entry
    positive): 5,000 rows are not factored densely but swept by symmetric Gauss-Seidel, and CG
    with that cycle still reaches the dense solution."""
    from scipy.sparse.linalg import spsolve

    from mgnet_cli.amg.solver import DENSE_ROWS, GaussSeidel

    n = DENSE_ROWS + 904
    off = np.full(n - 1, 0.5)
    A = sparse.diags([off, 4.0 * np.ones(n), off], [-1, 0, 1], format="csr")
    cycle, hierarchy = setup(A)
    assert len(hierarchy.A) == 1 and isinstance(cycle.levels[0].smoother, GaussSeidel)
    f = rhs(n)
    with torch.inference_mode():
        u, norms, status = conjugate_gradients(cycle, cycle.levels[0].A, f, 1e-12, 50)
    exact = spsolve(A.tocsc(), f.numpy())
    assert status == "converged" and np.abs(u.numpy() - exact).max() <= 1e-9 * np.abs(exact).max()
