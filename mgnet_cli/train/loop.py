"""The training loop: epochs of train steps (epoch.py), each followed by evaluation, checkpoints and results."""

import csv
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from mgnet_cli.data.batches import Batches
from mgnet_cli.device import choose_threads
from mgnet_cli.schema.data import AugmentationConfig
from mgnet_cli.schema.train import TTA, TrainerConfig
from mgnet_cli.storage import link_atomic, write_json_atomic, write_text_atomic
from mgnet_cli.train.checkpoint import save_checkpoint
from mgnet_cli.train.distributed import Distributed, StepAgreement, sync_batchnorm
from mgnet_cli.train.epoch import EpochHooks, EpochProgress, TrainStep, own_share, summed, train_epoch
from mgnet_cli.train.evaluation import evaluate_split
from mgnet_cli.train.fast import Placement, grad_scaler, prepare_model, retain_freed_memory
from mgnet_cli.train.lookahead import Lookahead
from mgnet_cli.train.guards import Interrupted, LossWatch, NonFiniteLoss, StopSignal, resume_command
from mgnet_cli.train.results import RunRecord
from mgnet_cli.train.state import restore_training, training_state
from mgnet_cli.train.tracking import Tracker, warn_about

log = logging.getLogger(__name__)


@dataclass
class Training:
    """Everything ``fit`` takes, built from one checked config (``cli.build.build_training``)."""

    trainer: TrainerConfig  # the trainer group, checked by its schema
    place: Placement  # trainer.device and trainer.precision, resolved
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Callable[[float], float]  # epoch (fractional) -> lr multiplier
    batches: Batches
    tta: TTA = TTA.none  # eval.tta
    data: Any = None  # the ImageData (or FolderData) the batches come from
    augmentation: AugmentationConfig | None = None  # what the training batches draw


def fit(
    training: Training,
    run_dir: Path,
    metadata: dict[str, Any] | None = None,
    resume: dict[str, Any] | None = None,
    distributed: Distributed | None = None,
) -> dict[str, Any]:
    """Trains ``training.model`` for ``trainer.epochs``; writes events, checkpoints and results.json.

    ``training.schedule(epoch) -> lr multiplier`` is applied every step at the fractional epoch. ``metadata``
    (e.g. the config) is stored in every checkpoint. ``resume`` is a checkpoint of this run:
    training continues where it stopped (mid-epoch after a signal), as if never stopped.
    SIGINT/SIGTERM save ``last.pt`` at the next step boundary and raise ``Interrupted``; a
    non-finite loss raises ``NonFiniteLoss`` before anything of that epoch is saved.
    ``distributed``: this process's rank in a data-parallel run (``batches`` hold its part of every
    batch): the steps go through DistributedDataParallel, metrics are summed over the ranks, the
    ranks stop together, and only rank 0 writes. Checkpoints hold the plain model, for any number
    of ranks to resume.
    Returns the results (also in ``run_dir/results.json``, rewritten after every epoch).
    """
    run = TrainingRun(training, run_dir, metadata or {}, distributed or Distributed(device=training.place.device))
    batches, epochs = training.batches, training.trainer.epochs
    done, partial = run.restore(resume) if resume is not None else (0, EpochProgress())
    with Tracker(run_dir if run.world.is_main else None, purge_step=done + 1) as tracker, \
            StopSignal() as signal:
        run.start(signal, tracker)
        try:
            for epoch in range(done + 1, epochs + 1):
                data_state = batches.generator.get_state()  # this epoch's order and augmentation
                metrics, partial = run.train(epoch, partial)
                if partial.step < run.steps:  # stopped by a signal: keep the position within the epoch
                    run.stopped_in(epoch, partial, data_state)
                run.end_epoch(metrics | run.evaluate())
                partial = EpochProgress()  # the next epoch starts at its first step
                if run.patience_ran_out():
                    break
                if run.stop() and epoch < epochs:  # a signal after the last epoch: done
                    run.stopped_in(epoch + 1, partial, batches.generator.get_state())
        except BaseException as error:  # a failure, a stop (Interrupted), a second Ctrl-C: never left "running"
            run.mark("failed" if isinstance(error, Exception) else "interrupted", error)
            raise
    return run.finish()


