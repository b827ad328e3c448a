"""The stencil-aware smoother: it starts as red-black Gauss-Seidel, learns, generalises to a grid 16x
larger, reloads as it was saved, and falls back to Gauss-Seidel where its taps would diverge."""

import logging
import math

import pytest
import torch

from mgnet_cli.errors import MgnetError
from mgnet_cli.pde.hierarchy import PROLONGATIONS, solve_stencil
from mgnet_cli.pde.poisson import right_hand_side
from mgnet_cli.pde.problems import anisotropic_stencil, coefficient_field, diffusion_stencil
from mgnet_cli.schema.solve import SolverConfig, StencilAwareConfig
from mgnet_cli.pde.smoothers import RedBlackGaussSeidel
from mgnet_cli.pde.solve import Multigrid
from mgnet_cli.pde.stencil_smoother import StencilAwareSmoother, StencilKernelNet
from mgnet_cli.pde.stencil_smoother_learning import (learn_stencil_smoother, load_stencil_smoother,
                                                     save_stencil_smoother, with_net)

MULTIGRID = Multigrid(SolverConfig(prolongation="black_box", coarsest_n=3), RedBlackGaussSeidel)
RULE = PROLONGATIONS["black_box"]


def rotated(n: int) -> torch.Tensor:
    return anisotropic_stencil(n, 1e-3, math.pi / 4)  # training draws theta and epsilon at random


def factor(multigrid: Multigrid, stencil: torch.Tensor, max_cycles: int = 40) -> float:
    n = stencil.shape[-1]
    return solve_stencil(stencil, right_hand_side("random", n, seed=5), multigrid.but(tol=1e-10, max_cycles=max_cycles),
                         RULE).convergence_factor


@pytest.fixture(scope="module")
def learned():
    settings = StencilAwareConfig(train_sizes=[15], steps=15, batch=2, cycles=2, hidden=8,
                                  measure_every=100, fields=["anisotropic"])
    return learn_stencil_smoother(settings, MULTIGRID, lambda p: torch.optim.Adam(p, lr=1e-2),
                                  lambda step: 1.0)


def test_untrained_it_is_red_black_gauss_seidel():
    stencil = diffusion_stencil(coefficient_field("jumps", 31, seed=3))
    assert factor(with_net(MULTIGRID, StencilKernelNet()), stencil) == pytest.approx(factor(MULTIGRID, stencil),
                                                                                   abs=1e-12)


def test_a_few_steps_beat_gauss_seidel_on_a_held_out_rotated_problem(learned):
    ours, gauss_seidel = factor(with_net(MULTIGRID, learned.model), rotated(31)), factor(MULTIGRID, rotated(31))
    assert ours < gauss_seidel - 0.03, (ours, gauss_seidel)


def test_it_converges_on_a_grid_16_times_larger(learned):
    multigrid = with_net(MULTIGRID, learned.model)
    assert factor(multigrid, rotated(255), max_cycles=12) < 1.0
    assert factor(multigrid, diffusion_stencil(coefficient_field("jumps", 255, seed=4)), max_cycles=12) < 1.0


def test_a_saved_smoother_reloads_to_the_same_factor(learned, tmp_path):
    path = tmp_path / "stencil_smoother.pt"
    save_stencil_smoother(path, learned, MULTIGRID)
    net, state = load_stencil_smoother(path, MULTIGRID)
    assert state["settings"]["fields"] == ["anisotropic"] and state["cycle"]["prolongation"] == "black_box"
    assert factor(with_net(MULTIGRID, net), rotated(63)) == factor(with_net(MULTIGRID, learned.model), rotated(63))


def test_taps_that_raise_the_energy_fall_back_to_gauss_seidel(caplog):
    net = StencilKernelNet(hidden=4).eval()  # trained or loaded: guarded
    with torch.no_grad():
        net.net[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0]))  # centre 4: overshoots
    stencil = rotated(31)
    with caplog.at_level(logging.WARNING):
        ours = factor(with_net(MULTIGRID, net), stencil)
    assert ours == pytest.approx(factor(MULTIGRID, stencil), abs=1e-8)  # round-off apart
    assert "red-black Gauss-Seidel there instead" in caplog.text


@pytest.mark.parametrize("damage", ["kind", "shape", "nan"])
def test_a_damaged_checkpoint_is_refused(learned, tmp_path, damage):
    path = tmp_path / "stencil_smoother.pt"
    save_stencil_smoother(path, learned, MULTIGRID)
    state = torch.load(path, weights_only=True)
    if damage == "kind":
        state["kind"] = "learned_prolongation"
    else:
        key = next(iter(state["weights"]))
        state["weights"][key] = torch.zeros(1) if damage == "shape" else state["weights"][key] * math.nan
    torch.save(state, path)
    with pytest.raises(MgnetError, match="no usable stencil-aware smoother"):
        load_stencil_smoother(path, MULTIGRID)


def test_the_smoother_serves_the_constant_laplacian_too():
    from mgnet_cli.pde.solve import solve_poisson

    gauss_seidel = solve_poisson(31, multigrid=Multigrid(smoother=RedBlackGaussSeidel))
    assert solve_poisson(31, multigrid=Multigrid(smoother=StencilAwareSmoother)).convergence_factor == pytest.approx(
        gauss_seidel.convergence_factor, abs=1e-12)
