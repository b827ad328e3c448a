"""Faults and refusals leave every result true: a refused resume changes nothing, a run folder has
one writer, a full or read-only disk is one line with the status kept right, signals never leave
``running`` behind, and the printed resume line works for any folder name."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from mgnet_cli.train.guards import StopSignal, resume_command
from tests.helpers import BIN, TINY, cli, copy_run, one_line_error, start, wait_for


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) and its content's hash."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def finished(tiny_run, tmp_path_factory) -> Path:
    return copy_run(tiny_run, tmp_path_factory.mktemp("finished") / "run")


@pytest.mark.parametrize("overrides, message", [
    (["optimizer.lr=0.5"], "optimizer.lr=0.5 would change the run"),
    (["trainer.epochs=0"], "trainer.epochs=0: give an integer"),
    (["trainer.device=tpu"], "trainer.device=tpu"),
])
def test_a_refused_resume_leaves_the_run_exactly_as_it_was(finished, tmp_path, overrides, message):
    before = fingerprint(finished)
    line = one_line_error(cli("train", f"resume={finished}", *overrides, cwd=tmp_path, check=False), "train")
    assert message in line
    assert fingerprint(finished) == before
    assert json.loads((finished / "results.json").read_text())["status"] == "completed"
    assert not list(tmp_path.iterdir())


def test_a_resume_of_a_typo_creates_nothing_anywhere(tmp_path):
    line = one_line_error(cli("train", "resume=outputs/2026-01-01/typo", cwd=tmp_path, check=False), "train")
    assert "does not exist" in line and not list(tmp_path.iterdir())


def test_a_new_run_refused_before_training_leaves_no_folder(tmp_path):
    result = cli("train", "dataset=cifar10", "dataset.download=false", f"dataset.root={tmp_path / 'nodata'}",
                 "trainer.device=cpu", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "nodata").exists()


@pytest.mark.process
@pytest.mark.parametrize("name", ["0_smoother=resnet,seed=0", "a folder with spaces", "résumé ü",
                                  "it's", "cost$1"])
def test_the_printed_resume_line_works_for_any_folder_name(finished, tmp_path, name):
    run = tmp_path / name
    shutil.copytree(finished, run)
    line = resume_command(run)
    result = subprocess.run(["bash", "-c", f"{line} trainer.epochs=2"], cwd=tmp_path, capture_output=True,
                            text=True, env=os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}"})  # the venv's mgnet, activated or not
    assert result.returncode == 0, (line, result.stderr)
    assert json.loads((run / "results.json").read_text())["epochs"] == 2


@pytest.mark.process
def test_a_run_folder_has_one_writer(tmp_path):
    run = tmp_path / "run"
    first = start("train", *TINY, "dataset.num_train=2048", "trainer.batch_size=16",
                  "trainer.limit_train_batches=null", "trainer.epochs=1000", f"hydra.run.dir={run}", cwd=tmp_path)
    try:
        wait_for((run / "last.pt").exists, first, "the first run's first checkpoint")
        second = cli("train", *TINY, f"hydra.run.dir={run}", cwd=tmp_path, check=False)
        assert "is being written by mgnet (pid" in one_line_error(second, "train")
        again = cli("train", f"resume={run}", cwd=tmp_path, check=False)
        assert "is being written by mgnet (pid" in one_line_error(again, "train")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=600)
    assert json.loads((run / "results.json").read_text())["status"] == "interrupted"


def test_a_second_ctrl_c_waits_for_the_checkpoint_being_written():
    with StopSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.received == signal.SIGINT
        with stop.saving():
            os.kill(os.getpid(), signal.SIGINT)  # would interrupt the save: deferred
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # outside a save, the second Ctrl-C stops at once


@pytest.mark.process
def test_ctrl_c_during_start_up_is_one_line_and_leaves_nothing(tmp_path):
    process = start("train", *TINY, "dataset.num_train=20000", cwd=tmp_path)  # seconds to generate
    wait_for(lambda: (tmp_path / "outputs").exists(), process, "the run folder")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    leftovers = [p for p in (tmp_path / "outputs").rglob("*") if p.name in ("results.json", "last.pt")]
    assert not leftovers


def mounted(folder: Path, *options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    if not mounted(folder, "size=160k"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_is_one_line_the_status_is_true_and_last_pt_loads(small_disk, tmp_path):
    run = small_disk / "run"
    result = cli("train", *TINY, "model.channels=24", "trainer.epochs=20", "trainer.limit_train_batches=1",
                 f"hydra.run.dir={run}", cwd=tmp_path, check=False)
    line = one_line_error(result, "train")
    assert "No space left on device" in line and str(run) in line
    if (run / "last.pt").exists():  # the last complete one
        assert torch.load(run / "last.pt", weights_only=True)["epoch"] >= 1
    results = run / "results.json"
    assert not results.exists() or json.loads(results.read_text())["status"] != "running"
    assert not list(run.glob(".*.tmp"))


@pytest.mark.process
def test_a_resume_on_a_read_only_mount_is_refused_before_it_starts(finished, tmp_path):
    folder = tmp_path / "ro"
    if not mounted(folder, "size=4m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        shutil.copytree(finished, folder / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        result = cli("train", f"resume={folder / 'run'}", "trainer.epochs=2", cwd=tmp_path, check=False)
        assert "is not writable" in one_line_error(result, "train")
    finally:
        subprocess.run(["umount", str(folder)], check=False)