class TrainingRun:
    """What ``fit`` holds for the length of a run; its methods are the parts of an epoch."""

    def __init__(self, training: Training, run_dir: Path, metadata: dict[str, Any], world: Distributed) -> None:
        trainer, place = training.trainer, training.place
        model, optimizer, batches = training.model, training.optimizer, training.batches
        self.threads = ""
        if place.device.type == "cpu":
            threads, why = choose_threads(trainer.threads, repeatable=trainer.deterministic)
            torch.set_num_threads(threads)
            self.threads = f", {threads} thread{'s' if threads > 1 else ''}: {why}"
            if retain_freed_memory():
                log.debug("glibc keeps freed activation buffers for reuse (no mmap per activation)")
            # Denormal floats (|x| < 1e-38, common once a loss nears 0) run many times slower on x86 CPUs
            torch.set_flush_denormal(True)
        self.model = sync_batchnorm(model, world, trainer.sync_bn)
        self.forward = prepare_model(self.model, place.device, trainer.channels_last, trainer.compile)
        self.optimizer, self.schedule, self.batches = optimizer, training.schedule, batches
        self.trainer, self.place, self.tta = trainer, place, training.tta
        self.run_dir, self.metadata, self.world = run_dir, metadata, world
        self.scaler = grad_scaler(place.device, place.precision)
        self.ema = None if trainer.ema_decay is None else AveragedModel(
            self.model, multi_avg_fn=get_ema_multi_avg_fn(trainer.ema_decay), use_buffers=True)
        self.ema_forward = None if self.ema is None else prepare_model(
            self.ema.module, place.device, trainer.channels_last, compile=False)
        self.fast = {"precision": place.precision, "channels_last": trainer.channels_last}
        self.steps = len(batches.train) if trainer.limit_train_batches is None else min(
            trainer.limit_train_batches, len(batches.train))
        self.lookahead = None if trainer.lookahead_steps is None else Lookahead(
            self.model, trainer.lookahead_steps, trainer.lookahead_alpha, self.steps * trainer.epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: self.schedule(step / self.steps))
        self.record = RunRecord(sum(parameter.numel() for parameter in self.model.parameters()),
                                "val" if "val" in batches.evaluations else "test")
        self.watch = LossWatch(place.device)
        self.ranks = {"world_size": world.world_size} if world.active else {}
        # set by start(), once a restore has run: the signal and what listens for it, the training
        # step (its forward DDP-wrapped under torchrun), the clock and the base learning rate
        self.signal: StopSignal | None = None
        self.tracker: Tracker | None = None
        self.stop: StopSignal | StepAgreement | None = None
        self.step: TrainStep | None = None
        self.started = 0.0
        self.base_lr = float(optimizer.param_groups[0]["lr"])

    def restore(self, resume: dict[str, Any]) -> tuple[int, EpochProgress]:
        """Continues from a checkpoint of this run: (epochs done, the stopped epoch's progress)."""
        done, self.record = restore_training(resume, self.model, self.optimizer, self.scheduler,
                                             self.batches.generator)
        partial = EpochProgress(**resume.get("epoch_progress", {}))
        if self.lookahead is not None:  # the slow weights start from the restored ones, unless saved (below)
            self.lookahead.load_state_dict(self.model.state_dict())
        for key, part in self.extras().items():
            if key in resume:
                part.load_state_dict(resume[key])
        log.info("resuming after epoch %d, step %d, of %d epochs", done, partial.step, self.trainer.epochs)
        return done, partial

    def start(self, signal: StopSignal, tracker: Tracker) -> None:
        """Wraps the model for data-parallel steps (after any restore), listens for ``signal``
        (agreed across the ranks every few steps under DDP) and says what will run."""
        trainer, world = self.trainer, self.world
        self.signal, self.tracker = signal, tracker
        self.stop = StepAgreement(world, signal, self.watch) if world.active else signal
        forward = world.data_parallel(self.model, trainer.compile) if world.active else self.forward
        place = self.place
        self.step = TrainStep(forward, self.optimizer, self.scheduler, trainer, place, self.average, world,
                              self.watch, self.scaler)
        log.info("training %s parameters on %s (%s%s%s%s), %d epochs of %d steps%s",
                 f"{self.record.parameters:,}", place.device,
                 place.precision + (f" ({place.why})" if place.why else ""),
                 ", channels-last" if trainer.channels_last else "",
                 ", compiled" if trainer.compile else "", self.threads, trainer.epochs, self.steps,
                 f", data-parallel over {world.world_size} ranks" if world.active else "")
        if trainer.compile:
            log.info("torch.compile compiles the model during the first steps (tens of seconds); "
                     "the time left is estimated from the epochs after the first")
        self.started = time.perf_counter() - self.record.wall_time_s
        self.base_lr = self.optimizer.param_groups[0]["initial_lr"]

    def average(self) -> None:
        """After each step: lookahead's pull every ``trainer.lookahead_steps`` steps, then one step
        of the EMA of the weights (``trainer.ema_decay``)."""
        if self.lookahead is not None:
            self.lookahead(self.scheduler.last_epoch)  # the steps done so far, this one included
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def check(self) -> None:
        """A non-finite loss stops the run (unless such batches are skipped); under DDP the ranks
        also agree whether a signal reached any of them."""
        if self.world.active:
            self.stop.agree()
        if not self.trainer.skip_nonfinite:
            self.watch.check(lambda step: self.base_lr * self.schedule(step / self.steps))

    def train(self, epoch: int, partial: EpochProgress) -> tuple[dict[str, float], EpochProgress]:
        """The epoch's steps (from ``partial.step`` on): its training metrics and totals over the ranks."""
        trainer, world = self.trainer, self.world
        hooks = EpochHooks(stop=self.stop, check=self.check, check_every=10 if world.active else 50,
                           log_every=trainer.log_every_n_steps,  # reported: a step-level scalar (rank 0's)
                           report=lambda step, loss: self.tracker.scalars(step, {"train/running_loss": loss}))
        self.batches.train.set_epoch(epoch)
        partial = train_epoch(self.step, self.batches.train, f"epoch {epoch}/{trainer.epochs}",
                              trainer.limit_train_batches, done=own_share(partial, world), hooks=hooks)
        self.check()
        partial = summed(partial, world)
        if partial.skipped and partial.count == 0:  # nothing of this epoch was learned from
            raise NonFiniteLoss(f"every batch of epoch {epoch} had a NaN or infinite loss and was "
                                "skipped (trainer.skip_nonfinite=true): the run learns nothing; "
                                "lower optimizer.lr")
        lr = self.base_lr * self.schedule((epoch - 1) + (partial.step - 1) / self.steps)  # its last step's
        metrics = {"epoch": epoch, "lr": lr} | {f"train_{k}": v for k, v in partial.metrics().items()}
        if partial.skipped:
            metrics["train_skipped_nonfinite"] = partial.skipped
        return metrics, partial

    def evaluate(self) -> dict[str, float]:
        """Every evaluation split's loss and accuracies, one model on every rank."""
        self.world.broadcast_buffers(self.model)  # every rank evaluates (and rank 0 saves) one model
        models = {"": self.forward} | ({} if self.ema_forward is None else {"ema_": self.ema_forward})
        metrics: dict[str, float] = {}
        for name, source in self.batches.evaluations.items():
            for prefix, forward in models.items():  # the averaged weights (EMA), beside the raw ones
                scores = evaluate_split(forward, source, tta=self.tta, limit=self.trainer.limit_eval_batches,
                                        world=self.world, **self.fast).metrics
                metrics |= {f"{name}_{prefix}{key}": value for key, value in scores.items()}
        return metrics

    def end_epoch(self, metrics: dict[str, float]) -> None:
        """Records the epoch; rank 0 logs it and writes last.pt, best.pt and results.json."""
        improved = self.record.add(metrics, wall_time_s=time.perf_counter() - self.started)
        if not self.world.is_main:
            return
        log_epoch(self.tracker, self.model, metrics, self.time_left(int(metrics["epoch"])))
        if self.trainer.checkpoints:
            self.save("last.pt", int(metrics["epoch"]))
            if improved:  # the same checkpoint: best.pt links to it (last.pt is replaced, not rewritten)
                link_atomic(self.run_dir / "last.pt", self.run_dir / "best.pt")
        write_json_atomic(self.run_dir / "results.json", self.record.summary() | self.ranks)
        if self.trainer.metrics_csv:
            write_metrics_csv(self.run_dir / "metrics.csv", self.record.history)

    def patience_ran_out(self) -> bool:
        """Early stopping: ``early_stopping_patience`` epochs since the best selection accuracy."""
        patience, history = self.trainer.early_stopping_patience, self.record.history
        if patience is None or not history:
            return False
        key = f"{self.record.selection}_acc"
        best = max(range(len(history)), key=lambda index: history[index][key])  # the first best
        if len(history) - 1 - best < patience:
            return False
        self.record.stopped_early = int(history[-1]["epoch"])
        log.info("early stop after epoch %d: %s has not improved for %d epochs (best %.2f%% at epoch %d)",
                 self.record.stopped_early, key, patience, 100 * history[best][key], history[best]["epoch"])
        return True

    def time_left(self, epoch: int) -> float:
        """Seconds left at the mean epoch time so far (evaluation included); a compiled run's first
        epoch (compilation) does not count, and gives no estimate itself (0)."""
        history = self.record.history
        seconds = [later["wall_time_s"] - earlier["wall_time_s"] for earlier, later in zip(history, history[1:])
                   if "wall_time_s" in earlier and "wall_time_s" in later]
        if not self.trainer.compile:
            return (self.trainer.epochs - epoch) * self.record.wall_time_s / epoch
        return (self.trainer.epochs - epoch) * sum(seconds) / len(seconds) if seconds else 0.0

    def extras(self) -> dict[str, Any]:
        """What a checkpoint holds beside the training state, by key: fp16's loss scale (so that a
        resume continues with it), the EMA of the weights, lookahead's slow weights."""
        parts = {"grad_scaler": self.scaler if self.scaler.is_enabled() else None, "ema": self.ema,
                 "lookahead": self.lookahead}
        return {key: part for key, part in parts.items() if part is not None}

    def save(self, name: str, epoch: int, **extra: Any) -> None:
        if not self.world.is_main:
            return
        state = training_state(self.model, self.optimizer, self.scheduler, epoch, self.record,
                               self.batches.generator)
        state |= {key: part.state_dict() for key, part in self.extras().items()}
        with self.signal.saving():  # a second Ctrl-C waits for the file to be complete
            save_checkpoint(self.run_dir / name, state | self.metadata | extra)

    def stopped_in(self, epoch: int, partial: EpochProgress, data_state: torch.Tensor) -> None:
        """Saves ``last.pt`` at the current step of ``epoch`` (``data_state``: the epoch's data order)
        and raises ``Interrupted``."""
        self.save("last.pt", epoch - 1, epoch_progress=vars(partial), data_order=data_state)
        self.tracker.flush()
        signal_number = self.stop.received
        raise Interrupted(f"stopped at epoch {epoch}, step {partial.step}, on signal {signal_number}; saved "
                          f"{self.run_dir / 'last.pt'}. Resume with: {resume_command(self.run_dir)}", signal_number)

    def mark(self, status: str, error: BaseException) -> None:
        """results.json says how the run ended (``failed``, ``interrupted``), with the error; a
        folder that cannot be written (full disk) is logged, never hides the first error."""
        if not self.world.is_main:
            return
        message = str(error).strip() or type(error).__name__
        try:
            write_json_atomic(self.run_dir / "results.json",
                              self.record.summary(status=status) | self.ranks | {"error": message})
        except OSError as write_error:
            log.error("could not mark %s as %s: %s", self.run_dir / "results.json", status, write_error)

    def finish(self) -> dict[str, Any]:
        results = self.record.summary(status="completed") | self.ranks | self.world.sync_report(self.model)
        if self.world.is_main:
            write_json_atomic(self.run_dir / "results.json", results)
        return results


