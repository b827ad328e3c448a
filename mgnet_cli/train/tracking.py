"""What a run shows and leaves behind: progress bars or log lines, the log file, TensorBoard scalars.

The log file and the event files are opened without following a link in the run folder, and a
write that fails (a full or read-only disk) is one WriteError naming the file, raised in the
training's own thread, so the run ends ``failed`` with one line, not a traceback per write.
"""

import contextlib
import io
import itertools
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter
from torch import nn
from torch.utils.tensorboard.summary import hparams as hparams_summary
from torch.utils.tensorboard.summary import scalar
from tqdm import tqdm

from mgnet_cli.errors import MgnetError
from mgnet_cli.storage import WriteError, open_own, refusal

log = logging.getLogger(__name__)
T = TypeVar("T")


def interactive() -> bool:
    """True when progress bars make sense (stderr is a terminal)."""
    return sys.stderr.isatty()


EVERY_S = 30.0  # off a terminal, a progress line at least this often (also every log_every_n items)


class Progress:
    """A tqdm bar on a terminal; otherwise a log line every ``log_every_n`` items and every
    ``EVERY_S`` seconds of ``clock`` (a slow epoch is never silent for long), not after the last.
    ``note(text)`` shows ``text`` (the running loss) on the bar or in the next log line;
    ``describe()``, when given, is called for each log line instead (the loss and images/s now).
    ``show=False`` (the ranks > 0 of a data-parallel run) passes the items through silently."""

    def __init__(self, items: Iterable[T], total: int, description: str, log_every_n: int = 50,
                 show: bool = True, describe: Callable[[], str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.items, self.total, self.description = items, total, description
        self.log_every_n, self.show, self.describe, self.clock = log_every_n, show, describe, clock
        self.bar: tqdm | None = None
        self.text = ""

    def note(self, text: str) -> None:
        self.text = text
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)

    def __iter__(self) -> Iterator[T]:
        if not self.show:
            yield from self.items
            return
        if interactive():
            with tqdm(self.items, total=self.total, desc=self.description, leave=False,
                      dynamic_ncols=True) as self.bar:
                yield from self.bar
            return
        start = last = self.clock()
        for index, item in enumerate(self.items, 1):
            yield item
            now = self.clock()
            if index < self.total and (index % self.log_every_n == 0 or now - last >= EVERY_S):
                last = now
                text = self.describe() if self.describe is not None else self.text
                log.info("%s: %d/%d batches%s (%.0f s)", self.description, index, self.total,
                         f", {text}" if text else "", now - start)


def progress(items: Iterable[T], total: int, description: str, log_every_n: int = 50,
             show: bool = True, describe: Callable[[], str] | None = None,
             clock: Callable[[], float] = time.monotonic) -> Progress:
    return Progress(items, total, description, log_every_n, show, describe, clock)


class RunLogHandler(logging.FileHandler):
    """Hydra's log file (``<run>/<command>.log``, configs' ``hydra.job_logging``): opened at the
    first record, without following a link; the first write that fails raises one WriteError
    (the run fails with it), and the handler is silent after it."""

    def __init__(self, filename: str, mode: str = "a", encoding: str | None = None, delay: bool = True,
                 errors: str | None = None) -> None:
        super().__init__(filename, mode, encoding or "utf-8", delay=True, errors=errors)
        self.failed = False

    def _open(self) -> io.TextIOWrapper:
        fd = open_own(Path(self.baseFilename), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def emit(self, record: logging.LogRecord) -> None:
        if self.failed:
            return
        try:
            if self.stream is None:
                self.stream = self._open()
            self.stream.write(self.format(record) + self.terminator)
            self.stream.flush()
        except OSError as error:
            self.failed = True
            if self.stream is not None:
                stream, self.stream = self.stream, None
                with contextlib.suppress(OSError):  # what it holds cannot be written either
                    stream.close()
            path = Path(self.baseFilename)
            raise refusal(path, error, path.parent) from None


class EventFile:
    """One TensorBoard event file, written in the caller's thread (``SummaryWriter`` writes from
    a thread of its own, whose failures print tracebacks and surface later): a new file, never a
    link, named as TensorBoard names its own (``events.out.tfevents.<time>.<host>.<pid>.<n>``)."""

    numbers = itertools.count()

    def __init__(self, folder: Path) -> None:
        name = f"events.out.tfevents.{time.time():010.0f}.{socket.gethostname()}.{os.getpid()}.{next(self.numbers)}"
        self.path = Path(folder) / name
        fd = open_own(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        self.records = RecordWriter(os.fdopen(fd, "wb"))
        self.add(Event(file_version="brain.Event:2"))

    def add(self, event: Event) -> None:
        if not event.wall_time:
            event.wall_time = time.time()
        self.guarded(self.records.write, event.SerializeToString())

    def summary(self, summary: Summary, step: int) -> None:
        self.add(Event(summary=summary, step=step))

    def flush(self) -> None:
        self.guarded(self.records.flush)

    def close(self) -> None:
        if not self.records.closed:
            self.guarded(self.records.close)

    def guarded(self, write: Any, *args: Any) -> None:
        try:
            write(*args)
        except OSError as error:
            raise WriteError(f"cannot write {self.path}: {error.strerror or error}") from None


@runtime_checkable
class Reporting(Protocol):
    """A module that reports its learned scalars (Chebyshev's k_i) after each epoch: their values
    for TensorBoard, and a line for each that has left where the module works as meant."""

    def scalars(self) -> dict[str, float]: ...

    def warnings(self) -> list[str]: ...


def warn_about(model: nn.Module) -> None:
    """Logs what each ``Reporting`` module of ``model`` says is wrong with its learned scalars."""
    for name, module in model.named_modules():
        if isinstance(module, Reporting):
            for warning in module.warnings():
                log.warning("%s: %s", name, warning)


class NoEvents:
    """The event file of a tracker without a folder: it takes every event and writes none."""

    def add(self, event: Event) -> None: ...

    def summary(self, summary: Summary, step: int) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class Tracker:
    """TensorBoard scalars for one run folder; use as a context manager so events are flushed.
    Without a folder (``None``: the ranks > 0 of a data-parallel run) it records nothing."""

    def __init__(self, run_dir: Path | None, purge_step: int | None = None) -> None:
        self.writer = NoEvents() if run_dir is None else EventFile(run_dir)
        if purge_step is not None:
            # hides the events a stopped run wrote after its last checkpoint (resume)
            self.writer.add(Event(step=purge_step, file_version="brain.Event:2"))
            self.writer.add(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Scalars at ``step``: an epoch, or an optimizer step (``train/running_loss``)."""
        for tag, value in values.items():
            self.writer.summary(scalar(tag, value), step)

    def learned_scalars(self, step: int, model: nn.Module) -> None:
        """Logs what ``Reporting`` modules report (e.g. Chebyshev's k_i)."""
        for name, module in model.named_modules():
            if isinstance(module, Reporting):
                for key, value in module.scalars().items():
                    self.writer.summary(scalar(f"scalars/{name}/{key}", value), step)

    def hparams(self, params: dict[str, Any], metrics: dict[str, float], step: int) -> None:
        """The run's hyperparameters and final metrics for TensorBoard's HParams tab, written into
        this run's own folder (``SummaryWriter.add_hparams`` would make a sub-folder per call)."""
        tagged = {f"hparams/{name}": value for name, value in metrics.items()}
        experiment, session_start, session_end = hparams_summary(params, tagged)
        for summary in (experiment, session_start, session_end):
            self.writer.summary(summary, 0)
        for name, value in metrics.items():
            self.writer.summary(scalar(f"hparams/{name}", value), step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        try:
            self.close()
        except MgnetError:
            if kind is None:
                raise  # else the error in flight says more (and the events cannot be saved)
