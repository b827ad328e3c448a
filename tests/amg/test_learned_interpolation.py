"""The learned interpolation (mgnet_cli/amg/learned_interpolation.py, interpolation_learning.py):
untrained it is classical AMG exactly; trained it keeps the classical split and pattern and lowers
the two-grid error it was trained on; its weights file round-trips and a bad one is one line."""

import json
from functools import partial

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

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
from tests.helpers import cli, mgnet_solve, one_line_error

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
    net, _ = load_interpolation(tmp_path / "untrained.pt")
    _, learned = setup(A, AmgSettings(interpolation="learned"), interpolate=partial(learned_interpolation, net))
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
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    settings = results["amg"]["settings"]
    assert settings["interpolation"] == "learned" and settings["interpolation_weights"] == str(tmp_path / "net.pt")
    loaded = results["learned_interpolation"]
    assert not loaded["learned_here"] and loaded["settings"]["steps"] == FEW_STEPS.steps
    for given, says in [(f"problem.amg.interpolation_weights={tmp_path / 'A.mtx'}",
                         "interpolation_weights: checkpoint"),
                        ("problem.amg.coarsening=aggregation", "smoothed aggregation has none")]:
        refused = cli(*solve, given, f"hydra.run.dir={tmp_path / 'bad'}", cwd=tmp_path, check=False)
        assert refused.returncode == 2 and says in one_line_error(refused, "solve")


# Tiny training keys: a few seconds.
TINY = ["problem.amg.learning.train_sizes=[7]", "problem.amg.learning.families=[jumps]",
        "problem.amg.learning.problems=1", "problem.amg.learning.steps=3", "problem.amg.learning.lr=0.05",
        "problem.amg.learning.hidden=8", "problem.amg.learning.rounds=1"]


def test_the_command_learns_the_interpolation_without_a_file_and_a_reload_solves_alike(tmp_path):
    write_matrix(tmp_path / "A.mtx", family_matrix("jumps", 15, 0))
    # one thread in every run: the free-core count changes the last bits the reload is compared on
    solve = ("problem=matrix", f"problem.file={tmp_path / 'A.mtx'}", "solver.threads=1", "solver.device=cpu")
    first, second, classical = tmp_path / "learn", tmp_path / "reload", tmp_path / "classical"
    done = mgnet_solve(*solve, "problem.amg.interpolation=learned", *TINY, f"hydra.run.dir={first}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    checkpoint = first / "learned_interpolation.pt"
    assert f"reuse it with problem.amg.interpolation_weights={checkpoint}" in done.stdout + done.stderr
    learned = json.loads((first / "results.json").read_text())
    record = learned["learned_interpolation"]
    assert record["learned_here"] and record["checkpoint"] == str(checkpoint) and checkpoint.is_file()
    # measured from the start and at the last step, held out at n = 2 * 7 + 1
    assert [(factor["step"], factor["n"]) for factor in record["factors"]] == [(0, 15), (3, 15)]
    assert record["held_out"] == {"jumps": record["factors"][-1]["factor"]} and learned["status"] == "converged"
    assert record["factors"][-1]["factor"] < record["factors"][0]["factor"] - 1e-3  # measured: 0.2965 -> 0.2944

    events = EventAccumulator(str(first))
    events.Reload()
    assert [event.step for event in events.Scalars("learned_interpolation/loss")] == [1, 2, 3]
    factors = events.Scalars("learned_interpolation/factor")
    assert [event.step for event in factors] == [0, 3]
    assert factors[-1].value == pytest.approx(record["factors"][-1]["factor"], rel=1e-6)  # float32 in the events

    done = mgnet_solve(*solve, "problem.amg.interpolation=learned", f"problem.amg.interpolation_weights={checkpoint}",
                       f"hydra.run.dir={second}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    reloaded = json.loads((second / "results.json").read_text())
    assert not reloaded["learned_interpolation"]["learned_here"] and not (second / "learned_interpolation.pt").exists()
    assert reloaded["convergence_factor"] == pytest.approx(learned["convergence_factor"], rel=1e-12)
    assert mgnet_solve(*solve, f"hydra.run.dir={classical}", cwd=tmp_path).returncode == 0
    plain = json.loads((classical / "results.json").read_text())
    assert "learned_interpolation" not in plain
    assert abs(plain["convergence_factor"] - learned["convergence_factor"]) > 1e-4  # the network's P: 0.0826 -> 0.0832


@pytest.mark.parametrize("bad, says", [
    ("problem.amg.learning.train_sizes=[127]", "problem.amg.learning.train_sizes=[127]: give a non-empty list of "
                                               "integers from 3 to 63"),
    ("problem.amg.learning.lr=0", "problem.amg.learning.lr=0.0: give a finite number in (0, inf)"),
])
def test_a_bad_training_key_is_one_line_before_anything_is_learned(tmp_path, bad, says):
    write_matrix(tmp_path / "A.mtx", family_matrix("jumps", 7, 0))
    refused = mgnet_solve("problem=matrix", f"problem.file={tmp_path / 'A.mtx'}", "problem.amg.interpolation=learned",
                          bad, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert one_line_error(refused, "solve").startswith(f"mgnet solve: error: {says}")
    assert not (tmp_path / "run" / "learned_interpolation.pt").exists()
