"""``mgnet eval``: metrics, per-class accuracy and confusion matrix of a checkpoint."""

import json

import torch

from tests.helpers import TINY, mgnet


def test_eval_rebuilds_the_model_and_saves_json_and_png(tmp_path):
    run = tmp_path / "run"
    mgnet("train", *TINY, "trainer.epochs=2", "trainer.limit_eval_batches=null", f"hydra.run.dir={run}",
          cwd=tmp_path)
    out = mgnet("eval", f"checkpoint={run / 'last.pt'}", "device=cpu", cwd=tmp_path).stdout
    assert "top-1" in out and "per-class accuracy" in out and "confusion" in out
    report = json.loads((run / "eval" / "last_test.json").read_text())
    confusion = torch.tensor(report["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == report["images"] == 32
    assert report["top1"] == confusion.diagonal().sum().item() / 32
    trained = json.loads((run / "results.json").read_text())["history"][-1]
    assert abs(report["top1"] - trained["test_acc"]) < 1e-9  # the same model on the same images
    assert abs(report["loss"] - trained["test_loss"]) < 1e-4
    assert (run / "eval" / "last_test_confusion.png").stat().st_size > 1000

    flipped = mgnet("eval", f"checkpoint={run}", "tta=flip", "split=train", cwd=tmp_path)
    assert json.loads((run / "eval" / "best_train_tta-flip.json").read_text())["images"] == 64
    assert "best.pt" in flipped.stdout


def test_eval_of_a_missing_checkpoint_is_one_line(tmp_path):
    result = mgnet("eval", f"checkpoint={tmp_path / 'none.pt'}", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
