"""Every writer guarded: a full disk at Hydra's record, the log file, the TensorBoard events, the
plots, or eval's, solve's and report's outputs is one line naming the file (exit code 2, no
traceback, no temporary file left), and a run it stops says ``failed``. The disk is a real full
file system (a small tmpfs; skipped where mounting is not permitted) or, where the fault must hit
one writer among several, an ENOSPC injected at the call that writes the bytes."""

import errno
import json
import logging
import subprocess
from pathlib import Path

import pytest

from mgnet_cli.storage import WriteError
from mgnet_cli.train.tracking import RunLogHandler, Tracker
from tests.helpers import TINY, cli, copy_run, fit_config, one_line_error

NO_SPACE = "No space left on device"


@pytest.fixture
def full_disk(tmp_path) -> Path:
    """A 200 KiB tmpfs with no byte left (files and folders can still be made)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        with open(folder / "filler", "wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
    except OSError as error:
        assert error.errno == errno.ENOSPC
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def no_temporary_files(folder: Path) -> bool:
    return not [path for path in folder.rglob("*.tmp")]


def test_the_log_file_on_a_full_disk_fails_once_then_is_silent(full_disk, capsys):
    handler = RunLogHandler(str(full_disk / "run" / "train.log"))
    (full_disk / "run").mkdir()
    record = logging.LogRecord("mgnet", logging.INFO, __file__, 1, "x" * 5000, None, None)
    with pytest.raises(WriteError, match=f"cannot write {full_disk}/run/train.log: {NO_SPACE}"):
        handler.emit(record)
    for _ in range(100):
        handler.emit(record)
    handler.close()
    assert capsys.readouterr().err == ""  # no "--- Logging error ---" traceback per record


def test_tensorboard_events_on_a_full_disk_are_one_error_naming_the_file(full_disk, capsys):
    with pytest.raises(WriteError, match=f"events.out.tfevents.*: {NO_SPACE}"):
        with Tracker(full_disk / "run") as tracker:
            for step in range(1000):
                tracker.scalars(step, {"train/loss": 1.0 / (step + 1)})
            tracker.flush()
    assert "Traceback" not in capsys.readouterr().err  # none from a writer thread either


def test_a_failing_event_file_ends_the_training_failed_naming_it(compose_config, tmp_path, monkeypatch, capsys):
    from tensorboard.summary.writer import record_writer

    def no_space(self) -> None:
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr(record_writer.RecordWriter, "flush", no_space)  # the bytes to the disk
    with pytest.raises(WriteError, match="events.out.tfevents"):
        fit_config(compose_config(), tmp_path / "run")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "failed"
    assert "events.out.tfevents" in results["error"] and NO_SPACE in results["error"]
    assert "Traceback" not in capsys.readouterr().err


def test_solve_on_a_full_disk_is_one_line_and_writes_no_half_file(full_disk, tmp_path):
    run = full_disk / "run"
    result = cli("solve", "problem.n=15", f"hydra.run.dir={run}", cwd=tmp_path, check=False)
    line = one_line_error(result, "solve")
    assert f"cannot write {run}/" in line and NO_SPACE in line
    assert no_temporary_files(run) and not (run / "results.json").exists()


def test_train_on_a_full_disk_is_one_line_and_leaves_no_folder(full_disk, tmp_path):
    run = full_disk / "run"
    result = cli("train", *TINY, f"hydra.run.dir={run}", cwd=tmp_path, check=False)
    line = one_line_error(result, "train")
    assert f"cannot write {run}/" in line and NO_SPACE in line
    assert not run.exists()


@pytest.fixture(scope="module")
def finished(tiny_run, tmp_path_factory) -> Path:
    return copy_run(tiny_run, tmp_path_factory.mktemp("finished") / "run")


def test_a_report_on_a_full_disk_is_one_line_naming_the_file(finished, full_disk, tmp_path):
    result = cli("report", str(finished), "--output", str(full_disk / "report"), cwd=tmp_path, check=False)
    line = one_line_error(result, "report")
    assert f"cannot write {full_disk}/report/" in line and NO_SPACE in line
    assert no_temporary_files(full_disk)


def test_eval_into_a_folder_it_cannot_make_is_one_line(finished, tmp_path):
    (tmp_path / "a file").write_text("")
    result = cli("eval", f"checkpoint={finished}", "device=cpu", f"output_dir={tmp_path / 'a file' / 'eval'}",
                 cwd=tmp_path, check=False)
    line = one_line_error(result, "eval")  # checked before anything is evaluated (cli/eval.py output_folder)
    assert f"output_dir={tmp_path / 'a file' / 'eval'}" in line and "is not a folder" in line
