"""``torchrun --nproc_per_node=2 mgnet train``: two gloo processes on the CPU make one run, in one
folder written by rank 0, with the same weights on both ranks; resumes change the number of ranks."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import LONG, TINY, cli, mgnet, wait_for

BIN = Path(sys.executable).parent
# 33 test images: the ranks evaluate 17 and 16; one step an epoch, so the first epoch's train loss
# is the first step's
RUN = [*TINY, "dataset.num_test=33", "trainer.limit_train_batches=1"]


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 mgnet ...`` (one thread per rank, as torchrun sets)."""
    command = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(BIN / "mgnet"), *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One epoch of the same run on two ranks (no hydra.run.dir: each rank's Hydra would pick its
    own folder) and on one process; the tests copy a folder before resuming it."""
    cwd = tmp_path_factory.mktemp("distributed")
    torchrun("train", *RUN, cwd=cwd)
    cli("train", *RUN, f"hydra.run.dir={cwd / 'single'}", cwd=cwd)
    return {"cwd": cwd, "single": cwd / "single",
            "outputs": [path for path in (cwd / "outputs").glob("*/*") if path.is_dir()]}


@pytest.mark.process
def test_two_ranks_write_one_run_folder_with_the_same_weights(runs):
    assert len(runs["outputs"]) == 1, runs["outputs"]
    run = runs["outputs"][0]
    assert list((runs["cwd"] / "outputs").rglob("results.json")) == [run / "results.json"]
    assert (run / "train.log").read_text().count("data-parallel over 2 ranks") == 1  # rank 0's log
    writers = {path.name.split(".")[4] for path in run.glob("events.out.tfevents.*")}  # ...host.pid.n
    assert len(writers) == 1  # one process wrote the TensorBoard events
    two = results(run)
    assert two["status"] == "completed" and two["world_size"] == 2
    assert two["ranks_in_sync"] is True and two["max_rank_difference"] == 0.0


@pytest.mark.process
def test_the_first_step_loss_is_the_single_process_one_but_for_batchnorm(runs):
    """The same seed and global batch (16) give the same first step on 1 and 2 processes, but for
    BatchNorm: each rank normalises its 8 images by their own statistics (no SyncBatchNorm on the
    CPU). The first step's loss is measured before the update, so only that differs: the two must
    agree within 5 % (at initialisation the loss is near ln 10, and half a batch's statistics move
    it by about 1 %). The exact comparison, BatchNorm aside, is tests/train/test_distributed.py's."""
    two = results(runs["outputs"][0])["history"][0]["train_loss"]
    one = results(runs["single"])["history"][0]["train_loss"]
    assert two == pytest.approx(one, rel=0.05)


@pytest.mark.process
def test_a_two_rank_run_resumes_on_one_process(runs, tmp_path):
    run = shutil.copytree(runs["outputs"][0], tmp_path / "run")
    mgnet("train", f"resume={run}", "trainer.epochs=2", cwd=tmp_path)
    resumed = results(run)
    assert resumed["status"] == "completed" and [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert resumed["history"][0] == results(runs["outputs"][0])["history"][0]


@pytest.mark.process
def test_a_single_process_run_resumes_on_two_ranks(runs, tmp_path):
    run = shutil.copytree(runs["single"], tmp_path / "run")
    torchrun("train", f"resume={run}", "trainer.epochs=2", cwd=tmp_path)
    resumed = results(run)
    assert resumed["status"] == "completed" and [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert resumed["world_size"] == 2 and resumed["ranks_in_sync"] is True


@pytest.mark.process
@pytest.mark.parametrize("arguments, message", [
    (["train", "-m", "seed=1,2"], "a sweep (-m) cannot run under torchrun"),
    (["eval"], "mgnet eval runs in one process"),
])  # fmt: skip
def test_what_torchrun_cannot_run_is_one_line(tmp_path, arguments, message):
    result = subprocess.run([str(BIN / "mgnet"), *arguments], cwd=tmp_path, capture_output=True,
                            text=True, env=os.environ | {"WORLD_SIZE": "2", "RANK": "0"}, timeout=120)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.process
def test_a_signal_to_torchrun_stops_every_rank_with_one_resume_line(tmp_path):
    """SIGTERM to torchrun reaches both ranks; they stop at the same step, rank 0 saves last.pt
    mid-epoch, and the user reads one "Resume with" line, not one per rank."""
    run = tmp_path / "run"
    command = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(BIN / "mgnet"), "train",
               *LONG, "dataset.num_train=4096", f"hydra.run.dir={run}"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for((run / "results.json").exists, process, "the end of epoch 1")  # then stop in a later epoch
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert stderr.count(f"Resume with: mgnet train resume={run}") == 1, stderr
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] >= 1 and 0 <= state.get("epoch_progress", {"step": 0})["step"] <= 256


def test_the_ranks_folder_is_the_composed_run_dir(tmp_path):
    """What rank 0 sends every rank: ``hydra.run.dir`` composed from the command line, resolved."""
    from mgnet_cli.cli import register_configs
    from mgnet_cli.cli.torchrun import run_folder
    from mgnet_cli.train.guards import hydra_quoted

    register_configs()
    assert re.fullmatch(r"outputs/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d-\d{6}", run_folder(["trainer.epochs=1"]))
    run = tmp_path / "0_seed=1,smoother=resnet it's"
    run.mkdir()
    assert run_folder([f"resume={hydra_quoted(str(run))}"]) == str(run)
    assert run_folder([f"resume={hydra_quoted(str(run / 'last.pt'))}"]) == str(run)
    assert run_folder([f"hydra.run.dir={hydra_quoted(str(run))}"]) == str(run)
