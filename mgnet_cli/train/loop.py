"""The training loop: epochs of train steps, each followed by evaluation, checkpoints and results."""

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mgnet_cli.data.pipeline import Batches
from mgnet_cli.errors import ConfigError
from mgnet_cli.train.checkpoint import save_checkpoint, write_json_atomic
from mgnet_cli.train.evaluation import predict
from mgnet_cli.train.fast import (autocast, check_precision, grad_scaler, memory_format, prepare_model,
                                  retain_freed_memory)
from mgnet_cli.train.results import RunRecord
from mgnet_cli.train.state import restore_training, training_state
from mgnet_cli.train.tracking import Tracker, progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """How to train: the ``trainer`` config group, as plain values."""

    epochs: int
    batch_size: int
    eval_batch_size: int = 512
    device: torch.device = torch.device("cpu")
    limit_train_batches: int | None = None  # per epoch; None = the whole training set
    limit_eval_batches: int | None = None
    checkpoints: bool = True
    seed: int = 0
    precision: str = "fp32"  # fp32, or bf16/fp16 autocast (see train/fast.py)
    channels_last: bool = False  # NHWC model and batches
    compile: bool = False  # torch.compile the model
    tta: str = "none"  # evaluation: none, or flip (average the logits of x and its mirror)

    def __post_init__(self) -> None:
        check_precision(self.precision, self.device)
        if self.tta not in ("none", "flip"):
            raise ConfigError(f"eval.tta={self.tta!r}: use none or flip")


