"""What first-day users of timm and lightning-hydra-template reach for: label smoothing, gradient
clipping, early stopping, resume=latest and a CSV of the metrics."""

import csv
import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from mgnet_cli.cli.build import build_training
from mgnet_cli.train.epoch import TrainStep, train_epoch
from mgnet_cli.train.loop import fit
from tests.helpers import TINY, cli


def plain_sgd(lr: float) -> list[str]:
    """One batch of SGD without momentum or weight decay."""
    return ["trainer.limit_train_batches=1", f"optimizer.lr={lr}", "optimizer.momentum=0", "optimizer.weight_decay=0"]


def one_step(compose_config, lr: float, **options):
    """(model before, model after, the step's metrics) of one SGD step on the first batch."""
    t = build_training(compose_config(*plain_sgd(lr)))
    before = {name: p.detach().clone() for name, p in t.model.named_parameters()}
    scheduler = torch.optim.lr_scheduler.LambdaLR(t.optimizer, lambda step: 1.0)
    step = TrainStep(t.model, t.optimizer, scheduler, dataclasses.replace(t.trainer, **options), t.place)
    progress = train_epoch(step, t.batches.train, "test", 1)
    return t, before, progress


def test_a_train_step_is_exactly_the_plain_sgd_step(compose_config):
    """fp32's disabled GradScaler passes the step through: bit for bit backward + optimizer.step."""
    twin = build_training(compose_config(*plain_sgd(0.5)))
    images, labels = next(iter(twin.batches.train))
    twin.model.train()
    twin.optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(twin.model(images), labels).backward()
    twin.optimizer.step()
    t, before, progress = one_step(compose_config, 0.5)
    changed = 0
    for (name, ours), theirs in zip(t.model.state_dict().items(), twin.model.state_dict().values()):
        assert torch.equal(ours, theirs), name
        changed += name in before and not torch.equal(ours, before[name])
    assert changed >= len(before) - 1  # all but the one unused A (tests/model/test_every_smoother.py)
    assert progress.step == 1 and progress.skipped == 0


def test_label_smoothing_is_the_loss_against_softened_targets(compose_config):
    twin = build_training(compose_config("trainer.limit_train_batches=1", "optimizer.lr=1e-12"))
    images, labels = next(iter(twin.batches.train))  # the batch one_step's identical build trains on
    twin.model.train()
    with torch.no_grad():
        expected = F.cross_entropy(twin.model(images), labels, label_smoothing=0.1)
        plain = F.cross_entropy(twin.model(images), labels)
    _, _, progress = one_step(compose_config, 1e-12, label_smoothing=0.1)
    assert progress.metrics()["loss"] == pytest.approx(expected.item(), rel=1e-4)
    assert abs(expected.item() - plain.item()) > 1e-3


def test_gradient_clipping_caps_the_step(compose_config):
    def step_norm(**options) -> float:
        t, before, _ = one_step(compose_config, 1.0, **options)
        return torch.sqrt(sum(((p.detach() - before[name]) ** 2).sum()
                              for name, p in t.model.named_parameters())).item()

    assert step_norm() > 0.01
    assert step_norm(clip_grad_norm=1e-3) == pytest.approx(1e-3, rel=1e-3)  # lr 1: the step is the gradient


def test_early_stopping_ends_the_run_when_the_accuracy_stops_improving(compose_config, tmp_path):
    t = build_training(compose_config("trainer.epochs=30", "trainer.early_stopping_patience=2",
                                      "optimizer.lr=1e-9", "scheduler=constant"))  # next to no learning
    results = fit(t, tmp_path)
    accuracies = [epoch["test_acc"] for epoch in results["history"]]
    best = accuracies.index(max(accuracies)) + 1  # the first epoch with the best accuracy
    assert results["status"] == "completed" and results["epochs"] < 30
    assert results["stopped_early_after_epoch"] == results["epochs"] == best + 2


def test_resume_latest_and_the_metrics_csv(tmp_path):
    cli("train", *TINY, "trainer.epochs=2", cwd=tmp_path)
    cli("train", "resume=latest", "trainer.epochs=3", cwd=tmp_path)
    (run,) = [path.parent for path in (tmp_path / "outputs").rglob("results.json")]
    history = json.loads((run / "results.json").read_text())["history"]
    with (run / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3] == [epoch["epoch"] for epoch in history]
    assert [float(row["test_acc"]) for row in rows] == [epoch["test_acc"] for epoch in history]


def test_resume_latest_without_runs_is_one_line(tmp_path):
    result = cli("train", "resume=latest", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "resume=latest: no run with a last.pt under" in result.stderr


@pytest.mark.parametrize("decay, follows", [(1e-9, "the last weights"), (1 - 1e-9, "the first step's weights")])
def test_the_ema_of_the_weights_is_evaluated_and_checkpointed(compose_config, tmp_path, decay, follows):
    t = build_training(compose_config("trainer.limit_train_batches=3", f"trainer.ema_decay={decay}"))
    results = fit(t, tmp_path)
    assert {"test_ema_acc", "test_ema_loss"} <= set(results["history"][0])
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    ema = {key.removeprefix("module."): value for key, value in state["ema"].items() if key.startswith("module.")}
    weights = {name: p for name, p in state["model"].items() if name.endswith("weight")}
    close = [torch.allclose(ema[name], value, atol=1e-6) for name, value in weights.items()]
    assert all(close) if follows == "the last weights" else not all(close)
    assert int(state["ema"]["n_averaged"]) == 3
