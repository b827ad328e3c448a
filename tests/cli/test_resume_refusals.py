"""A refused resume leaves its run folder exactly as it was: every file's bytes, every entry's
mtime, the listing (no ``.hydra/resume-*``, no line added to train.log, the lock untouched), for
every reason a resume is refused, before Hydra starts or after."""

import os
import shutil
from pathlib import Path

import pytest
import torch

from mgnet_cli.storage import RunLock
from tests.data.test_cifar import write_cifar10
from tests.helpers import TINY, cli, one_line_error

FILES = [*TINY[3:], "dataset=cifar10", "dataset.download=false", "trainer.batch_size=16", "trainer.epochs=2"]
"""TINY on CIFAR-10 files (written by the test): a run whose data lives in a folder."""


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` and the folder itself (hidden ones, links not followed): its
    kind, its bytes (a file) or target (a link), and its mtime in nanoseconds."""
    entries = {}
    for parent, folders, files in os.walk(folder):
        for path in [Path(parent)] + [Path(parent) / name for name in folders + files]:
            stat = path.lstat()
            if path.is_symlink():
                what = ("link", os.readlink(path))
            elif path.is_dir():
                what = ("folder", None)
            else:
                what = ("file", path.read_bytes())
            entries[str(path.relative_to(folder))] = (*what, stat.st_mtime_ns)
    return entries


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 2-epoch run on CIFAR-10 files in ``<tmp>/data``."""
    root = tmp_path_factory.mktemp("finished")
    write_cifar10(root / "data", per_batch=13, num_test=8)
    cli("train", *FILES, f"dataset.root={root / 'data'}", f"hydra.run.dir={root / 'run'}", cwd=root)
    return root / "run"


def moved_out(run: Path, name: str, outside: Path) -> None:
    """``run/name`` moved to ``outside/name`` and replaced by a link to it."""
    outside.mkdir(exist_ok=True)
    shutil.move(run / name, outside / name)
    (run / name).symlink_to(outside / name)


def other_architecture(run: Path, outside: Path) -> None:
    """last.pt's config says 16 channels; its weights have 8."""
    checkpoint = torch.load(run / "last.pt", weights_only=True)
    for config in (checkpoint["config"], checkpoint["config_source"]):
        config["model"]["channels"] = 16
    (run / "last.pt").unlink()  # best.pt is a hard link to it: keep that one as it was
    torch.save(checkpoint, run / "last.pt")


REFUSALS = {  # reason: (overrides, how the run or its surroundings are set up first, the message)
    "a changed hyperparameter": (["optimizer.lr=0.5"], None, "optimizer.lr=0.5 would change the run"),
    "a value out of range": (["trainer.epochs=0"], None, "trainer.epochs=0: give an integer"),
    "fewer epochs than were run": (["trainer.epochs=1"], None, "trainer.epochs=1 is fewer than the 2 epochs"),
    "data not where it is said to be": (["dataset.root=nowhere"], None, "CIFAR-10 not found"),
    "weights of another architecture": ([], other_architecture, "another architecture"),
    # the lock is checked first, by the run-folder lock itself (storage.refusal): it names the link too
    "the lock a link outside": ([], lambda run, out: moved_out(run, ".mgnet.lock", out), "never where a link points"),
    "train.log a link outside": ([], lambda run, out: moved_out(run, "train.log", out), "outside the run folder"),
    ".hydra a link outside": ([], lambda run, out: moved_out(run, ".hydra", out), "outside the run folder"),
    "last.pt a link outside": ([], lambda run, out: moved_out(run, "last.pt", out), "outside the run folder"),
}


@pytest.mark.parametrize("reason", list(REFUSALS))
def test_a_refused_resume_changes_nothing(finished, tmp_path, reason):
    overrides, set_up, message = REFUSALS[reason]
    run, outside, here = tmp_path / "run", tmp_path / "outside", tmp_path / "here"
    shutil.copytree(finished, run, symlinks=True)
    here.mkdir()
    if set_up:
        set_up(run, outside)
    before = snapshot(tmp_path)
    result = cli("train", f"resume={run}", *(overrides or ["trainer.epochs=3"]), cwd=here, check=False)
    if reason == "data not where it is said to be":  # the data error's three lines (README)
        assert result.returncode == 2 and "Traceback" not in result.stderr and message in result.stderr
    else:
        assert message in one_line_error(result, "train")
    assert snapshot(tmp_path) == before


def test_a_resume_refused_for_its_device_changes_nothing(finished, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: trainer.device=cuda is not refused")
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = snapshot(tmp_path)
    result = cli("train", f"resume={run}", "trainer.device=cuda", cwd=tmp_path, check=False)
    assert "no CUDA device" in one_line_error(result, "train")
    assert snapshot(tmp_path) == before


def test_a_resume_of_a_run_being_written_changes_nothing(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    with RunLock(run):  # this process writes the run
        before = snapshot(tmp_path)
        result = cli("train", f"resume={run}", "trainer.epochs=3", cwd=tmp_path, check=False)
        assert "is being written by mgnet" in one_line_error(result, "train")
        assert snapshot(tmp_path) == before


def test_an_accepted_resume_records_itself_once_it_runs(finished, tmp_path):
    """The counterpart: the resume's Hydra record and log lines appear once it is accepted."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    log_before = (run / "train.log").read_text()
    cli("train", f"resume={run}", "trainer.epochs=3", cwd=tmp_path)
    records = list((run / ".hydra").glob("resume-*"))
    assert len(records) == 1 and sorted(p.name for p in records[0].iterdir()) == \
        ["config.yaml", "hydra.yaml", "overrides.yaml"]
    assert "trainer.epochs=3" in (records[0] / "overrides.yaml").read_text()
    log = (run / "train.log").read_text()
    assert log.startswith(log_before) and "resuming after epoch 2" in log[len(log_before):]
    assert "run folder" in log[len(log_before):].splitlines()[0]  # the held lines, in their order
