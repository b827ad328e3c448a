"""Multigrid-preconditioned CG: the cycle it uses is symmetric, and it converges where the cycle alone stalls."""

import pytest
import torch

from mgnet_cli.pde.hierarchy import PROLONGATIONS, build_galerkin_cycle, solve_stencil
from mgnet_cli.pde.lines import ZebraLineGaussSeidel
from mgnet_cli.pde.poisson import right_hand_side
from mgnet_cli.pde.problems import coefficient_field, diffusion_stencil
from mgnet_cli.pde.smoothers import RedBlackGaussSeidel
from mgnet_cli.pde.solve import Multigrid, solve_poisson
from mgnet_cli.schema.solve import SolverConfig

JUMPS = diffusion_stencil(coefficient_field("jumps", 63, seed=0))


def asymmetry(smoother, krylov: str) -> float:
    """``|<M x, y> - <x, M y>| / |<M x, y>|`` for the cycle ``M`` on a jumps field, n = 31."""
    multigrid = Multigrid(SolverConfig(prolongation="black_box", krylov=krylov), smoother)
    generator = torch.Generator().manual_seed(0)
    x, y = (torch.randn(1, 1, 31, 31, generator=generator, dtype=torch.float64) for _ in range(2))
    with torch.inference_mode():
        cycle, _ = build_galerkin_cycle(diffusion_stencil(coefficient_field("jumps", 31, seed=2)), multigrid,
                                        PROLONGATIONS["black_box"])
        forward, backward = (cycle(None, x, x) * y).sum().item(), (cycle(None, y, y) * x).sum().item()
    return abs(forward - backward) / abs(forward)


@pytest.mark.parametrize("smoother", [RedBlackGaussSeidel, ZebraLineGaussSeidel])
def test_the_preconditioning_cycle_is_symmetric_and_the_plain_one_is_not(smoother):
    assert asymmetry(smoother, "cg") < 1e-12
    assert asymmetry(smoother, "none") > 1e-3  # the same sweep order before and after


def test_cg_converges_on_jumps_where_the_cycle_alone_stalls():
    f = right_hand_side("random", 63, seed=0)
    plain = Multigrid(SolverConfig(prolongation="black_box", tol=1e-8, max_cycles=40), ZebraLineGaussSeidel)
    plain, cg = (solve_stencil(JUMPS, f, multigrid, PROLONGATIONS["black_box"])
                 for multigrid in (plain, plain.but(krylov="cg")))
    assert plain.status == "max_cycles" and plain.convergence_factor > 0.9  # 0.917
    assert cg.status == "converged" and cg.cycles <= 38 and cg.convergence_factor < 0.65  # 36, 0.56


def test_cg_on_poisson_needs_fewer_cycles_with_jacobi():
    from mgnet_cli.pde.smoothers import DampedJacobi

    plain = solve_poisson(127, multigrid=Multigrid(SolverConfig(tol=1e-10), DampedJacobi))
    cg = solve_poisson(127, multigrid=Multigrid(SolverConfig(tol=1e-10, krylov="cg"), DampedJacobi))
    assert cg.status == "converged" and cg.cycles < plain.cycles - 5, (cg.cycles, plain.cycles)
    assert cg.relative_residuals[-1] <= 1e-10
