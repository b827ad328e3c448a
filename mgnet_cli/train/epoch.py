"""One training step (``TrainStep``) and a training epoch of them (totals kept on the device)."""

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from mgnet_cli.schema.train import TrainerConfig
from mgnet_cli.train.distributed import Distributed
from mgnet_cli.train.fast import Placement, autocast, grad_scaler, memory_format
from mgnet_cli.train.guards import LossWatch
from mgnet_cli.train.tracking import progress


@dataclass
class EpochProgress:
    """A training epoch's running totals; an epoch stopped by a signal resumes from them."""

    step: int = 0  # batches done in this epoch
    loss_sum: float = 0.0
    hits: int = 0
    count: int = 0
    seconds: float = 0.0
    skipped: int = 0  # batches skipped for a non-finite loss (trainer.skip_nonfinite)

    def metrics(self) -> dict[str, float]:
        count = max(self.count, 1)
        return {"loss": self.loss_sum / count, "acc": self.hits / count,
                "throughput": self.count / max(self.seconds, 1e-9)}


@dataclass
class TrainStep:
    """One optimizer step on one batch, set up once for a run: the forward under autocast, the
    (label-smoothed) cross-entropy, the backward through fp16's loss scale (a disabled
    ``GradScaler`` for the other precisions, which passes everything through), the gradient cap,
    the optimizer and schedule steps, and ``after_step()`` (the EMA of the weights).

    ``trainer`` gives ``channels_last``, ``label_smoothing``, ``clip_grad_norm`` and
    ``skip_nonfinite``; ``place`` the device and the (resolved) precision. No host sync per step
    (fp16's GradScaler and ``skip_nonfinite`` excepted: both must know on the host whether to step);
    ``watch`` records non-finite losses on the device. Under ``world`` (a data-parallel run) the
    ranks skip a non-finite batch only all together.
    """

    model: nn.Module  # what to call for the forward (compiled or DDP-wrapped)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler  # stepped once per batch
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    place: Placement = Placement()
    after_step: Callable[[], None] = lambda: None
    world: Distributed | None = None
    watch: LossWatch | None = None
    scaler: torch.amp.GradScaler | None = None  # None: the one for the precision

    def __post_init__(self) -> None:
        self.world = self.world or Distributed(device=self.place.device)
        self.watch = self.watch or LossWatch(self.place.device)
        self.scaler = self.scaler or grad_scaler(self.place.device, self.place.precision)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Steps on the batch: (its loss, its logits, both detached; whether it was learned from)."""
        trainer = self.trainer
        with autocast(self.place.device, self.place.precision):
            logits = self.model(memory_format(images, trainer.channels_last))
            loss = F.cross_entropy(logits, labels, label_smoothing=trainer.label_smoothing)  # fp32 under autocast
        finite = self.watch.observe(self.scheduler.last_epoch, loss)
        # DDP: a rank that skips the backward would leave the others waiting, so the ranks agree
        learned = bool(self.world.all(finite)) if trainer.skip_nonfinite else True
        self.optimizer.zero_grad(set_to_none=True)
        if learned:
            self.scaler.scale(loss).backward()
            if trainer.clip_grad_norm is not None:
                self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
                parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
                torch.nn.utils.clip_grad_norm_(parameters, trainer.clip_grad_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.scheduler.step()
        self.after_step()
        return loss.detach(), logits.detach(), learned


@dataclass(frozen=True)
class EpochHooks:
    """What a training epoch calls besides its steps: every ``check_every`` steps ``check()`` (one
    host sync: it raises if a non-finite loss was seen); every ``log_every`` steps the running loss
    (one host sync) goes to the progress bar or log and to ``report(global step, loss)``; after each
    step ``stop()`` ends the epoch early. ``clock`` paces the progress lines off a terminal."""

    stop: Callable[[], bool] = lambda: False
    check: Callable[[], None] = lambda: None
    check_every: int = 50
    log_every: int = 50
    report: Callable[[int, float], None] = lambda step, loss: None
    clock: Callable[[], float] = time.monotonic


def train_epoch(
    step: TrainStep,
    batches: Iterable,
    description: str,
    limit: int | None = None,
    *,
    done: EpochProgress | None = None,
    hooks: EpochHooks = EpochHooks(),
) -> EpochProgress:
    """``step`` over ``batches`` from batch ``done.step`` on, until the epoch ends or ``hooks.stop()``.

    Off a terminal a log line with the step, the running loss and images/s also comes every
    ``tracking.EVERY_S`` seconds of ``hooks.clock``. The totals are this rank's.
    """
    step.model.train()
    done = done or EpochProgress()
    device = step.place.device
    total = len(batches) if limit is None else min(limit, len(batches))
    loss_sum = torch.tensor(done.loss_sum, dtype=torch.float64, device=device)
    hits = torch.tensor(done.hits, dtype=torch.int64, device=device)
    steps, count, skipped = done.step, done.count, done.skipped
    start = time.perf_counter()
    remaining = itertools.islice(iter(batches), done.step, total)  # a resumed epoch skips its start
    clock = hooks.clock
    began = clock()

    def describe() -> str:  # for a progress line off a terminal (one host sync)
        loss = f"loss {float(loss_sum / count):.4f}, " if count else ""
        rate = (count - done.count) * step.world.world_size / max(clock() - began, 1e-9)
        return f"{loss}{rate:.1f} images/s"

    bar = progress(remaining, total - done.step, description, hooks.log_every, show=step.world.is_main,
                   describe=describe, clock=clock)
    for images, labels in bar:
        loss, logits, learned = step(images, labels)
        if learned:
            loss_sum += loss * len(labels)
            hits += (logits.argmax(dim=1) == labels).sum()
            count += len(labels)
        else:
            skipped += 1
        steps += 1
        if steps % hooks.check_every == 0:
            hooks.check()
        if steps % hooks.log_every == 0 and count:
            running = float(loss_sum / count)
            bar.note(f"loss {running:.4f}")
            hooks.report(step.scheduler.last_epoch, running)
        if hooks.stop():
            break
    return EpochProgress(steps, loss_sum.item(), int(hits.item()), count,  # waits for the device
                         done.seconds + time.perf_counter() - start, skipped)


def own_share(progress: EpochProgress, world: Distributed) -> EpochProgress:
    """What a rank adds its totals to: rank 0 carries the (summed) totals of a resumed epoch, the
    other ranks start from zero, so that the sum over the ranks counts every image once."""
    return progress if world.is_main else EpochProgress(progress.step, seconds=progress.seconds,
                                                         skipped=progress.skipped)


def summed(progress: EpochProgress, world: Distributed) -> EpochProgress:
    """The epoch's loss sum, hits and image count over all ranks (time and skips are agreed already)."""
    if not world.active:
        return progress
    totals = torch.tensor([progress.loss_sum, progress.hits, progress.count], dtype=torch.float64,
                          device=world.device)
    loss_sum, hits, count = world.sum(totals).tolist()
    return replace(progress, loss_sum=loss_sum, hits=round(hits), count=round(count))
