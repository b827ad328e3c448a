"""What the tests share: the ``mgnet`` command in-process or in a subprocess, one tiny set-up, and
waiting on events.

``cli(...)`` runs a command in this process (``mgnet_cli.cli.command``, the function the console
script calls): same argv, same Hydra run, same exit code and output, without paying the interpreter,
torch and Hydra imports again (3-6 s a launch). ``mgnet(...)`` launches the real console script; keep
it for what only a process shows (exit codes seen by a shell, signals, argv parsing, the shape of
stdout/stderr, torchrun) and mark those tests ``@pytest.mark.process``.
"""

import contextlib
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def process_state_kept(cwd: Path) -> Iterator[None]:
    """Runs the body in ``cwd`` and puts back what a command changes in its process: working
    folder, argv, environment, logging handlers and levels, warning filters, signal handlers,
    torch's thread count, random state and deterministic flags, Hydra's global state (a Hydra a
    fixture initialised is set aside for the command and put back after it)."""
    import torch
    from hydra.core.global_hydra import GlobalHydra

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logger.level for name, logger in logging.Logger.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}
    signals = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    state = (os.getcwd(), list(sys.argv), dict(os.environ), torch.get_num_threads(),
             torch.get_rng_state(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark)
    outer_hydra = GlobalHydra.instance().hydra  # a module's initialize_config_dir fixture, or None
    GlobalHydra.instance().clear()
    os.chdir(cwd)
    try:
        with warnings.catch_warnings():
            yield
    finally:
        cwd_before, argv, environ, threads, rng, deterministic, warn_only, benchmark = state
        os.chdir(cwd_before)
        sys.argv[:] = argv
        os.environ.clear()
        os.environ.update(environ)
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, logger in logging.Logger.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(levels.get(name, logging.NOTSET))
        for number, handler in signals.items():
            signal.signal(number, handler)
        torch.set_num_threads(threads)
        torch.set_rng_state(rng)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark
        torch.set_flush_denormal(False)
        GlobalHydra.instance().clear()
        if outer_hydra is not None:
            GlobalHydra.instance().initialize(outer_hydra)


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """``mgnet <args>`` run in this process: its exit code (``sys.exit``'s, 0 if it returned) and
    what it wrote to stdout and stderr, in the shape ``mgnet(...)`` gives. It calls ``main``, the
    console script's own function, so a Ctrl-C or a broken pipe is handled as there."""
    from mgnet_cli.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with process_state_kept(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            if not isinstance(stop.code, int | None):
                print(stop.code, file=sys.stderr)
        except Exception:  # what the console script would print as a traceback, exit code 1
            import traceback

            traceback.print_exc()
            code = 1
    result = subprocess.CompletedProcess(["mgnet", *args], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"mgnet {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def mgnet_solve(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``mgnet solve <args>`` in-process, whatever its exit code."""
    return cli("solve", *args, cwd=cwd, check=False)


def fit_config(cfg, run_dir: Path):
    """(model, results) of ``fit`` on the training ``build_training(cfg)`` wires, in-process."""
    from mgnet_cli.cli.build import build_training
    from mgnet_cli.train.loop import fit

    t = build_training(cfg)
    return t.model, fit(t, run_dir, {"config": {"seed": 0}})


def train(run: Path, *overrides: str, cwd: Path | None = None) -> Path:
    """A finished tiny training run in ``run`` (trained in-process)."""
    cli("train", *TINY, *overrides, f"hydra.run.dir={run}", cwd=cwd or run.parent)
    return run


def copy_run(run: Path, to: Path) -> Path:
    """A copy of the run folder ``run`` at ``to``, as a user copies one (README: "copy the run
    folder somewhere writable"): links copied as links, and files hard-linked together in ``run``
    (``best.pt`` and ``last.pt`` of a one-epoch run) hard-linked together in the copy."""
    copied: dict[tuple[int, int], Path] = {}

    def copy(source: str, target: str) -> None:
        identity = (os.stat(source).st_dev, os.stat(source).st_ino)
        if identity in copied:
            os.link(copied[identity], target)
        else:
            shutil.copy2(source, target)
            copied[identity] = Path(target)

    shutil.copytree(run, to, symlinks=True, copy_function=copy)
    return to


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
