"""The learned prolongation: it learns, it generalises to larger grids, it reloads as it was saved."""

import pytest
import torch

from mgnet_cli.errors import MgnetError
from mgnet_cli.pde.hierarchy import PROLONGATIONS, solve_stencil
from mgnet_cli.pde.learned_prolongation import LearnedProlongation
from mgnet_cli.pde.poisson import right_hand_side
from mgnet_cli.pde.problems import coefficient_field, diffusion_stencil
from mgnet_cli.schema.solve import LearnedProlongationConfig
from mgnet_cli.pde.prolongation_learning import (learn_prolongation,
                                                 load_prolongation, save_prolongation)
from mgnet_cli.pde.smoothers import RedBlackGaussSeidel
from mgnet_cli.pde.solve import Multigrid
from mgnet_cli.schema.solve import SolverConfig

MULTIGRID = Multigrid(SolverConfig(coarsest_n=3), RedBlackGaussSeidel)


def factor(rule, n: int, seed: int = 77, kind: str = "lognormal", max_cycles: int = 60) -> float:
    stencil = diffusion_stencil(coefficient_field(kind, n, seed=seed))  # a field training never drew
    result = solve_stencil(stencil, right_hand_side("random", n, seed=seed),
                           MULTIGRID.but(tol=1e-10, max_cycles=max_cycles), rule)
    return result.convergence_factor


@pytest.fixture(scope="module")
def learned() -> LearnedProlongation:
    settings = LearnedProlongationConfig(train_sizes=[15], steps=30, batch=2, cycles=2, measure_every=100,
                                         base="bilinear", fields=["lognormal"])
    result = learn_prolongation(settings, MULTIGRID, lambda p: torch.optim.Adam(p, lr=1e-2), lambda step: 1.0)
    return result.model


def test_a_few_steps_lower_the_factor_below_bilinear_on_a_held_out_field(learned):
    assert factor(learned, 31) < factor(PROLONGATIONS["bilinear"], 31) - 0.02  # 0.36 against 0.40


def test_the_learned_parts_do_not_diverge_on_a_grid_16_times_larger(learned):
    assert factor(learned, 255, max_cycles=12) < 1.0
    assert factor(learned, 255, kind="jumps", max_cycles=12) < 1.0


def test_starts_as_its_base_rule():
    stencil = diffusion_stencil(coefficient_field("jumps", 31, seed=1))
    for base in ("black_box", "bilinear"):
        assert torch.equal(LearnedProlongation(base=base)(stencil), PROLONGATIONS[base](stencil))


def test_a_saved_solver_reloads_to_the_same_factor(learned, tmp_path):
    from mgnet_cli.pde.learning import LearningResult

    path = tmp_path / "learned_prolongation.pt"
    save_prolongation(path, LearningResult(learned, LearnedProlongationConfig()), MULTIGRID)
    reloaded, state = load_prolongation(path)
    assert state["cycle"]["smoother"] == "RedBlackGaussSeidel"
    assert factor(reloaded, 63) == factor(learned, 63)


@pytest.mark.parametrize("damage", ["kind", "shape", "nan", "extra"])
def test_a_damaged_checkpoint_is_refused(learned, tmp_path, damage):
    from mgnet_cli.train.checkpoint import save_checkpoint

    state = learned.state()
    key = next(iter(state["weights"]))
    if damage == "kind":
        state["kind"] = "learned_smoother"
    elif damage == "shape":
        state["weights"][key] = torch.zeros(3)
    elif damage == "nan":
        state["weights"][key] = torch.full_like(state["weights"][key], float("nan"))
    else:
        state["weights"]["net.9.weight"] = torch.zeros(1)
    save_checkpoint(tmp_path / "bad.pt", state)
    with pytest.raises(MgnetError, match="no usable learned prolongation"):
        load_prolongation(tmp_path / "bad.pt")
