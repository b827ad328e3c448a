"""Galerkin coarse operators and operator-dependent prolongation, checked against scipy.sparse."""

import numpy as np
import pytest
import scipy.sparse as sparse
import torch

from mgnet_cli.pde.galerkin import bilinear_weights, black_box_weights, coarse_operator
from mgnet_cli.pde.problems import anisotropic_stencil, coefficient_field, diffusion_stencil
from mgnet_cli.pde.stencils import StencilOperator, laplacian_stencil


def sparse_diffusion(k: np.ndarray) -> sparse.csr_matrix:
    """-∇·(k∇u) by finite volumes, assembled row by row, independently of the stencil code."""
    n = k.shape[0]
    rows, cols, values = [], [], []
    for i in range(n):
        for j in range(n):
            diagonal = 0.0
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                p, q = i + di, j + dj
                inside = 0 <= p < n and 0 <= q < n
                face = 2 * k[i, j] * k[p, q] / (k[i, j] + k[p, q]) if inside else k[i, j]
                diagonal += face
                if inside:
                    rows.append(i * n + j), cols.append(p * n + q), values.append(-face)
            rows.append(i * n + j), cols.append(i * n + j), values.append(diagonal)
    return sparse.csr_matrix((np.array(values) * (n + 1) ** 2, (rows, cols)), shape=(n * n, n * n))


def sparse_prolongation(weights: np.ndarray) -> sparse.csr_matrix:
    """P (fine x coarse) from per-coarse-point weights (3, 3, m, m)."""
    m = weights.shape[-1]
    n = 2 * m + 1
    rows, cols, values = [], [], []
    for I in range(m):
        for J in range(m):
            for a in (-1, 0, 1):
                for b in (-1, 0, 1):
                    rows.append((2 * I + 1 + a) * n + 2 * J + 1 + b)
                    cols.append(I * m + J)
                    values.append(weights[1 + a, 1 + b, I, J])
    return sparse.csr_matrix((values, (rows, cols)), shape=(n * n, m * m))


def test_the_diffusion_stencil_is_the_finite_volume_matrix():
    k = coefficient_field("lognormal", 15, seed=2)
    dense = StencilOperator(diffusion_stencil(k)).dense().numpy()
    assert np.abs(dense - sparse_diffusion(k.numpy()).toarray()).max() < 1e-9 * np.abs(dense).max()
    assert np.allclose(dense, dense.T)


@pytest.mark.parametrize("rule", ["bilinear", "black_box"])
@pytest.mark.parametrize("coefficient", ["lognormal", "jumps"])
def test_galerkin_coarse_operator_is_R_A_P(rule, coefficient):
    k = coefficient_field(coefficient, 15, seed=3)
    stencil = diffusion_stencil(k)
    weights = bilinear_weights(7) if rule == "bilinear" else black_box_weights(stencil)
    coarse, _, _ = coarse_operator(StencilOperator(stencil), weights)
    P = sparse_prolongation(weights.numpy())
    expected = (0.25 * P.T @ sparse_diffusion(k.numpy()) @ P).toarray()
    assert np.abs(coarse.dense().numpy() - expected).max() < 1e-10 * np.abs(expected).max()
    # and the level below, from a 9-point stencil
    coarser, _, _ = coarse_operator(coarse, black_box_weights(coarse.stencil))
    P2 = sparse_prolongation(black_box_weights(coarse.stencil).numpy())
    expected2 = 0.25 * P2.T @ expected @ P2
    assert np.abs(coarser.dense().numpy() - expected2).max() < 1e-10 * np.abs(expected2).max()


def test_galerkin_on_the_rotated_nine_point_stencil():
    stencil = anisotropic_stencil(15, 1e-2, 0.6)
    A = StencilOperator(stencil)
    coarse, _, _ = coarse_operator(A, black_box_weights(stencil))
    P = sparse_prolongation(black_box_weights(stencil).numpy())
    expected = 0.25 * P.T @ A.dense().numpy() @ P
    assert np.abs(coarse.dense().numpy() - expected).max() < 1e-10 * np.abs(expected).max()


@pytest.mark.parametrize("value", [1.0, 7.5])
def test_black_box_is_bilinear_for_constant_k(value):
    for stencil in (diffusion_stencil(torch.full((31, 31), value, dtype=torch.float64)),
                    laplacian_stencil(31)):
        assert torch.allclose(black_box_weights(stencil), bilinear_weights(15), atol=1e-14)
    # and on the Galerkin coarse (9-point) Laplacian
    coarse, _, _ = coarse_operator(StencilOperator(laplacian_stencil(31)), bilinear_weights(15))
    assert torch.allclose(black_box_weights(coarse.stencil), bilinear_weights(7), atol=1e-14)


def test_bilinear_galerkin_transfers_are_full_weighting_and_interpolation():
    from mgnet_cli.pde.poisson import BilinearInterpolation, FullWeighting

    _, P, R = coarse_operator(StencilOperator(laplacian_stencil(15)), bilinear_weights(7))
    r, e = torch.randn(2, 1, 15, 15, dtype=torch.float64), torch.randn(2, 1, 7, 7, dtype=torch.float64)
    assert torch.allclose(R(r), FullWeighting()(r), atol=1e-14)
    assert torch.allclose(P(e), BilinearInterpolation()(e), atol=1e-14)
