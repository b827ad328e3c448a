"""What stops a run cleanly: Ctrl-C / SIGTERM at a step boundary, and a loss that is not finite."""

import re
import shlex
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import torch

from mgnet_cli.errors import MgnetError


class Interrupted(BaseException):
    """Training stopped on a signal after saving a checkpoint (a BaseException, like
    KeyboardInterrupt, so that a sweep stops too instead of going on to its next job)."""

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number


PLAIN_PATH = re.compile(r"[\w./~+:@%-]+", re.ASCII)  # needs no quotes for Hydra or a shell
SHELL_SPECIAL = re.compile(r'["$`\\!]')  # special inside a shell's double quotes


def hydra_quoted(value: str) -> str:
    """``value`` as the value of a Hydra override: as it is when plain, else in Hydra's quotes
    (sweep folders hold ``=`` and ``,``), escaped inside."""
    if PLAIN_PATH.fullmatch(value):
        return value
    mark = '"' if "'" in value and '"' not in value else "'"
    return mark + value.replace("\\", "\\\\").replace(mark, "\\" + mark) + mark


def resume_command(run_dir: Path) -> str:
    """``mgnet train resume=<run_dir>`` as a line to paste into a shell: quoted for Hydra
    (``hydra_quoted``) and for the shell (spaces, quotes, non-ASCII)."""
    quoted = "resume=" + hydra_quoted(str(run_dir))
    if PLAIN_PATH.fullmatch(str(run_dir)):
        return f"mgnet train {quoted}"
    if not SHELL_SPECIAL.search(quoted):
        return f'mgnet train "{quoted}"'
    return "mgnet train " + shlex.quote(quoted)


class NonFiniteLoss(MgnetError):
    """The training loss became NaN or infinite."""


class StopSignal:
    """Turns the first SIGINT, SIGTERM or SIGHUP (a dropped ssh session) into a request to stop at
    the next step boundary; a second SIGINT interrupts at once, except while a checkpoint is being
    written (``saving``), which always completes. Restores the previous handlers on exit (main
    thread only)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}
        self._saving = False

    def __call__(self) -> bool:
        return self.received is not None

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.received is not None and number == signal.SIGINT and not self._saving:
            raise KeyboardInterrupt
        self.received = self.received or number

    @contextmanager
    def saving(self) -> Iterator[None]:
        """While inside, a second Ctrl-C waits for the checkpoint instead of interrupting it."""
        self._saving = True
        try:
            yield
        finally:
            self._saving = False

    def __enter__(self) -> "StopSignal":
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class LossWatch:
    """Tracks on the device whether a step's loss was not finite, without a host sync per step:
    the first bad step and the last finite loss are read only when ``check`` is called."""

    def __init__(self, device: torch.device) -> None:
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)
        self.last_finite = torch.full((), float("nan"), dtype=torch.float32, device=device)

    def observe(self, step: int, loss: torch.Tensor) -> torch.Tensor:
        """Records ``loss`` of global ``step``; returns the finite flag (a device tensor)."""
        finite = torch.isfinite(loss.detach())
        self.last_finite = torch.where(finite & (self.first_bad < 0), loss.detach().float(),
                                       self.last_finite)
        self.first_bad = torch.where(~finite & (self.first_bad < 0),
                                     torch.full_like(self.first_bad, step), self.first_bad)
        return finite

    def check(self, lr_at: Callable[[int], float]) -> None:
        """Raises NonFiniteLoss naming the step, the last finite loss and the learning rate."""
        step = int(self.first_bad)
        if step >= 0:
            raise NonFiniteLoss(
                f"the training loss became NaN or infinite at step {step} (lr {lr_at(step):.4g}); "
                f"last finite loss {float(self.last_finite):.4f}. The last good checkpoint is kept: "
                "lower optimizer.lr, or set trainer.skip_nonfinite=true to skip such batches"
            )
