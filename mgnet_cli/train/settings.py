"""How a run trains, as plain values: the ``trainer`` config group checked, and the device chosen."""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mgnet_cli.errors import ConfigError
from mgnet_cli.schema.train import TrainerConfig as T
from mgnet_cli.timing import Cores, free_cores, usable_cpus
from mgnet_cli.train.distributed import check_sync_bn
from mgnet_cli.train.fast import auto_precision, check_precision


@dataclass(frozen=True)
class TrainSettings:
    """How to train: the ``trainer`` config group as plain values; the defaults are the schema's
    (``mgnet_cli.schema.train.TrainerConfig``), stated there once."""

    epochs: int = T.epochs
    batch_size: int = T.batch_size
    eval_batch_size: int = T.eval_batch_size
    device: torch.device = torch.device("cpu")  # the schema's "auto", resolved (resolve_device)
    limit_train_batches: int | None = T.limit_train_batches  # per epoch; None = the whole training set
    limit_eval_batches: int | None = T.limit_eval_batches
    checkpoints: bool = T.checkpoints
    seed: int = 0  # the config's top-level seed
    precision: str = T.precision.value  # fp32, or bf16/fp16 autocast (train/fast.py); auto: resolved
    precision_why: str = ""  # why auto chose the precision (the start line says it); "" when asked for
    channels_last: bool = T.channels_last  # NHWC model and batches
    compile: bool = T.compile  # torch.compile the model
    tta: str = "none"  # eval.tta: none, or flip (average the logits of x and its mirror)
    skip_nonfinite: bool = T.skip_nonfinite  # skip batches whose loss is NaN/inf (else the run stops)
    sync_bn: bool = T.sync_bn  # data-parallel on CUDA: BatchNorm statistics over the global batch
    deterministic: bool = T.deterministic  # deterministic kernels (bitwise-repeatable runs and resumes)
    threads: int | None = T.threads  # CPU threads; None: choose_threads' choice
    log_every_n_steps: int = T.log_every_n_steps  # running loss to the bar/log and TensorBoard
    label_smoothing: float = T.label_smoothing  # cross-entropy against softened targets
    clip_grad_norm: float | None = T.clip_grad_norm  # cap on the gradients' global norm
    early_stopping_patience: int | None = T.early_stopping_patience  # epochs without a better accuracy
    metrics_csv: bool = T.metrics_csv  # metrics.csv, one row per epoch
    ema_decay: float | None = T.ema_decay  # an exponential moving average of the weights, beside them

    def __post_init__(self) -> None:
        if self.precision == "auto":  # one of the others from here on, as for a device of "auto"
            precision, why = auto_precision(self.device)
            object.__setattr__(self, "precision", precision)
            object.__setattr__(self, "precision_why", why)
        check_precision(self.precision, self.device)
        check_sync_bn(self.sync_bn, self.device)
        if self.tta not in ("none", "flip"):
            raise ConfigError(f"eval.tta={self.tta!r}: use none or flip")


def choose_threads(requested: int | None, look: Callable[[], Cores] = free_cores) -> tuple[int, str]:
    """CPU threads for torch and why: by default the cores this process may use that other processes
    leave idle now (``look``: ``timing.free_cores``), at least one; a request as asked, but never
    more threads than usable cores (far more were reported to crash torch). Threads beyond the free
    cores wait on each other (the figures: docs/benchmarks.md)."""
    usable = len(usable_cpus())
    if requested is not None and requested > usable:
        return usable, f"{requested} threads asked, {usable} cores usable: using {usable}"
    if requested == 1:  # nothing to look at: one thread never waits on another
        return 1, "1 requested"
    cores = look()
    if requested is None:
        return cores.free, f"{cores.free} of {cores.usable} cores free now ({cores.busy:.1f} busy)"
    note = f"{requested} requested" + (f"; about {cores.free} of {cores.usable} cores are free now: "
                                       "threads beyond them wait on each other"
                                       if requested > cores.free else "")
    return requested, note


def resolve_device(name: str, key: str = "trainer.device") -> torch.device:
    """``auto`` = CUDA when present, else CPU; a CUDA request without CUDA is a ConfigError naming ``key``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{key}={name!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}={name} but this machine has no CUDA device: use {key}=auto or cpu")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{key}={name!r}: mgnet runs on auto, cpu, cuda or cuda:N")
    return device
