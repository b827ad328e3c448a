"""The learned smoother: a 3x3 kernel per level, trained through the shared multigrid cycle."""

import dataclasses
import functools

import pytest
import torch
import torch.nn.functional as F

from mgnet_cli.errors import MgnetError
from mgnet_cli.pde.learned_smoother import LearnedKernels, LearnedSmoother, convolve
from mgnet_cli.schema.solve import LearnedSmootherConfig, SolverConfig
from mgnet_cli.pde.smoother_learning import (learn_smoother, load_learned, log_reduction,
                                    measured_factor, save_learned, smoothed_sizes, with_kernels)
from mgnet_cli.pde.poisson import Laplacian
from mgnet_cli.pde.smoothers import DampedJacobi
from mgnet_cli.pde.solve import Multigrid, build_cycle
from mgnet_cli.train.checkpoint import save_checkpoint
from mgnet_cli.train.schedules import Constant

DOUBLE = torch.float64
MULTIGRID = Multigrid(SolverConfig(coarsest_n=3))  # V(1,1); on n = 15 the levels are 15, 7 and 3
TINY = LearnedSmootherConfig(train_sizes=[15], steps=12, batch=4, cycles=3, measure_every=100)
ADAM = functools.partial(torch.optim.Adam, lr=0.05)


def random(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=DOUBLE, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", params=[True, False], ids=["shared", "per_level"])
def learned(request):
    """A smoother learned for a few steps on n = 15 (one kernel, or one per grid size)."""
    settings = dataclasses.replace(TINY, shared=request.param)
    return learn_smoother(settings, MULTIGRID, ADAM, Constant())


def test_kernel_application_is_the_convolution():
    r, weights = random(2, 3, 9, 9), random(3, 3, seed=1)
    expected = F.conv2d(r, weights.expand(3, 1, 3, 3), padding=1, groups=3)
    torch.testing.assert_close(convolve(r, weights), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("start", ["zero", "random"])
def test_the_untrained_smoother_is_damped_jacobi(start):
    n = 31
    A = Laplacian(1.0 / (n + 1))
    u, f = (None if start == "zero" else random(2, 1, n, n)), random(2, 1, n, n, seed=1)
    residual = f if u is None else f - A(u)
    before = None if u is None else u.clone()
    learned = LearnedSmoother(2, LearnedKernels(omega=0.8))(u, f, residual, A)
    jacobi = DampedJacobi(2, omega=0.8)(u, f, residual, A)
    torch.testing.assert_close(learned, jacobi, rtol=1e-12, atol=1e-12)
    assert u is None or torch.equal(u, before), "a smoother must not change its input"


def test_one_sweep_of_a_five_point_kernel_is_two_jacobi_steps():
    """K = omega D^-1 (2 - omega D^-1 A): centre 2 omega - omega^2, edges omega^2 / 4 (docs)."""
    n, omega = 15, 0.8
    A = Laplacian(1.0 / (n + 1))
    kernels = LearnedKernels(omega=omega)
    edges = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=DOUBLE)
    with torch.no_grad():
        kernels.kernels[0].copy_(edges * omega**2 / 4)
        kernels.kernels[0][1, 1] = 2 * omega - omega**2
    u, f = random(2, 1, n, n), random(2, 1, n, n, seed=1)
    learned = LearnedSmoother(1, kernels)(u, f, f - A(u), A)
    jacobi = DampedJacobi(2, omega)(u, f, f - A(u), A)
    torch.testing.assert_close(learned, jacobi, rtol=1e-12, atol=1e-12)


def test_a_kernel_per_grid_size_and_the_nearest_for_others():
    kernels = LearnedKernels([15, 31, 63])
    assert kernels.sizes == [15, 31, 63] and smoothed_sizes([31, 63], 7) == [15, 31, 63]
    assert kernels.kernel(1023) is kernels.kernel(63) and kernels.kernel(7) is kernels.kernel(15)
    assert kernels.kernel(31) is not kernels.kernel(63)
    shared = LearnedKernels()
    assert shared.kernel(7) is shared.kernel(1023) and len(list(shared.parameters())) == 1


def test_gradients_through_the_cycle_match_finite_differences():
    """The loss is differentiable in all nine taps, through stencils, R, P and the direct solve."""
    kernels = LearnedKernels()
    with torch.no_grad():
        kernels.kernels[0].add_(0.05 * random(3, 3, seed=2))
    cycle, _ = build_cycle(15, with_kernels(MULTIGRID, kernels), DOUBLE, "cpu")
    f, u = random(2, 1, 15, 15, seed=3), random(2, 1, 15, 15, seed=4) / 1024

    def loss() -> torch.Tensor:
        return log_reduction(cycle, f, u, cycles=2)

    loss().backward()
    gradient = kernels.kernels[0].grad.clone()
    numeric = torch.zeros(3, 3, dtype=DOUBLE)
    with torch.no_grad():
        for i in range(3):
            for j in range(3):
                kernels.kernels[0][i, j] += 1e-6
                up = loss()
                kernels.kernels[0][i, j] -= 2e-6
                numeric[i, j] = (up - loss()) / 2e-6
                kernels.kernels[0][i, j] += 1e-6
    assert gradient.abs().min() > 1e-3  # every tap matters
    torch.testing.assert_close(gradient, numeric, rtol=1e-5, atol=1e-7)


def test_learning_lowers_the_factor(learned):
    jacobi, final = learned.factors[0][1], learned.factors[-1][1]
    assert learned.factors[0][0] == 0 and learned.factors[-1][0] == TINY.steps
    assert jacobi == pytest.approx(0.35, abs=0.03)  # training starts at damped Jacobi
    assert final < 0.8 * jacobi
    assert learned.losses[-1] < learned.losses[0]
    assert learned.model.shared == (len(learned.model.sizes) == 0)


def test_a_saved_smoother_reloads_to_the_same_factor(learned, tmp_path):
    path = tmp_path / "learned_smoother.pt"
    save_learned(path, learned, MULTIGRID)
    kernels, state = load_learned(path)
    assert state["settings"]["train_sizes"] == [15] and state["cycle"]["pre_smooth"] == 1
    for (label, saved), (_, loaded) in zip(learned.model.labelled(), kernels.labelled()):
        assert torch.equal(saved.detach(), loaded.detach()), label
    before = measured_factor(63, with_kernels(MULTIGRID, learned.model))
    after = measured_factor(63, with_kernels(MULTIGRID, kernels))
    assert after == pytest.approx(before, rel=1e-12, abs=0)
    assert after < 0.3


def test_larger_grids_than_trained_keep_converging(learned):
    """Trained on n = 15, used on n = 127 (8x larger): no divergence, about the same factor."""
    trained = learned.factors[-1][1]
    larger = measured_factor(127, with_kernels(MULTIGRID, learned.model))
    assert larger < 1.0
    assert larger < trained + 0.05


def test_a_checkpoint_of_something_else_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    save_checkpoint(path, {"model": {}})
    with pytest.raises(MgnetError, match="not a learned-smoother checkpoint"):
        load_learned(path)
    save_checkpoint(path, {"kind": "learned_smoother", "sizes": [15, 31], "kernels": [torch.zeros(3, 3)]})
    with pytest.raises(MgnetError, match="no usable kernels"):
        load_learned(path)


def test_learning_restores_the_thread_count():
    """Training runs on one CPU thread (tiny grids) and gives the others back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # not the one it trains on (the test session itself runs on one: conftest)
    try:
        learn_smoother(dataclasses.replace(TINY, steps=1), MULTIGRID, ADAM, Constant())
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
