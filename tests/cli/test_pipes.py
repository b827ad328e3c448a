"""Quiet pipes: every command ends quietly when the reader of its output has left
(``mgnet info | head -1``): exit code 0, nothing on stderr but what it would say anyway, no
BrokenPipeError or "Logging error" traceback. The reader here has left before the command
starts (the pipe's read end is closed), so every write meets the broken pipe."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import BIN, PATIENCE_S, TINY, copy_run

pytestmark = pytest.mark.process  # what a closed pipe does to a real process's stdout


def into_a_closed_pipe(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``mgnet <args>`` writing its output into a pipe nobody reads any more."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([str(BIN / "mgnet"), *args], cwd=cwd, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=PATIENCE_S)
    finally:
        os.close(write_end)


def quiet(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == 0 and not any(
        word in result.stderr for word in ("Traceback", "Error", "Exception ignored"))


@pytest.fixture(scope="module")
def finished(tiny_run, tmp_path_factory) -> Path:
    return copy_run(tiny_run, tmp_path_factory.mktemp("finished") / "run")


@pytest.mark.parametrize("args", [
    ["--help"], ["--version"], ["info", "--help"], ["train", "--help"], ["report", "--help"],
    ["info", "dataset=synthetic"], ["info", "dataset=synthetic", "info.format=json"],
    ["solve", "problem.n=15"], ["solve", "-m", "problem.n=15,31"],
    ["train", "--cfg", "job"], ["train", "--shell-completion", "install=bash"], ["info", "--info"],
])
def test_a_command_whose_reader_left_ends_quietly(args, tmp_path):
    result = into_a_closed_pipe(*args, cwd=tmp_path)
    assert quiet(result), (result.returncode, result.stderr)


def test_report_and_eval_whose_reader_left_end_quietly_with_their_files(finished, tmp_path):
    report = into_a_closed_pipe("report", str(finished), "--output", str(tmp_path / "report"), cwd=tmp_path)
    assert quiet(report), report.stderr
    assert (tmp_path / "report" / "report.md").is_file()
    evaluation = into_a_closed_pipe("eval", f"checkpoint={finished}", "device=cpu",
                                    f"output_dir={tmp_path / 'eval'}", cwd=tmp_path)
    assert quiet(evaluation), evaluation.stderr
    assert (tmp_path / "eval" / "best_test.json").is_file()


def test_training_whose_reader_left_trains_to_the_end_and_logs_to_its_file(tmp_path):
    run = tmp_path / "run"
    result = into_a_closed_pipe("train", *TINY, f"hydra.run.dir={run}", cwd=tmp_path)
    assert quiet(result), result.stderr
    assert json.loads((run / "results.json").read_text())["status"] == "completed"
    assert "best test accuracy" in (run / "train.log").read_text()
