"""Off a terminal (a log file, CI) training is never silent for long: a line every 30 s of the
clock, with the step, the running loss and images/s, besides every ``log_every_n_steps`` steps."""

import re

import torch

from mgnet_cli.cli.build import build_training
from mgnet_cli.train import tracking
from mgnet_cli.train.epoch import EpochHooks, TrainStep, train_epoch


def test_a_slow_epoch_logs_a_progress_line_every_30_seconds(compose_config, caplog, monkeypatch):
    monkeypatch.setattr(tracking, "interactive", lambda: False)  # as in a log file, even under pytest -s
    t = build_training(compose_config("trainer.batch_size=8", "trainer.limit_train_batches=null"))
    scheduler = torch.optim.lr_scheduler.LambdaLR(t.optimizer, lambda step: 1.0)
    step = TrainStep(t.model, t.optimizer, scheduler, t.trainer, t.place)
    ten_seconds_a_step = lambda: 10.0 * scheduler.last_epoch  # the clock moves when a step is taken
    with caplog.at_level("INFO", logger="mgnet_cli.train.tracking"):
        done = train_epoch(step, t.batches.train, "epoch 1/1",
                           hooks=EpochHooks(log_every=1000, clock=ten_seconds_a_step))
    assert done.step == 8  # 64 images, batches of 8
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines  # at 30 s and 60 s; none after the last step
    for line, steps in zip(lines, (3, 6)):
        match = re.fullmatch(rf"epoch 1/1: {steps}/8 batches, loss (\d+\.\d+), 0\.8 images/s \({10 * steps} s\)", line)
        assert match, line  # 8 images per 10 s step
        assert 0.1 < float(match.group(1)) < 10.0