def resolve_device(name: str) -> torch.device:
    """``auto`` = CUDA when present, else CPU; a CUDA request without CUDA is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"trainer.device={name!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name} but this machine has no CUDA device: use trainer.device=auto or cpu")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"trainer.device={name!r}: mgnet runs on auto, cpu, cuda or cuda:N")
    return device


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    batches: Iterable,
    limit: int | None = None,
    *,
    tta: str = "none",
    precision: str = "fp32",
    channels_last: bool = False,
) -> dict[str, float]:
    """Mean cross-entropy, top-1 and top-5 accuracy (fractions) over ``batches``; one host sync.

    ``tta="flip"`` averages the logits of each image and its mirror (twice the work).
    """
    model.eval()
    totals: torch.Tensor | None = None  # [loss sum, top-1 hits, top-5 hits, count], on device
    for index, (images, labels) in enumerate(batches):
        if limit is not None and index >= limit:
            break
        with autocast(images.device, precision):
            logits = predict(model, memory_format(images, channels_last), tta).float()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices == labels[:, None]
        batch = torch.stack([
            F.cross_entropy(logits, labels, reduction="sum"),
            top[:, 0].sum(), top.any(dim=1).sum(), labels.new_full((), len(labels)),  # no host copy
        ]).double()
        totals = batch if totals is None else totals + batch
    if totals is None:
        raise ConfigError("evaluation saw no batch: the evaluation set is empty")
    loss, top1, top5, count = totals.tolist()
    return {"loss": loss / count, "acc": top1 / count, "top5": top5 / count}


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
) -> dict[str, float]:
    """One pass of SGD steps; returns mean loss, accuracy and images/s.

    No host sync per step (fp16's GradScaler excepted: it checks for overflow on the host).
    """
    model.train()
    total = len(batches) if limit is None else min(limit, len(batches))
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    hits = torch.zeros((), dtype=torch.int64, device=device)
    count = 0
    start = time.perf_counter()
    for index, (images, labels) in enumerate(progress(batches, total, description)):
        if index >= total:
            break
        with autocast(device, precision):
            logits = model(memory_format(images, channels_last))
            loss = F.cross_entropy(logits, labels)  # autocast computes it in fp32
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        scheduler.step()
        loss_sum += loss.detach() * len(labels)
        hits += (logits.detach().argmax(dim=1) == labels).sum()
        count += len(labels)
    metrics = {"loss": loss_sum.item() / count, "acc": hits.item() / count}  # waits for the device
    metrics["throughput"] = count / (time.perf_counter() - start)
    return metrics


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Callable[[float], float],
    batches: Batches,
    settings: TrainSettings,
    run_dir: Path,
    metadata: dict[str, Any] | None = None,
    resume: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Trains ``model`` for ``settings.epochs``; writes events, checkpoints and results.json.

    ``schedule(epoch) -> lr multiplier`` is applied every step at the fractional epoch. ``metadata``
    (e.g. the config) is stored in every checkpoint. ``resume``
    is a checkpoint of this run: training continues after its epoch, exactly as if never stopped.
    Returns the results (also in ``run_dir/results.json``, rewritten after every epoch).
    """
    if settings.device.type == "cpu" and retain_freed_memory():
        log.debug("glibc keeps freed activation buffers for reuse (no mmap per activation)")
    forward = prepare_model(model, settings.device, settings.channels_last, settings.compile)
    scaler = grad_scaler(settings.device, settings.precision)
    fast = {"precision": settings.precision, "channels_last": settings.channels_last}
    steps = len(batches.train) if settings.limit_train_batches is None else min(
        settings.limit_train_batches, len(batches.train))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule(step / steps))
    record = RunRecord(count_parameters(model), "val" if "val" in batches.evaluations else "test")
    done = 0
    if resume is not None:
        done, record = restore_training(resume, model, optimizer, scheduler, batches.generator)
        if scaler is not None and "grad_scaler" in resume:
            scaler.load_state_dict(resume["grad_scaler"])
        log.info("resuming after epoch %d of %d", done, settings.epochs)
    log.info("training %s parameters on %s (%s%s%s), %d epochs of %d steps",
             f"{record.parameters:,}", settings.device, settings.precision,
             ", channels-last" if settings.channels_last else "",
             ", compiled" if settings.compile else "", settings.epochs, steps)
    start = time.perf_counter() - record.wall_time_s
    with Tracker(run_dir, purge_step=done + 1) as tracker:
        for epoch in range(done + 1, settings.epochs + 1):
            metrics = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]}
            train = train_epoch(forward, optimizer, scheduler, batches.train, settings.device,
                                f"epoch {epoch}/{settings.epochs}", settings.limit_train_batches,
                                scaler=scaler, **fast)
            metrics |= {f"train_{key}": value for key, value in train.items()}
            for name, source in batches.evaluations.items():
                scores = evaluate(forward, source, settings.limit_eval_batches, tta=settings.tta, **fast)
                metrics |= {f"{name}_{key}": value for key, value in scores.items()}
            improved = record.add(metrics, wall_time_s=time.perf_counter() - start)
            log_epoch(tracker, model, metrics)
            if settings.checkpoints:
                state = training_state(model, optimizer, scheduler, epoch, record,
                                       batches.generator) | (metadata or {})
                if scaler is not None:  # fp16's loss scale, so that a resume continues with it
                    state["grad_scaler"] = scaler.state_dict()
                save_checkpoint(run_dir / "last.pt", state)
                if improved:
                    save_checkpoint(run_dir / "best.pt", state)
            write_json_atomic(run_dir / "results.json", record.summary())
    results = record.summary(status="completed")
    write_json_atomic(run_dir / "results.json", results)
    return results


def log_epoch(tracker: Tracker, model: nn.Module, metrics: dict[str, float]) -> None:
    """One log line and the epoch's TensorBoard scalars (``train/loss``, ``test/acc``, ...)."""
    epoch = int(metrics["epoch"])
    scalars = {"lr": metrics["lr"], "throughput": metrics["train_throughput"]}
    for key, value in metrics.items():
        split, _, name = key.partition("_")
        if split in ("train", "test", "val") and name != "throughput":
            scalars[f"{split}/{name}"] = value
    tracker.scalars(epoch, scalars)
    tracker.learned_scalars(epoch, model)
    tracker.flush()
    held_out = "".join(f"  {split} loss {metrics[split + '_loss']:.4f} acc {metrics[split + '_acc']:.2%}"
                       for split in ("val", "test") if f"{split}_acc" in metrics)
    log.info("epoch %d  lr %.4g  train loss %.4f acc %.2f%%%s  %.0f img/s", epoch, metrics["lr"],
             metrics["train_loss"], 100 * metrics["train_acc"], held_out, metrics["train_throughput"])
