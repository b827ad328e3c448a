"""What the tests share: the ``mgnet`` command in a subprocess, one tiny set-up, and waiting on events."""

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BIN = Path(sys.executable).parent
TINY = ["dataset=synthetic", "dataset.num_train=64", "dataset.num_test=32", "trainer=smoke",
        "model.channels=8", "model.smoothing_steps=[1,1]", "trainer.device=cpu"]
"""A model and data set that train a step in well under a second on a CPU."""

LONG = [*TINY, "dataset.num_train=2048", "trainer.batch_size=16", "trainer.limit_train_batches=null",
        "trainer.epochs=1000"]
"""A run no loaded machine finishes before a test stops it: 128 steps an epoch, 1000 epochs."""

PATIENCE_S = 600.0  # how long an event may take on a machine loaded by others: generous on purpose


def mgnet(*args: str, cwd: Path, check: bool = True, timeout: float = PATIENCE_S) -> subprocess.CompletedProcess:
    """Runs the installed console script (the one pip made beside this Python)."""
    result = subprocess.run([str(BIN / "mgnet"), *args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"mgnet {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def mgnet_solve(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``mgnet solve <args>``, whatever its exit code."""
    return mgnet("solve", *args, cwd=cwd, check=False)


def fit_config(cfg, run_dir: Path):
    """(model, results) of ``fit`` on the training ``build_training(cfg)`` wires, in-process."""
    from mgnet_cli.cli.build import build_training
    from mgnet_cli.train.loop import fit

    t = build_training(cfg)
    return t.model, fit(t, run_dir, {"config": {"seed": 0}})


def train(run: Path, *overrides: str, cwd: Path | None = None) -> Path:
    """A finished tiny training run in ``run``."""
    mgnet("train", *TINY, *overrides, f"hydra.run.dir={run}", cwd=cwd or run.parent)
    return run


def start(*args: str, cwd: Path) -> subprocess.Popen:
    """``mgnet <args>`` in the background, its output captured."""
    return subprocess.Popen([str(BIN / "mgnet"), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition: Callable[[], bool], process: subprocess.Popen | None = None,
             what: str = "the event") -> None:
    """Polls ``condition`` until it holds; fails if ``process`` ends first (with its output)."""
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {process.communicate()}")
        assert time.monotonic() < deadline, f"{what} did not happen in {PATIENCE_S:.0f} s"
        time.sleep(0.05)


def one_line_error(result: subprocess.CompletedProcess, command: str) -> str:
    """The error line of a refused command, after checking it is README's form: exit 2, one line
    (plus at most a hint), no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("[")]
    assert 1 <= len(lines) <= 2 and lines[0].startswith(f"mgnet {command}: error: "), result.stderr
    return lines[0]
