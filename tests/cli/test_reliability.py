"""Nothing lost: signals save a resumable checkpoint, kill -9 leaves a loadable one, NaN stops.

Every wait is on an event (a file appears, a process ends), never on a guess of how long a step
takes: the runs are long enough (1000 epochs) that a loaded machine cannot finish them first.
"""

import json
import signal
from pathlib import Path

import pytest
import torch

from tests.helpers import LONG, TINY, cli, mgnet, start, wait_for


def start_long(run: Path, cwd: Path, *extra: str):
    return start("train", *LONG, *extra, f"hydra.run.dir={run}", cwd=cwd)


@pytest.mark.process
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_saves_a_checkpoint_and_the_run_resumes(tmp_path, signal_number):
    run = tmp_path / "run"
    process = start_long(run, tmp_path)
    wait_for((run / "results.json").exists, process, "the end of epoch 1")
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 128 + signal_number, stderr
    assert f"Resume with: mgnet train resume={run}" in stderr and "Traceback" not in stderr
    state = torch.load(run / "last.pt", weights_only=True)
    stopped_in = state["epoch"] + 1  # the epoch the signal stopped
    assert state["epoch"] >= 1 and 0 <= state.get("epoch_progress", {"step": 0})["step"] <= 128
    assert json.loads((run / "results.json").read_text())["status"] == "interrupted"

    mgnet("train", f"resume={run}", f"trainer.epochs={stopped_in}", cwd=tmp_path)
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "completed"
    assert [h["epoch"] for h in results["history"]] == list(range(1, stopped_in + 1))


@pytest.mark.process
def test_kill_9_leaves_the_last_complete_checkpoint_and_no_temporary_file(tmp_path):
    run = tmp_path / "run"
    process = start_long(run, tmp_path)
    wait_for((run / "last.pt").exists, process, "the first checkpoint")
    process.kill()
    process.communicate()
    state = torch.load(run / "last.pt", weights_only=True)  # complete, never half-written
    assert state["epoch"] >= 1
    orphan = run / ".last.pt.x1y2z3.tmp"  # what a kill -9 inside a save leaves
    orphan.write_bytes(b"half a checkpoint")
    mgnet("train", f"resume={run}", f"trainer.epochs={state['epoch'] + 1}", cwd=tmp_path)
    assert json.loads((run / "results.json").read_text())["epochs"] == state["epoch"] + 1
    assert not list(run.glob(".*.tmp"))


def test_nonfinite_loss_stops_with_step_loss_and_lr(tmp_path):
    run = tmp_path / "run"
    result = cli("train", *TINY, "optimizer.lr=1e12", "trainer.limit_train_batches=20",
                   f"hydra.run.dir={run}", cwd=tmp_path, check=False)
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert "NaN or infinite at step" in message and "lr 1e+12" in message and "last finite loss" in message
    assert not (run / "last.pt").exists()  # nothing from the broken epoch was saved
    assert json.loads((run / "results.json").read_text())["status"] == "failed"

    skipped = tmp_path / "skipped"
    cli("train", *TINY, "optimizer.lr=1e12", "trainer.limit_train_batches=20",
          "trainer.skip_nonfinite=true", f"hydra.run.dir={skipped}", cwd=tmp_path)
    history = json.loads((skipped / "results.json").read_text())["history"]
    assert history[0]["train_skipped_nonfinite"] >= 1


def test_a_run_whose_every_batch_was_skipped_failed(tmp_path):
    """Epoch 1 learns from its first step and blows up; epoch 2 skips every batch: failed, not completed."""
    run = tmp_path / "run"
    result = cli("train", *TINY, "optimizer.lr=1e12", "trainer.limit_train_batches=4", "trainer.epochs=2",
                   "trainer.skip_nonfinite=true", f"hydra.run.dir={run}", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "every batch of epoch 2" in result.stderr
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "failed" and "every batch of epoch 2" in results["error"]
