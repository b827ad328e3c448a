"""One pass over the data: a training epoch (SGD steps, totals kept on the device) or an evaluation."""

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from mgnet_cli.train.distributed import Distributed
from mgnet_cli.train.evaluation import evaluate_split
from mgnet_cli.train.fast import autocast, memory_format
from mgnet_cli.train.guards import LossWatch
from mgnet_cli.train.tracking import progress


def evaluate(
    model: nn.Module,
    batches: Iterable,
    limit: int | None = None,
    *,
    tta: str = "none",
    precision: str = "fp32",
    channels_last: bool = False,
    world: Distributed | None = None,
) -> dict[str, float]:
    """Mean cross-entropy, top-1 and top-5 accuracy (fractions) over ``batches``: the epoch's
    metrics from ``evaluation.evaluate_split``."""
    result = evaluate_split(model, batches, tta=tta, limit=limit, precision=precision,
                            channels_last=channels_last, world=world)
    return {"loss": result.loss, "acc": result.top1, "top5": result.top5}


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


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batches: Iterable,
    device: torch.device,
    description: str,
    limit: int | None = None,
    *,
    precision: str = "fp32",
    channels_last: bool = False,
    scaler: torch.amp.GradScaler | None = None,
    done: EpochProgress | None = None,
    stop: Callable[[], bool] = lambda: False,
    watch: LossWatch | None = None,
    skip_nonfinite: bool = False,
    check: Callable[[], None] = lambda: None,
    check_every: int = 50,
    world: Distributed | None = None,
    log_every: int = 50,
    report: Callable[[int, float], None] = lambda step, loss: None,
    label_smoothing: float = 0.0,
    clip_grad_norm: float | None = None,
    after_step: Callable[[], None] = lambda: None,
) -> EpochProgress:
    """SGD steps over ``batches`` from step ``done.step`` on, until the epoch ends or ``stop()``.

    No host sync per step (fp16's GradScaler and ``skip_nonfinite`` excepted: both must know on the
    host whether to step); ``watch`` records non-finite losses on the device and ``check()`` (every
    ``check_every`` steps, one host sync) raises if one was seen. Every ``log_every`` steps the
    running loss (one host sync) goes to the progress bar or log and to ``report(global step, loss)``.
    ``label_smoothing`` softens the targets; ``clip_grad_norm`` caps the gradients' global norm;
    ``after_step()`` runs after every optimizer step (the EMA of the weights).
    The totals are this rank's
    (``world``: a data-parallel run, whose ranks skip a non-finite batch only all together).
    """
    world = world or Distributed(device=device)
    model.train()
    done = done or EpochProgress()
    total = len(batches) if limit is None else min(limit, len(batches))
    watch = watch or LossWatch(device)
    loss_sum = torch.tensor(done.loss_sum, dtype=torch.float64, device=device)
    hits = torch.tensor(done.hits, dtype=torch.int64, device=device)
    step, count, skipped = done.step, done.count, done.skipped
    start = time.perf_counter()
    remaining = itertools.islice(iter(batches), done.step, total)  # a resumed epoch skips its start
    bar = progress(remaining, total - done.step, description, log_every, show=world.is_main)
    for images, labels in bar:
        with autocast(device, precision):
            logits = model(memory_format(images, channels_last))
            loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)  # in fp32 under autocast
        finite = watch.observe(scheduler.last_epoch, loss)
        if skip_nonfinite:
            finite = world.all(finite)  # DDP: a rank that skips the backward would leave the others waiting
        optimizer.zero_grad(set_to_none=True)
        if skip_nonfinite and not bool(finite):
            skipped += 1
        elif scaler is None:
            loss.backward()
            clip(optimizer, clip_grad_norm)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            if clip_grad_norm is not None:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                clip(optimizer, clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
        scheduler.step()
        after_step()
        if not skip_nonfinite or bool(finite):
            loss_sum += loss.detach() * len(labels)
            hits += (logits.detach().argmax(dim=1) == labels).sum()
            count += len(labels)
        step += 1
        if step % check_every == 0:
            check()
        if step % log_every == 0 and count:
            running = float(loss_sum / count)
            bar.note(f"loss {running:.4f}")
            report(scheduler.last_epoch, running)
        if stop():
            break
    return EpochProgress(step, loss_sum.item(), int(hits.item()), count,  # waits for the device
                         done.seconds + time.perf_counter() - start, skipped)


def clip(optimizer: torch.optim.Optimizer, max_norm: float | None) -> None:
    """Scales the gradients down so that their global norm is at most ``max_norm`` (None: no cap)."""
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]],
                                       max_norm)


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
