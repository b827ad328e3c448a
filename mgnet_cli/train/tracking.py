"""What a run shows and leaves behind: progress bars or log lines, TensorBoard scalars."""

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from torch import nn
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary
from tqdm import tqdm

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


class Tracker:
    """TensorBoard scalars for one run folder; use as a context manager so events are flushed.
    Without a folder (``None``: the ranks > 0 of a data-parallel run) it records nothing."""

    def __init__(self, run_dir: Path | None, purge_step: int | None = None) -> None:
        # purge_step drops events a stopped run wrote after its last checkpoint (resume)
        self.writer = None if run_dir is None else SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer is None:
            return
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def step_scalar(self, name: str, value: float, step: int) -> None:
        """A scalar at optimizer step ``step`` (``train/running_loss`` every log_every_n_steps)."""
        if self.writer is not None:
            self.writer.add_scalar(name, value, step)

    def learned_scalars(self, step: int, model: nn.Module) -> None:
        """Logs what modules report through a ``scalars()`` method (e.g. Chebyshev's k_i)."""
        if self.writer is None:
            return
        for name, module in model.named_modules():
            report = getattr(module, "scalars", None)
            if callable(report):
                for key, value in report().items():
                    self.writer.add_scalar(f"scalars/{name}/{key}", value, step)

    def hparams(self, params: dict[str, Any], metrics: dict[str, float], step: int) -> None:
        """The run's hyperparameters and final metrics for TensorBoard's HParams tab, written into
        this run's own folder (``SummaryWriter.add_hparams`` would make a sub-folder per call)."""
        if self.writer is None:
            return
        tagged = {f"hparams/{name}": value for name, value in metrics.items()}
        experiment, session_start, session_end = hparams_summary(params, tagged)
        for summary in (experiment, session_start, session_end):
            self.writer.file_writer.add_summary(summary)
        for name, value in metrics.items():
            self.writer.add_scalar(f"hparams/{name}", value, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
