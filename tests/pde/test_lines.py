"""Zebra-line Gauss-Seidel: exact line solves, and line smoothing cures grid-aligned anisotropy."""

import pytest
import torch

from mgnet_cli.pde.hierarchy import PROLONGATIONS, solve_stencil
from mgnet_cli.pde.lines import Tridiagonal, ZebraLineGaussSeidel, line_systems
from mgnet_cli.pde.poisson import right_hand_side
from mgnet_cli.pde.problems import anisotropic_stencil, coefficient_field, diffusion_stencil
from mgnet_cli.pde.smoothers import RedBlackGaussSeidel
from mgnet_cli.pde.solve import Multigrid
from mgnet_cli.schema.solve import SolverConfig
from mgnet_cli.pde.stencils import StencilOperator


@pytest.mark.parametrize("n", [1, 3, 31])
def test_cyclic_reduction_solves_tridiagonal_systems(n):
    generator = torch.Generator().manual_seed(n)
    lower, upper = (torch.rand(5, n, generator=generator, dtype=torch.float64) for _ in range(2))
    diag = 3 + torch.rand(5, n, generator=generator, dtype=torch.float64)
    d = torch.randn(2, 5, n, generator=generator, dtype=torch.float64)
    x = Tridiagonal(lower, diag, upper).solve(d)
    matrix = torch.diag_embed(diag) + torch.diag_embed(lower[:, 1:], -1) + torch.diag_embed(upper[:, :-1], 1)
    assert torch.allclose(torch.einsum("lij,blj->bli", matrix, x), d, atol=1e-12)


@pytest.mark.parametrize("direction", ["rows", "columns"])
def test_a_half_sweep_solves_each_line_of_its_colour_exactly(direction):
    A = StencilOperator(diffusion_stencil(coefficient_field("lognormal", 15, seed=4)))
    f, u = torch.randn(2, 1, 1, 15, 15, dtype=torch.float64)
    from mgnet_cli.pde.lines import _line_correction

    for colour in (0, 1):
        updated = u + _line_correction(A.residual(u, f), line_systems(A, f)[direction, colour], direction, colour)
        residual = A.residual(updated, f)
        lines = residual[..., colour::2, :] if direction == "rows" else residual[..., :, colour::2]
        others = residual[..., 1 - colour::2, :] if direction == "rows" else residual[..., :, 1 - colour::2]
        assert lines.abs().max() < 1e-10 * f.abs().max()  # those lines' equations hold exactly
        assert others.abs().max() > 1e-3
        kept = u[..., 1 - colour::2, :] if direction == "rows" else u[..., :, 1 - colour::2]
        new = updated[..., 1 - colour::2, :] if direction == "rows" else updated[..., :, 1 - colour::2]
        assert torch.equal(kept, new)  # the other colour is left alone


def test_one_line_step_solves_a_problem_made_of_lines():
    # epsilon = 0: no coupling between rows, so the row sweep alone is an exact solve
    A = StencilOperator(anisotropic_stencil(15, 1e-300, 0.0))
    f = torch.randn(1, 1, 15, 15, dtype=torch.float64)
    u = ZebraLineGaussSeidel(1).setup(A, f)(None, f, f, A)
    assert A.residual(u, f).abs().max() < 1e-9 * f.abs().max()


@pytest.mark.parametrize("epsilon", [1.0, 1e-3])
def test_line_smoothing_cures_grid_aligned_anisotropy(epsilon):
    n = 127
    f = right_hand_side("random", n, seed=1)
    lines = Multigrid(SolverConfig(tol=1e-10, max_cycles=30), ZebraLineGaussSeidel)
    result = solve_stencil(anisotropic_stencil(n, epsilon, 0.0), f, lines, PROLONGATIONS["bilinear"])
    assert result.converged and result.convergence_factor <= 0.1
    if epsilon == 1.0:
        return
    points = Multigrid(SolverConfig(tol=1e-10, max_cycles=10), RedBlackGaussSeidel)
    point = solve_stencil(anisotropic_stencil(n, 1e-3, 0.0), f, points, PROLONGATIONS["bilinear"])
    assert point.convergence_factor > 0.9  # what line smoothing is for


def test_a_levels_pre_and_post_smoother_factorise_its_lines_once():
    """The post-smoother (here CG's adjoint one) shares what the pre-smoother set up for the level."""
    A = StencilOperator(anisotropic_stencil(31, 1e-3, 0.0))
    pre, post = Multigrid(SolverConfig(krylov="cg"), ZebraLineGaussSeidel).level_smoothers(A, A.diagonal)
    assert post.systems is pre.systems and set(pre.systems) == {(d, c) for d in ("rows", "columns") for c in (0, 1)}
    assert (pre.reverse, post.reverse) == (False, True)
