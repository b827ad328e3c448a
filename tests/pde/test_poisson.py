"""The fixed operators of the Poisson side: each is the convolution docs/MGNET.md names."""

import math

import pytest
import torch

from mgnet_cli.pde.poisson import (BilinearInterpolation, FullWeighting, Laplacian, coarse_size,
                                   is_grid_size, right_hand_side, right_hand_side_vector, sine_solution)
from mgnet_cli.pde.smoothers import (ChebyshevPolynomial, DampedJacobi, DirectSolve,
                                     RedBlackGaussSeidel)

DOUBLE = torch.float64


def grid(n: int, channels: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, channels, n, n, dtype=DOUBLE, generator=torch.Generator().manual_seed(seed))


def test_grid_sizes():
    assert [n for n in range(1, 70) if is_grid_size(n)] == [1, 3, 7, 15, 31, 63]
    assert [coarse_size(n) for n in (3, 7, 1023)] == [1, 3, 511]


@pytest.mark.parametrize("n", [1, 3, 15])
@pytest.mark.parametrize("channels", [1, 3])
def test_operators_are_their_convolutions(n, channels):
    x = grid(n, channels)
    A = Laplacian(1.0 / (n + 1))
    torch.testing.assert_close(A(x), A.conv(x), rtol=1e-12, atol=1e-12 * A.diagonal)
    P = BilinearInterpolation()
    torch.testing.assert_close(P(x), P.conv(x), rtol=1e-12, atol=1e-12)
    if n > 1:
        R = FullWeighting()
        torch.testing.assert_close(R(x), R.conv(x), rtol=1e-12, atol=1e-12)


def test_restriction_halves_and_prolongation_doubles_the_grid():
    assert FullWeighting()(grid(63)).shape[-2:] == (31, 31)
    assert BilinearInterpolation()(grid(31)).shape[-2:] == (63, 63)


def test_prolongation_is_four_times_the_transpose_of_restriction():
    """Full weighting and bilinear interpolation are adjoint up to the factor 2^d = 4."""
    fine, coarse = grid(31, seed=1), grid(15, seed=2)
    left = (FullWeighting()(fine) * coarse).sum()
    right = (fine * BilinearInterpolation()(coarse)).sum() / 4
    torch.testing.assert_close(left, right, rtol=1e-12, atol=0)


