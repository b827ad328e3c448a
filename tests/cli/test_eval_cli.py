"""``mgnet eval``: metrics, per-class accuracy and confusion matrix of a checkpoint."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from tests.cli.test_faults import mounted
from tests.helpers import TINY, cli, copy_run, one_line_error


def test_eval_rebuilds_the_model_and_saves_json_and_png(tmp_path):
    run = tmp_path / "run"
    cli("train", *TINY, "trainer.epochs=2", "trainer.limit_eval_batches=null", f"hydra.run.dir={run}",
        cwd=tmp_path)
    out = cli("eval", f"checkpoint={run / 'last.pt'}", "device=cpu", cwd=tmp_path).stdout
    assert "top-1" in out and "per-class accuracy" in out and "confusion" in out
    report = json.loads((run / "eval" / "last_test.json").read_text())
    confusion = torch.tensor(report["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == report["images"] == 32
    assert report["top1"] == confusion.diagonal().sum().item() / 32
    trained = json.loads((run / "results.json").read_text())["history"][-1]
    assert abs(report["top1"] - trained["test_acc"]) < 1e-9  # the same model on the same images
    assert abs(report["loss"] - trained["test_loss"]) < 1e-4
    assert (run / "eval" / "last_test_confusion.png").stat().st_size > 1000

    flipped = cli("eval", f"checkpoint={run}", "tta=flip", "split=train", cwd=tmp_path)
    assert json.loads((run / "eval" / "best_train_tta-flip.json").read_text())["images"] == 64
    assert "best.pt" in flipped.stdout


def test_eval_of_a_missing_checkpoint_is_one_line(tmp_path):
    result = cli("eval", f"checkpoint={tmp_path / 'none.pt'}", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_eval_without_a_checkpoint_is_one_line(tmp_path):
    line = one_line_error(cli("eval", cwd=tmp_path, check=False), "eval")
    assert "checkpoint is required: give checkpoint=" in line
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def finished(tiny_run, tmp_path_factory) -> Path:
    return copy_run(tiny_run, tmp_path_factory.mktemp("finished") / "run")


def test_eval_into_a_file_is_one_line_before_it_evaluates(finished, tmp_path):
    (tmp_path / "taken").write_text("a file")
    result = cli("eval", f"checkpoint={finished}", "output_dir=taken/eval", cwd=tmp_path, check=False)
    assert f"output_dir=taken/eval: {tmp_path / 'taken'} is not a folder" in one_line_error(result, "eval")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken"] and not (finished / "eval").exists()


def test_eval_into_a_read_only_folder_is_one_line(finished, tmp_path):
    folder = tmp_path / "ro"
    if not mounted(folder, "size=1m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        shutil.copytree(finished, folder / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        result = cli("eval", f"checkpoint={folder / 'run'}", f"output_dir={folder / 'eval'}", cwd=tmp_path,
                     check=False)
        assert f"{folder} is not writable; give output_dir=" in one_line_error(result, "eval")
        result = cli("eval", f"checkpoint={folder / 'run'}", cwd=tmp_path, check=False)  # <run>/eval
        assert f"the default output folder {folder / 'run' / 'eval'}: {folder / 'run'} is not writable" in \
            one_line_error(result, "eval")
    finally:
        subprocess.run(["umount", str(folder)], check=False)
