"""Nothing lost: signals save a resumable checkpoint, kill -9 leaves a loadable one, NaN stops."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.cli.test_train_cli import TINY, mgnet

LONG = [*TINY, "dataset.num_train=2048", "trainer.batch_size=16", "trainer.limit_train_batches=null",
        "trainer.epochs=2"]  # 128 steps an epoch: time to send a signal mid-epoch


def start(run: Path, cwd: Path, *extra: str) -> subprocess.Popen:
    script = Path(sys.executable).parent / "mgnet"
    return subprocess.Popen([str(script), "train", *LONG, *extra, f"hydra.run.dir={run}"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_checkpoint_and_the_run_resumes(tmp_path, signal_number):
    run = tmp_path / "run"
    process = start(run, tmp_path)
    wait_for(run / "results.json", process)  # written at the end of epoch 1: stop inside epoch 2
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal_number, stderr
    assert f"Resume with: mgnet train resume={run}" in stderr and "Traceback" not in stderr
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and 0 < state["epoch_progress"]["step"] <= 128
    assert json.loads((run / "results.json").read_text())["status"] == "interrupted"

    mgnet("train", f"resume={run}", cwd=tmp_path)
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "completed" and [h["epoch"] for h in results["history"]] == [1, 2]


def test_kill_9_leaves_the_last_complete_checkpoint(tmp_path):
    run = tmp_path / "run"
    process = start(run, tmp_path)
    wait_for(run / "last.pt", process)
    process.kill()
    process.communicate()
    state = torch.load(run / "last.pt", weights_only=True)  # complete, never half-written
    assert state["epoch"] >= 1 and not list(run.glob(".last.pt.*"))
    mgnet("train", f"resume={run}", cwd=tmp_path)
    assert json.loads((run / "results.json").read_text())["epochs"] == 2


def test_nonfinite_loss_stops_with_step_loss_and_lr(tmp_path):
    run = tmp_path / "run"
    result = mgnet("train", *TINY, "optimizer.lr=1e12", "trainer.limit_train_batches=20",
                   f"hydra.run.dir={run}", cwd=tmp_path, check=False)
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert "NaN or infinite at step" in message and "lr 1e+12" in message and "last finite loss" in message
    assert not (run / "last.pt").exists()  # nothing from the broken epoch was saved
    assert json.loads((run / "results.json").read_text())["status"] == "failed"

    skipped = tmp_path / "skipped"
    mgnet("train", *TINY, "optimizer.lr=1e12", "trainer.limit_train_batches=20",
          "trainer.skip_nonfinite=true", f"hydra.run.dir={skipped}", cwd=tmp_path)
    history = json.loads((skipped / "results.json").read_text())["history"]
    assert history[0]["train_skipped_nonfinite"] >= 1