def test_prolongation_reproduces_linear_functions_inside():
    x = torch.arange(1, 16, dtype=DOUBLE) / 16
    coarse = (2 * x[None, :] + 3 * x[:, None]).view(1, 1, 15, 15)
    fine_x = torch.arange(1, 32, dtype=DOUBLE) / 32
    fine = (2 * fine_x[None, :] + 3 * fine_x[:, None]).view(1, 1, 31, 31)
    torch.testing.assert_close(BilinearInterpolation()(coarse)[..., 1:-1, 1:-1],
                               fine[..., 1:-1, 1:-1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [7, 63])
def test_sine_is_an_eigenfunction_with_the_discrete_eigenvalue(n):
    """Checks A's own-h scaling and its zero boundary at once."""
    h = 1.0 / (n + 1)
    u = sine_solution(n, DOUBLE, "cpu")
    eigenvalue = 8 * math.sin(math.pi * h / 2) ** 2 / h**2
    torch.testing.assert_close(Laplacian(h)(u), eigenvalue * u, rtol=1e-10, atol=1e-10)
    assert abs(eigenvalue / (2 * math.pi**2) - 1) < h**2  # -> the continuous 2 pi^2


def test_right_hand_sides():
    f = right_hand_side("random", 15, seed=3)
    assert f.shape == (1, 1, 15, 15) and torch.equal(f, right_hand_side("random", 15, seed=3))
    assert not torch.equal(f, right_hand_side("random", 15, seed=4))
    assert torch.equal(right_hand_side("ones", 7), torch.ones(1, 1, 7, 7, dtype=DOUBLE))
    torch.testing.assert_close(right_hand_side("sine", 7), 2 * math.pi**2 * sine_solution(7, DOUBLE, "cpu"))
    with pytest.raises(ValueError, match="right-hand side"):
        right_hand_side("cosine", 7)  # type: ignore[arg-type]
    # problem=matrix's random and ones (cli/solve_matrix.py) are these numbers, row by row; sine is the grid's only
    assert torch.equal(right_hand_side_vector("random", 225, seed=3), f.flatten())
    assert torch.equal(right_hand_side_vector("ones", 49), torch.ones(49, dtype=DOUBLE))
    with pytest.raises(ValueError, match="one of random, ones, got 'sine'"):
        right_hand_side_vector("sine", 49)


def smooth_once(smoother, n: int = 31, seed: int = 0):
    A = Laplacian(1.0 / (n + 1))
    u, f = grid(n, seed=seed), grid(n, seed=seed + 1)
    u_before = u.clone()
    new = smoother(u, f, f - A(u), A)
    assert torch.equal(u, u_before), "a smoother must not change its input"
    return A, f, new


def test_red_black_sweep_leaves_no_residual_on_black_points():
    A, f, u = smooth_once(RedBlackGaussSeidel(steps=1))
    residual = (f - A(u))[0, 0]
    black = (torch.arange(31)[:, None] + torch.arange(31)[None, :]) % 2 == 1
    assert residual[black].abs().max() < 1e-10 * residual[~black].abs().max()


def test_chebyshev_of_degree_one_is_jacobi_four_fifths():
    _, _, chebyshev = smooth_once(ChebyshevPolynomial(steps=1, ratio=4.0))
    _, _, jacobi = smooth_once(DampedJacobi(steps=1, omega=0.8))
    torch.testing.assert_close(chebyshev, jacobi, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("degree", [2, 3])
def test_chebyshev_damps_oscillatory_modes_by_its_polynomial_bound(degree):
    """On ``[1/2, 2]`` the residual polynomial is at most ``1 / T_k(5/3)``: 0.22 at degree 2."""
    n = 31
    A, x = Laplacian(1.0 / (n + 1)), torch.arange(1, n + 1, dtype=DOUBLE) / (n + 1)
    bound = 1 / math.cosh(degree * math.acosh(5 / 3))
    for k, l in [(16, 16), (31, 31), (20, 3), (2, 28)]:  # D^-1 A eigenvalue in [1/2, 2]
        mode = torch.outer(torch.sin(k * math.pi * x), torch.sin(l * math.pi * x)).view(1, 1, n, n)
        residual = A(mode)  # solve A u = A mode from u = 0: the residual starts as A mode
        u = ChebyshevPolynomial(steps=degree)(None, residual, residual, A)
        ratio = torch.linalg.vector_norm(residual - A(u)) / torch.linalg.vector_norm(residual)
        assert ratio <= bound + 1e-9


def test_jacobi_is_richardson_on_a_single_mode():
    """The highest mode has D^-1 A eigenvalue 1 + cos(pi h): Jacobi multiplies it by 1 - omega lambda."""
    n = 15
    h = 1.0 / (n + 1)
    x = torch.arange(1, n + 1, dtype=DOUBLE) * h
    mode = torch.outer(torch.sin(n * math.pi * x), torch.sin(n * math.pi * x)).view(1, 1, n, n)
    A = Laplacian(h)
    u = DampedJacobi(steps=3, omega=0.8)(None, A(mode), A(mode), A)
    factor = (1 - 0.8 * (1 - math.cos(n * math.pi * h))) ** 3
    torch.testing.assert_close(mode - u, factor * mode, rtol=1e-10, atol=1e-12)


def test_direct_solve_and_zero_steps():
    n = 7
    A, f, u = smooth_once(DirectSolve(Laplacian(1.0 / (n + 1)), n, DOUBLE, "cpu"), n=n)
    assert torch.linalg.vector_norm(f - A(u)) < 1e-12 * torch.linalg.vector_norm(f)
    f = grid(n)
    for smoother in (DampedJacobi(0), RedBlackGaussSeidel(0), ChebyshevPolynomial(0)):
        assert torch.equal(smoother(None, f, f, A), torch.zeros_like(f))
        assert torch.equal(smoother(f, f, f, A), f)
