"""Exact resume: 1 epoch + resume to 2 ends where an uninterrupted 2-epoch run ends."""

import json

import torch

from tests.helpers import TINY, cli, copy_run

DETERMINISTIC = [*TINY, "trainer.deterministic=true", "trainer.limit_train_batches=3",
                 "dataset.augmentation.crop_padding=2", "dataset.augmentation.flip=true",
                 "smoother=chebyshev", "model.smoothing_steps=[2,1]", "scheduler=step",
                 "scheduler.step_epochs=1", "scheduler.gamma=0.5",  # lr halves where the resume starts
                 "trainer.threads=1"]  # a deterministic run takes every core by default: on a model this
# small a second thread only waits on the first (3x the CPU time), and the resume is exact either way


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    cli("train", *DETERMINISTIC, "trainer.epochs=2", f"hydra.run.dir={straight}", cwd=tmp_path)
    cli("train", *DETERMINISTIC, "trainer.epochs=1", f"hydra.run.dir={resumed}", cwd=tmp_path)
    cli("train", f"resume={resumed}", "trainer.epochs=2", cwd=tmp_path)

    a = torch.load(straight / "last.pt", weights_only=True)
    b = torch.load(resumed / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    history_a = json.loads((straight / "results.json").read_text())["history"]
    history_b = json.loads((resumed / "results.json").read_text())["history"]
    for epoch_a, epoch_b in zip(history_a, history_b, strict=True):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
            assert epoch_a[key] == epoch_b[key], key


def test_resume_refuses_an_architecture_change(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    result = cli("train", f"resume={run}", "model.channels=16", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "model.channels=16 would change the run" in result.stderr


def test_resume_may_switch_the_speed_settings(tmp_path):
    """A run started plain goes on with bf16 and channels-last (as when it moves to a GPU)."""
    run = tmp_path / "run"
    cli("train", *TINY, "trainer.channels_last=false", f"hydra.run.dir={run}", cwd=tmp_path)
    cli("train", f"resume={run}", "trainer.epochs=2", "trainer.precision=bf16",
        "trainer.channels_last=true", cwd=tmp_path)
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "completed" and [h["epoch"] for h in results["history"]] == [1, 2]
    trainer = torch.load(run / "last.pt", weights_only=True)["config"]["trainer"]
    assert (trainer["precision"], trainer["channels_last"]) == ("bf16", True)


def test_resume_of_a_missing_run_says_so(tmp_path):
    result = cli("train", f"resume={tmp_path / 'nowhere'}", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "does not exist" in result.stderr
