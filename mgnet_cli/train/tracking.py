"""What a run shows and leaves behind: progress bars or log lines, TensorBoard scalars."""

import logging
import sys
import time
from collections.abc import Iterable, Iterator
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


def progress(items: Iterable[T], total: int, description: str, log_every_s: float = 30.0,
             show: bool = True) -> Iterator[T]:
    """A tqdm bar on a terminal; otherwise a log line every ``log_every_s`` seconds and at the end.
    ``show=False`` (the ranks > 0 of a data-parallel run) passes the items through silently."""
    if not show:
        yield from items
        return
    if interactive():
        yield from tqdm(items, total=total, desc=description, leave=False, dynamic_ncols=True)
        return
    start = last = time.perf_counter()
    for index, item in enumerate(items, 1):
        yield item
        now = time.perf_counter()
        if now - last >= log_every_s:
            last = now
            log.info("%s: %d/%d batches (%.0f s)", description, index, total, now - start)


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