def write_metrics_csv(path: Path, history: list[dict[str, float]]) -> None:
    """The per-epoch metrics as CSV (one row per epoch, a column per metric), atomically."""
    columns = list(dict.fromkeys(key for epoch in history for key in epoch))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(path, buffer.getvalue())


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.4 h``: a time to read at a glance."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def log_epoch(tracker: Tracker, model: nn.Module, metrics: dict[str, float], left_s: float = 0.0) -> None:
    """One log line (with the time left, ``left_s``) and the epoch's TensorBoard scalars
    (``train/loss``, ``test/acc``, ...)."""
    epoch = int(metrics["epoch"])
    scalars = {"lr": metrics["lr"], "throughput": metrics["train_throughput"]}
    for key, value in metrics.items():
        split, _, name = key.partition("_")
        if split in ("train", "test", "val") and name != "throughput":
            scalars[f"{split}/{name}"] = value
    tracker.scalars(epoch, scalars)
    tracker.learned_scalars(epoch, model)
    tracker.flush()
    warn_about(model)
    held_out = "".join(f"  {split} loss {metrics[split + '_loss']:.4f} acc {metrics[split + '_acc']:.2%}"
                       for split in ("val", "test") if f"{split}_acc" in metrics)
    left = f", about {duration(left_s)} left" if left_s > 0 else ""
    log.info("epoch %d  lr %.4g (last step)  train loss %.4f acc %.2f%%%s  %.0f img/s%s", epoch, metrics["lr"],
             metrics["train_loss"], 100 * metrics["train_acc"], held_out, metrics["train_throughput"], left)
