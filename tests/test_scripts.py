"""The measurement scripts under scripts/ run end to end and count what they claim to count."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def script(name: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Runs scripts/<name> with this Python; with ``check``, a failure fails the test with its output."""
    result = subprocess.run([sys.executable, str(SCRIPTS / name), *args], cwd=cwd, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0 or not check, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_prints_every_figure(tmp_path):
    out = script("bench.py", "model.channels=8", "model.smoothing_steps=[1,1]", "trainer.batch_size=16",
                 "trainer.device=cpu", "--steps", "2", "--rounds", "1", "--markdown", cwd=tmp_path).stdout
    rows = dict(line.strip("|").split("|")[:2] for line in out.splitlines() if line.startswith("| ")
                and "---" not in line and "measure" not in line)
    rows = {name.strip(): value.strip() for name, value in rows.items()}
    assert len(rows) == 16, rows
    forward, training = float(rows["forward GFLOPs per image"]), float(rows["training GFLOPs per image (fwd + bwd)"])
    assert 0 < forward and 2.5 * forward < training < 3.5 * forward  # backward ~ twice the forward
    assert float(rows["training images/s (best step)"]) > 0
    assert 0 < float(rows["MFU against the conv peak (best step)"].rstrip("%"))  # a ratio of two timings:
    # on a machine loaded by others it is not bounded (the FLOP count itself is tested exactly below)
    assert float(rows["evaluation images/s, flip TTA"]) < float(rows["evaluation images/s (batch 512)"])


def test_compare_fast_trains_both_paths_from_the_same_start(tmp_path):
    """channels-last fp32 computes what NCHW does: the two runs' losses agree to float tolerance."""
    out = script("compare_fast.py", "--output", str(tmp_path / "runs"), "--fast", "trainer.channels_last=true",
                 "--", *TINY, "trainer.epochs=2", cwd=tmp_path).stdout
    epochs = [line for line in out.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert len(epochs) == 2, out
    for line in epochs:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for pair in cells[1:3]:  # train loss, test loss: plain / fast
            plain, fast = (float(value) for value in pair.split(" / "))
            assert fast == pytest.approx(plain, abs=2e-3)
    assert (tmp_path / "runs" / "plain" / "results.json").is_file()
    assert (tmp_path / "runs" / "fast" / "results.json").is_file()


@pytest.mark.parametrize("name, args, message", [
    ("bench.py", ["model.chanels=64"], "bench.py: error: model.chanels: no such key"),
    ("bench.py", ["trainer.precision=fp8", "trainer.device=cpu"], "trainer.precision=fp8: use one of fp32, bf16, fp16"),
    ("compare_fast.py", ["--fast", "trainer.precision=fp8", "--", *TINY],
     "compare_fast.py: the fast run failed: mgnet train: error: trainer.precision=fp8: use one of"),
])  # fmt: skip
def test_scripts_say_what_is_wrong_in_a_line(tmp_path, name, args, message):
    result = script(name, *args, cwd=tmp_path, check=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
