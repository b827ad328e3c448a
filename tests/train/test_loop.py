"""The training loop trains: loss falls, accuracy rises, results and checkpoints say so."""

import json
import math
from dataclasses import replace

import pytest
import torch

from mgnet_cli.cli.build import build_model
from mgnet_cli.errors import ConfigError
from mgnet_cli.train.checkpoint import load_checkpoint
from mgnet_cli.train.loop import duration
from mgnet_cli.device import resolve_device
from mgnet_cli.schema.train import StepDecayConfig
from mgnet_cli.train.schedules import Constant, StepDecay, WarmupCosine
from tests.helpers import fit_config


train = fit_config


def test_epoch_lines_say_how_long_is_left(compose_config, tmp_path, caplog):
    with caplog.at_level("INFO", logger="mgnet_cli.train.loop"):
        train(compose_config("trainer.epochs=3"), tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 3 and all("left" in line for line in lines[:2]) and "left" not in lines[2]
    assert [duration(s) for s in (45, 12 * 60, 3.4 * 3600)] == ["45 s", "12 min", "3.4 h"]


def test_fit_learns_the_synthetic_data(compose_config, tmp_path):
    cfg = compose_config("trainer.epochs=4", "trainer.limit_train_batches=null",
                         "trainer.limit_eval_batches=null", "trainer.batch_size=32",
                         "dataset.num_train=320", "dataset.num_test=200", "scheduler=constant",
                         "optimizer.lr=0.05")
    _, results = train(cfg, tmp_path)
    history = results["history"]
    assert results["status"] == "completed" and results["epochs"] == 4
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    assert results["best_test_acc"] > 0.5  # chance is 0.1
    assert results["best_test_acc"] == max(epoch["test_acc"] for epoch in history)
    assert results["final_test_acc"] == history[-1]["test_acc"]
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["best_test_acc"] == results["best_test_acc"] and on_disk["status"] == "completed"


def test_checkpoints_are_plain_data_and_restore_the_model(compose_config, tmp_path):
    cfg = compose_config("trainer.epochs=2")
    model, results = train(cfg, tmp_path)
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert last["epoch"] == 2 and last["config"] == {"seed": 0}
    assert set(last) >= {"model", "optimizer", "scheduler", "results", "format_version"}
    restored = build_model(cfg, 3, 10)
    restored.load_state_dict(load_checkpoint(tmp_path / "best.pt")["model"])
    best_epoch = load_checkpoint(tmp_path / "best.pt")["epoch"]
    assert best_epoch == results["best_epoch"]
    same = all(torch.equal(restored.state_dict()[name], tensor) for name, tensor in model.state_dict().items())
    assert same == (best_epoch == 2)  # best.pt holds the last weights exactly when epoch 2 was best


def test_validation_split_picks_the_best_epoch(compose_config, tmp_path):
    cfg = compose_config("trainer.epochs=2", "dataset.val_size=16")
    _, results = train(cfg, tmp_path)
    val = [epoch["val_acc"] for epoch in results["history"]]
    picked = val.index(max(val))  # the first epoch with the best validation accuracy
    assert results["best_val_epoch"] == picked + 1 and results["best_val_acc"] == val[picked]
    assert results["test_acc_at_best_val"] == results["history"][picked]["test_acc"]


def test_schedules():
    shipped = StepDecayConfig()  # scheduler=step's defaults are the authors' schedule:
    authors = StepDecay(shipped.step_epochs, shipped.gamma, shipped.counted_from)  # lr = 0.1 * 0.1 ** (epoch // 50), from 1
    for done in range(300):  # every step of epoch done + 1 has the authors' lr for that epoch
        assert authors(done + 0.5) == pytest.approx(0.1 ** ((done + 1) // 50))
    assert [authors(e) for e in (0, 48.99, 49, 99, 149)] == pytest.approx([1, 1, 0.1, 0.01, 0.001])
    step = replace(authors, counted_from=0)
    assert [step(e) for e in (0, 49.99, 50, 100, 150)] == pytest.approx([1, 1, 0.1, 0.01, 0.001])
    cosine = WarmupCosine(epochs=10, warmup_epochs=2, final_fraction=0.0)
    assert cosine(0) < 0.01 and cosine(1) == pytest.approx(0.5, abs=0.01)
    assert cosine(2) == pytest.approx(1.0) and cosine(6) == pytest.approx(0.5) and cosine(10) == pytest.approx(0.0)
    assert Constant()(123.0) == 1.0


def test_device_choice():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="trainer.device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")


def test_the_logged_lr_is_the_one_the_epoch_ended_with(compose_config, tmp_path):
    """Warm-up over half of a 2-epoch run: epoch 1 ends at the peak, epoch 2 at the final rate."""
    _, results = train(compose_config("scheduler=cosine", "scheduler.warmup_epochs=1.5", "trainer.epochs=2",
                                   "trainer.limit_train_batches=4", "optimizer.lr=0.1",
                                   "scheduler.final_fraction=0.1"), tmp_path)
    lrs = [epoch["lr"] for epoch in results["history"]]
    steps = 4
    assert lrs[0] == pytest.approx(0.1 * ((steps - 1) / steps + 1e-3) / (1.5 + 1e-3))
    cosine = 0.5 * (1 + math.cos(math.pi * ((1 + (steps - 1) / steps) - 1.5) / 0.5))
    assert lrs[1] == pytest.approx(0.1 * (0.1 + 0.9 * cosine))


def test_a_chebyshev_k_outside_the_stable_range_is_logged(caplog):
    from mgnet_cli.model.smoothers.chebyshev import ChebyshevSmoother
    from mgnet_cli.train.tracking import warn_about

    smoother = ChebyshevSmoother(channels_u=4, channels_f=4, steps=3, k_init=0.5)
    warn_about(torch.nn.Sequential(smoother))
    assert not caplog.records
    with torch.no_grad():
        smoother.k[1] = -1.2
    warn_about(torch.nn.Sequential(smoother))
    assert "k_3 = -1.200 left (-1, 1)" in caplog.text
