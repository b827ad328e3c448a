"""The learned interpolation (mgnet_cli/amg/learned_interpolation.py, interpolation_learning.py):
untrained it is classical AMG exactly; trained it keeps the classical split and pattern and lowers
the two-grid error it was trained on; its weights file round-trips and a bad one is one line."""

import json

import numpy as np
import pytest
import torch

from mgnet_cli.amg.interpolation_learning import (TwoGridProblem, classical_parts, family_matrix, learn_interpolation,
                                                  save_interpolation, two_grid_factor)
from mgnet_cli.amg.learned_interpolation import InterpolationNet, learned_interpolation, load_interpolation
from mgnet_cli.amg.settings import AmgSettings, SetupSettings
from mgnet_cli.amg.matrices import write_matrix
from mgnet_cli.amg.solver import setup
from mgnet_cli.errors import MgnetError
from mgnet_cli.schema import rules
from mgnet_cli.schema.solve import InterpolationLearningConfig
from mgnet_cli.train.checkpoint import save_checkpoint
from tests.helpers import cli, one_line_error

FEW_STEPS = InterpolationLearningConfig(train_sizes=[11], families=["jumps"], problems=1, steps=15, lr=1e-2, hidden=8,
                                        rounds=2)


@pytest.fixture(scope="module")
def trained():
    """A network trained FEW_STEPS steps on one jumps problem, n = 11, and that problem."""
    problem = TwoGridProblem.of(family_matrix("jumps", 11, 0))
    return learn_interpolation(FEW_STEPS, [problem]), problem


def parts(n: int = 11, family: str = "jumps"):
    A = family_matrix(family, n, 0)
    return (A, *classical_parts(A, SetupSettings()))


def test_an_untrained_net_is_classical_interpolation_exactly():
    A, S, is_c, P = parts(15)
    learned = learned_interpolation(InterpolationNet(), A, S, is_c, SetupSettings().truncation)
    assert learned.nnz == P.nnz == 440
    assert abs(learned - P).max() == 0.0


def test_training_a_few_steps_lowers_the_two_grid_loss(trained):
    result, problem = trained
    x = torch.randn(problem.A.shape[0], 64, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    with torch.no_grad():
        before = problem.loss(problem.graph.classical, x, 1, FEW_STEPS.powers).item()
        after = problem.loss(result.model(problem.graph), x, 1, FEW_STEPS.powers).item()
    assert after < 0.98 * before  # measured: 0.2273 -> 0.2200
    A, S, is_c, P = parts(11)
    learned = learned_interpolation(result.model, A, S, is_c, SetupSettings().truncation)
    assert two_grid_factor(A, learned) < two_grid_factor(A, P) - 0.005  # measured: 0.294 -> 0.284


def test_the_learned_p_keeps_c_rows_identity_and_the_classical_pattern(trained):
    result, _ = trained
    A, S, is_c, P = parts(11)
    learned = learned_interpolation(result.model, A, S, is_c, SetupSettings().truncation)
    c_rows = learned[np.flatnonzero(is_c)].toarray()
    assert np.array_equal(c_rows, np.eye(int(is_c.sum())))
    assert np.array_equal(learned.indptr, P.indptr) and np.array_equal(learned.indices, P.indices)
    assert abs(learned - P).max() > 1e-3  # the values did change


def test_a_weights_file_round_trips_to_the_same_p(trained, tmp_path):
    result, _ = trained
    save_interpolation(tmp_path / "net.pt", result)
    loaded, state = load_interpolation(tmp_path / "net.pt")
    assert state["settings"]["steps"] == FEW_STEPS.steps and len(state["losses"]) == FEW_STEPS.steps
    assert [step for step, _ in state["factors"]] == [0, FEW_STEPS.steps]  # from the start, and at the last step
    assert state["held_out"] == result.held_out == {"jumps": state["factors"][-1][1]}  # one held-out n = 23 problem
    A, S, is_c, _ = parts(11, "rotated")
    first = learned_interpolation(result.model, A, S, is_c, 0.2)
    second = learned_interpolation(loaded, A, S, is_c, 0.2)
    assert abs(first - second).max() == 0.0


@pytest.mark.parametrize("content, problem", [
    (b"not a torch file", "interpolation_weights: checkpoint"),
    ({"kind": "learned_smoother"}, "no usable learned interpolation: its kind"),
    ({"kind": "learned_interpolation", "hidden": 8, "rounds": 2, "weights": {}}, "do not fit a network of width 8"),
    ({**InterpolationNet(8, 2).state(), "settings": {"lr": "fast"}}, "damaged record of its training: settings lr"),
])
def test_a_bad_weights_file_is_one_line(tmp_path, content, problem):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        save_checkpoint(path, content)  # a stamped mgnet file that is not a learned interpolation
    with pytest.raises(MgnetError) as error:
        load_interpolation(path)
    assert problem in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("bad, says", [
    ({"families": ["spiral"]}, "families=['spiral']: give one or more of jumps, rotated, lognormal, poisson"),
    ({"train_sizes": [127]}, "train_sizes=[127]: give a non-empty list of integers from 3 to 63"),
    ({"lr": 0.0}, "lr=0.0: give a finite number in (0, inf)"),
])
def test_the_training_keys_refuse_a_value_out_of_range_in_one_line(bad, says):
    with pytest.raises(rules.Invalid) as refused:
        InterpolationLearningConfig(**bad)
    assert str(refused.value).startswith(says) and "\n" not in str(refused.value)


def test_an_untrained_weights_file_sets_up_the_classical_hierarchy_at_every_level(tmp_path):
    untrained = InterpolationLearningConfig(train_sizes=[11], steps=0, hidden=8, rounds=1)
    save_interpolation(tmp_path / "untrained.pt", learn_interpolation(untrained, []))
    A = family_matrix("jumps", 31, 3)
    _, classical = setup(A, AmgSettings())
    _, learned = setup(A, AmgSettings(interpolation="learned", interpolation_weights=str(tmp_path / "untrained.pt")))
    assert len(learned.P) == len(classical.P) >= 3
    assert all(abs(mine - theirs).max() == 0.0 for mine, theirs in zip(learned.P, classical.P))


def test_the_command_solves_with_the_learned_interpolation_and_refuses_a_bad_file(trained, tmp_path):
    result, _ = trained
    save_interpolation(tmp_path / "net.pt", result)
    write_matrix(tmp_path / "A.mtx", family_matrix("jumps", 15, 0))
    solve = ("solve", "problem=matrix", f"problem.file={tmp_path / 'A.mtx'}", "problem.amg.interpolation=learned")
    done = cli(*solve, f"problem.amg.interpolation_weights={tmp_path / 'net.pt'}", f"hydra.run.dir={tmp_path / 'run'}",
               cwd=tmp_path)
    assert "learned interpolation" in done.stdout and "converged" in done.stdout
    settings = json.loads((tmp_path / "run" / "results.json").read_text())["amg"]["settings"]
    assert settings["interpolation"] == "learned" and settings["interpolation_weights"] == str(tmp_path / "net.pt")
    for weights, says in [(None, "interpolation=learned needs the network's weights file"),
                          (tmp_path / "A.mtx", "interpolation_weights: checkpoint")]:
        given = [] if weights is None else [f"problem.amg.interpolation_weights={weights}"]
        refused = cli(*solve, *given, f"hydra.run.dir={tmp_path / 'bad'}", cwd=tmp_path, check=False)
        assert refused.returncode == 2 and says in one_line_error(refused, "solve")
