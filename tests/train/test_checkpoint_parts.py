"""A training checkpoint is checked whole at load: every part (weights, EMA, optimizer, schedule,
random states, progress, record) is refused in one line naming it, before anything uses it."""

import os
import shutil
from pathlib import Path

import pytest
import torch

from mgnet_cli.errors import MgnetError
from mgnet_cli.train.checkpoint import check_training_checkpoint, load_checkpoint
from tests.helpers import cli, one_line_error, train


@pytest.fixture(scope="module")
def honest(tmp_path_factory) -> Path:
    """The last.pt of a tiny finished run that keeps an EMA of its weights."""
    run = train(tmp_path_factory.mktemp("parts") / "run", "trainer.ema_decay=0.9")
    return run / "last.pt"


def nan_first(weights: dict) -> None:
    """The first floating-point tensor of ``weights`` gets a NaN."""
    key = next(key for key, tensor in weights.items() if tensor.is_floating_point() and tensor.dim())
    weights[key] = weights[key].clone()
    weights[key][(0,) * weights[key].dim()] = float("nan")


def set_first(weights: dict, make) -> None:
    key = next(key for key, tensor in weights.items() if tensor.is_floating_point() and tensor.dim())
    weights[key] = make(weights[key])


CHANGES = {  # what a damaged or crafted file holds -> what the one line says
    "NaN weights": (lambda s: nan_first(s["model"]), "model: stem.0.weight holds NaN or infinite values"),
    "sparse weights": (lambda s: set_first(s["model"], torch.Tensor.to_sparse), "not a dense one"),
    "complex weights": (lambda s: set_first(s["model"], lambda t: t.to(torch.complex64)), "holds complex64"),
    "NaN EMA weights": (lambda s: nan_first(s["ema"]), "ema: module.stem.0.weight holds NaN"),
    "EMA of another model": (lambda s: s["ema"].pop("module.stem.0.weight"), "ema: does not hold the model's"),
    "EMA of another shape": (lambda s: s["ema"].__setitem__("module.stem.0.weight", torch.zeros(2)),
                             "ema: module.stem.0.weight has shape (2,)"),
    "NaN momentum": (lambda s: s["optimizer"]["state"][0]["momentum_buffer"].fill_(float("inf")),
                     "optimizer: state[0].momentum_buffer holds NaN or infinite values"),
    "negative lr": (lambda s: s["optimizer"]["param_groups"][0].__setitem__("lr", -1.0),
                    "optimizer: param_groups[0].lr is -1.0, not a finite non-negative number"),
    "state of no parameter": (lambda s: s["optimizer"]["state"].__setitem__(999, {}), "state[999]"),
    "no param_groups": (lambda s: s["optimizer"].pop("param_groups"), "is not an optimizer's state"),
    "a schedule key that is an attribute": (lambda s: s["scheduler"].__setitem__("optimizer", None),
                                            "scheduler: 'optimizer' is not a key of the learning-rate schedule"),
    "a fractional schedule step": (lambda s: s["scheduler"].__setitem__("last_epoch", 1.5), "last_epoch is 1.5"),
    "a schedule lambda's state": (lambda s: s["scheduler"].__setitem__("lr_lambdas", [{"__code__": 1}]),
                                  "lr_lambdas"),
    "torch's random state in floats": (lambda s: s["rng"].__setitem__("torch", torch.zeros(5056)),
                                       "rng: torch holds float32, not bytes (uint8)"),
    "a short random state": (lambda s: s["rng"].__setitem__("data", s["rng"]["data"][:100]),
                             "rng: data has shape (100,), not (5056,)"),
    "numpy's state cut": (lambda s: s["rng"]["numpy"].__setitem__(1, torch.zeros(3, dtype=torch.int64)),
                          "rng: numpy is not a Mersenne Twister state"),
    "python's state of strings": (lambda s: s["rng"].__setitem__("python", [3, ("x",) * 625, None]),
                                  "rng: python is not a Mersenne Twister state"),
    "epoch past the run's epochs": (lambda s: s.__setitem__("epoch", 5), "epoch 5 is past the run's trainer.epochs=1"),
    "a negative step of the epoch": (lambda s: s.__setitem__("epoch_progress", {"step": -3}), "epoch_progress"),
    "a float data order": (lambda s: s.__setitem__("data_order", torch.zeros(5056)), "data_order"),
    "a history of another length": (lambda s: s["record"]["history"].append({"epoch": 2}),
                                    "record: history is not a list of the 1 epochs done"),
    "a tensor in the history": (lambda s: s["record"]["history"][0].__setitem__("test_acc", torch.ones(1)),
                                "record: history entry 1"),
    "an unknown record field": (lambda s: s["record"].__setitem__("callback", 1), "record: is not a run's record"),
    "a NaN loss scale": (lambda s: s.__setitem__("grad_scaler", {"scale": float("nan")}), "grad_scaler:"),
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_each_part_is_checked_at_load(honest, name):
    change, message = CHANGES[name]
    state = load_checkpoint(honest)
    check_training_checkpoint(state, honest)  # the honest file passes
    change(state)
    with pytest.raises(MgnetError) as refused:
        check_training_checkpoint(state, honest)
    assert message in str(refused.value) and str(honest) in str(refused.value)
    assert "\n" not in str(refused.value)


def test_optimizer_state_of_another_shape_is_refused_before_anything_is_restored(honest, compose_config):
    from mgnet_cli.cli.build import build_training
    from mgnet_cli.train.state import restore_training

    state = load_checkpoint(honest)
    state["optimizer"]["state"][0]["momentum_buffer"] = torch.zeros(3)
    check_training_checkpoint(state, honest)  # its types are right: only the built optimizer knows
    training = build_training(compose_config("trainer.ema_decay=0.9"))
    before = {key: tensor.clone() for key, tensor in training.model.state_dict().items()}
    with pytest.raises(MgnetError, match=r"momentum_buffer of parameter 0 has shape \(3,\), the parameter "
                                         r"\(8, 3, 3, 3\)"):
        restore_training(state, training.model, training.optimizer, torch.optim.lr_scheduler.LambdaLR(
            training.optimizer, lambda step: 1.0), training.batches.generator)
    assert all(torch.equal(before[key], tensor) for key, tensor in training.model.state_dict().items())


def test_a_checkpoint_that_is_a_fifo_or_a_folder_is_refused_at_once(tmp_path):
    fifo = tmp_path / "last.pt"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # an old reader would not block on open, only on reading
    try:
        with pytest.raises(MgnetError, match="is a FIFO, not a regular file"):
            load_checkpoint(fifo)
    finally:
        os.close(writer)
    with pytest.raises(MgnetError, match="is a directory, not a regular file"):
        load_checkpoint(tmp_path)


def test_a_checkpoint_with_nan_weights_is_not_evaluated(honest, tmp_path):
    state = load_checkpoint(honest)
    nan_first(state["model"])
    path = tmp_path / "nan.pt"
    torch.save(state, path)
    line = one_line_error(cli("eval", f"checkpoint={path}", "device=cpu", cwd=tmp_path, check=False), "eval")
    assert f"{path} is not a training checkpoint of mgnet: model: stem.0.weight holds NaN" in line
    assert sorted(tmp_path.iterdir()) == [path]  # no eval/ folder, no results


def test_the_library_refuses_nan_weights(honest, tmp_path):
    from mgnet_cli.library import load_model

    state = load_checkpoint(honest)
    nan_first(state["ema"])
    path = tmp_path / "nan_ema.pt"
    torch.save(state, path)
    with pytest.raises(MgnetError, match="ema: module.stem.0.weight holds NaN"):
        load_model(path)


def test_resume_of_a_damaged_optimizer_exits_2_and_changes_nothing(honest, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(honest.parent, run)
    state = load_checkpoint(run / "last.pt")
    state["optimizer"]["state"][0]["momentum_buffer"].fill_(float("nan"))
    torch.save(state, run / "last.pt")
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    line = one_line_error(cli("train", f"resume={run}", "trainer.epochs=2", cwd=tmp_path, check=False), "train")
    assert "optimizer: state[0].momentum_buffer holds NaN or infinite values" in line
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before
