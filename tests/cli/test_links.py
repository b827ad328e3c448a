"""Nothing follows a link out of a run folder: a run folder received from someone else may hold
symbolic links (``.mgnet.lock``, ``train.log``, ``.hydra``, ``eval``) to files elsewhere; every
writer refuses them in one line and the file they point at stays byte for byte as it was."""

import logging
import os
import shutil
from pathlib import Path

import pytest

from mgnet_cli.storage import RunLock, WriteError, check_unlocked, write_json_atomic
from mgnet_cli.train.tracking import RunLogHandler
from tests.helpers import cli, copy_run, one_line_error

PRECIOUS = b"someone else's file\n"


@pytest.fixture
def outside(tmp_path) -> Path:
    """A file outside every run folder, which no link may lead mgnet to write."""
    path = tmp_path / "elsewhere" / "precious.txt"
    path.parent.mkdir()
    path.write_bytes(PRECIOUS)
    return path


def untouched(outside: Path) -> bool:
    return outside.read_bytes() == PRECIOUS and sorted(outside.parent.iterdir()) == [outside]


def test_the_lock_is_never_taken_through_a_link(tmp_path, outside):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".mgnet.lock").symlink_to(outside)
    with pytest.raises(WriteError, match="is a symbolic link"):
        with RunLock(run):
            pass
    with pytest.raises(WriteError, match="is a symbolic link"):
        check_unlocked(run)
    assert untouched(outside)


def test_the_log_file_is_never_appended_through_a_link(tmp_path, outside):
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.log").symlink_to(outside)
    handler = RunLogHandler(str(run / "train.log"))
    record = logging.LogRecord("mgnet", logging.INFO, __file__, 1, "a line", None, None)
    with pytest.raises(WriteError, match="train.log is a symbolic link"):
        handler.emit(record)
    handler.emit(record)  # then silent: one line, not one per record
    handler.close()
    assert untouched(outside)


@pytest.mark.parametrize("linked", ["file", "folder"])
def test_an_atomic_write_into_a_linked_folder_is_refused(tmp_path, outside, linked):
    run = tmp_path / "run"
    run.mkdir()
    target = outside if linked == "file" else outside.parent
    (run / "eval").symlink_to(target)
    with pytest.raises(WriteError, match="eval is a symbolic link"):
        write_json_atomic(run / "eval" / "best_test.json", {"top1": 1.0}, root=run)
    assert untouched(outside)


def test_an_atomic_write_replaces_a_linked_file_never_writes_through_it(tmp_path, outside):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").symlink_to(outside)
    write_json_atomic(run / "results.json", {"status": "completed"})
    assert not (run / "results.json").is_symlink() and untouched(outside)


@pytest.fixture(scope="module")
def finished(tiny_run, tmp_path_factory) -> Path:
    return copy_run(tiny_run, tmp_path_factory.mktemp("finished") / "run")


@pytest.mark.parametrize("name, target", [
    (".mgnet.lock", "file"), ("train.log", "file"), (".hydra", "folder"),
])
def test_a_resume_writes_nothing_through_a_link_in_the_run_folder(finished, tmp_path, outside, name, target):
    run = tmp_path / "run"
    shutil.copytree(finished, run, symlinks=True)
    shutil.rmtree(run / name) if (run / name).is_dir() else (run / name).unlink()
    (run / name).symlink_to(outside if target == "file" else outside.parent)
    result = cli("train", f"resume={run}", "trainer.epochs=2", cwd=tmp_path, check=False)
    line = one_line_error(result, "train")
    assert name in line and "link" in line  # refused by the resume's own check of links leaving the folder
    assert untouched(outside)
    assert '"status": "completed"' in (run / "results.json").read_text()


def test_eval_writes_nothing_through_a_linked_eval_folder(finished, tmp_path, outside):
    run = tmp_path / "run"
    shutil.copytree(finished, run, symlinks=True)
    (run / "eval").symlink_to(outside.parent)
    result = cli("eval", f"checkpoint={run}", "device=cpu", cwd=tmp_path, check=False)
    assert "eval is a symbolic link" in one_line_error(result, "eval")
    assert untouched(outside)
    assert os.readlink(run / "eval") == str(outside.parent)
