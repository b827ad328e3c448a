"""Schemas of the trainer, optimizer and scheduler groups and of ``train.yaml``'s own keys."""

from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from mgnet_cli.schema import rules


class Precision(rules.Choice):
    """Training arithmetic: fp32, or bf16/fp16 autocast with BatchNorm in fp32 (train/fast.py); auto:
    bf16 where the device has bf16 arithmetic units, else fp32."""
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    auto = "auto"


class Objective(rules.Choice):
    """What ``mgnet train`` returns to a sweeper: the best validation or test accuracy; ``auto`` is
    the validation accuracy whenever the run holds out a validation split."""
    auto = "auto"
    val = "val"
    test = "test"


class TTA(rules.Choice):
    """Test-time augmentation of evaluation: none; flip (mean of the logits of x and its mirror);
    flip_translate (airbench94's: half the flip's, a quarter each the flip's of x shifted by one
    pixel up-left and down-right, reflected at the border: six passes)."""
    none = "none"
    flip = "flip"
    flip_translate = "flip_translate"


# --- trainer ------------------------------------------------------------------------------------
@dataclass
class TrainerConfig:
    """How a run trains (``configs/trainer/``: ``default`` is these values, the authors' length
    and batch size; each other option states only what it changes)."""
    epochs: int = rules.setting(300, "passes over the training set (the authors': 300)")
    batch_size: int = rules.setting(128, "training images per step")
    eval_batch_size: int = rules.setting(512, "images per evaluation batch")
    device: str = rules.setting("auto", rules.DEVICE_HELP)
    limit_train_batches: int | None = rules.setting(None, "cap on steps per epoch (null = whole training set)")
    limit_eval_batches: int | None = rules.setting(None, "cap on evaluation batches (null = whole set)")
    deterministic: bool = rules.setting(False, "true: deterministic kernels (bitwise-repeatable runs and resumes)")
    precision: Precision = rules.setting(Precision.auto, "autocast precision (BatchNorm, loss, optimizer stay "
                                         "fp32); auto = bf16 where the device has bf16 units (GPUs from "
                                         "Ampere, CPUs with AMX/AVX-512 BF16), else fp32")
    compile: bool = rules.setting(False, "torch.compile the model")
    channels_last: bool = rules.setting(True, "NHWC memory format (the layout fast conv kernels use: +23 % "
                                              "on a CPU); false = NCHW")
    num_workers: int = rules.setting(4, "decoding workers for file-backed data sets (imagefolder)")
    skip_nonfinite: bool = rules.setting(False, "false: a NaN/inf loss stops the run; true: skip such "
                                                "batches (one host sync per step)")
    checkpoints: bool = rules.setting(True, "last.pt every epoch, best.pt on the best test accuracy")
    sync_bn: bool = rules.setting(False, "torchrun on CUDA: SyncBatchNorm (statistics over the global "
                                         "batch, not each rank's part)")
    threads: int | None = rules.setting(None, "CPU threads (intra-op); null = the cores other processes "
                                              "leave idle at the start (deterministic: every usable core, "
                                              "so the load cannot change a repeatable run); capped at the "
                                              "usable cores")
    log_every_n_steps: int = rules.setting(50, "running loss on the progress bar (or a log line off a "
                                               "terminal) and in TensorBoard")
    label_smoothing: float = rules.setting(0.0, "cross-entropy against targets softened by this much "
                                                "(0.1 is common)")
    clip_grad_norm: float | None = rules.setting(None, "cap on the gradients' global norm (e.g. 1.0); null = none")
    early_stopping_patience: int | None = rules.setting(None, "stop after this many epochs without a better "
                                                              "val (else test) accuracy")
    metrics_csv: bool = rules.setting(True, "metrics.csv beside the TensorBoard events: one row per epoch")
    ema_decay: float | None = rules.setting(None, "e.g. 0.999: an exponential moving average of the weights, "
                                                  "evaluated (test/ema_acc) and checkpointed beside them")
    lookahead_steps: int | None = rules.setting(None, "every this many steps the weights are pulled to a slow "
                                                      "average of themselves and go on from there (airbench94: "
                                                      "5); null = off")
    lookahead_alpha: float = rules.setting(0.774, "the share the slow weights keep at the run's end; it rises "
                                                  "as (progress)^3 from 0 (airbench94: 0.95^5 = 0.774)")

    def __post_init__(self) -> None:
        rules.count(self, "epochs", maximum=rules.LARGEST_EPOCHS)
        rules.count(self, "batch_size", maximum=rules.LARGEST_BATCH)
        rules.count(self, "eval_batch_size", maximum=rules.LARGEST_BATCH)
        rules.device(self, "device")
        rules.optional_count(self, "limit_train_batches")
        rules.optional_count(self, "limit_eval_batches")
        rules.count(self, "num_workers", minimum=0, maximum=1024)
        rules.optional_count(self, "threads")
        rules.count(self, "log_every_n_steps", maximum=10**6)
        rules.number(self, "label_smoothing", 0.0, 1.0, high_open=True)
        if self.clip_grad_norm is not None:
            rules.positive(self, "clip_grad_norm")
        rules.optional_count(self, "early_stopping_patience")
        if self.ema_decay is not None:
            rules.number(self, "ema_decay", 0.0, 1.0, low_open=True, high_open=True)
        rules.optional_count(self, "lookahead_steps")
        rules.number(self, "lookahead_alpha", 0.0, 1.0, high_open=True)


# --- optimizer ----------------------------------------------------------------------------------
@dataclass
class ParameterGroupsConfig:
    """The keys every optimizer option has: how normalisation layers and biases are treated
    (``mgnet_cli/train/optimizers.py`` splits the parameters into groups by them)."""
    norm_bias_decay: Any = rules.typed_as(bool | float, True, "weight decay on normalisation weights/biases "
                                          "and on biases: true = as on the other weights, false = none (as "
                                          "fast recipes do), a number = that factor of it")
    bias_lr_scale: float = rules.setting(1.0, "factor on the learning rate of biases (BatchNorm's too); their "
                                              "decay per step (lr x weight_decay) stays as norm_bias_decay "
                                              "says (airbench94: 64)")

    def decay_factor(self) -> float:
        """``norm_bias_decay`` as a factor of the weight decay."""
        return float(self.norm_bias_decay) if not isinstance(self.norm_bias_decay, bool) else \
            (1.0 if self.norm_bias_decay else 0.0)

    def check_groups(self) -> None:
        if not isinstance(self.norm_bias_decay, bool):
            rules.number(self, "norm_bias_decay", 0.0, 100.0)
        rules.number(self, "bias_lr_scale", 0.0, 1000.0, low_open=True)


@dataclass
class SGDConfig(ParameterGroupsConfig):
    """SGD with momentum (``configs/optimizer/sgd.yaml``), the authors' optimizer."""
    _target_: str = rules.target("torch.optim.SGD")
    _partial_: bool = rules.partial("the model's parameters are")
    lr: float = rules.setting(0.1, "learning rate (the schedule multiplies it)")
    momentum: float = rules.setting(0.9, "heavy-ball momentum")
    weight_decay: float = rules.setting(5e-4, "L2 penalty on the weights (on normalisation layers and "
                                              "biases as norm_bias_decay says)")
    nesterov: bool = rules.setting(False, "Nesterov momentum (needs momentum > 0)")
    TARGETS: ClassVar[tuple[str, ...]] = ("torch.optim.SGD",)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.is_true(self, "_partial_", "must stay true (the parameters are passed in)")
        rules.positive(self, "lr")
        rules.number(self, "momentum", 0.0, 1.0, high_open=True)
        rules.number(self, "weight_decay", 0.0, 1.0)
        if self.nesterov and self.momentum == 0:
            raise rules.Invalid("nesterov", True, "needs optimizer.momentum > 0")
        self.check_groups()


@dataclass
class AdamWConfig(ParameterGroupsConfig):
    """AdamW (``configs/optimizer/adamw.yaml``)."""
    _target_: str = rules.target("torch.optim.AdamW")
    _partial_: bool = rules.partial("the model's parameters are")
    lr: float = rules.setting(1e-3, "learning rate (the schedule multiplies it)")
    betas: list[float] = rules.setting([0.9, 0.999], "decay rates of the gradient's running mean and "
                                                     "running square")
    weight_decay: float = rules.setting(0.05, "decoupled weight decay")
    TARGETS: ClassVar[tuple[str, ...]] = ("torch.optim.AdamW",)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.is_true(self, "_partial_", "must stay true (the parameters are passed in)")
        rules.positive(self, "lr")
        if len(self.betas) != 2 or not all(rules.is_number(b) and 0 <= b < 1 for b in self.betas):
            raise rules.Invalid("betas", list(self.betas), "give two numbers in [0, 1), e.g. [0.9,0.999]")
        rules.number(self, "weight_decay", 0.0, 10.0)
        self.check_groups()


# --- scheduler ----------------------------------------------------------------------------------
@dataclass
class StepDecayConfig:
    """lr x gamma every step_epochs epochs (``configs/scheduler/step.yaml``), the authors' schedule."""
    _target_: str = rules.target("mgnet_cli.train.schedules.StepDecay")
    step_epochs: int = rules.setting(50, "epochs between two decays")
    gamma: float = rules.setting(0.1, "factor of each decay")
    counted_from: int = rules.setting(1, "the authors' code numbers epochs from 1: lr x gamma from epoch "
                                         "50, 100, ... (0: after 50, 100, ...)")
    TARGETS: ClassVar[tuple[str, ...]] = ("mgnet_cli.train.schedules.StepDecay",)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.count(self, "step_epochs", maximum=rules.LARGEST_EPOCHS)
        rules.number(self, "gamma", 0.0, 1.0, low_open=True)
        rules.count(self, "counted_from", minimum=0, maximum=1)


@dataclass
class WarmupCosineConfig:
    """Linear warm-up, then cosine decay to final_fraction x lr at the last epoch, updated every
    step (``configs/scheduler/cosine.yaml``)."""
    _target_: str = rules.target("mgnet_cli.train.schedules.WarmupCosine")
    epochs: int = rules.setting(MISSING, "epochs the schedule spans: the length of the run")
    warmup_epochs: float = rules.setting(5.0, "epochs of linear warm-up from 0, shorter than the run")
    final_fraction: float = rules.setting(0.0, "lr at the end, as a fraction of the peak")
    TARGETS: ClassVar[tuple[str, ...]] = ("mgnet_cli.train.schedules.WarmupCosine",)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.count(self, "epochs", maximum=rules.LARGEST_EPOCHS)
        rules.number(self, "warmup_epochs", 0.0, self.epochs if rules.is_integer(self.epochs) else 0,
                     high_open=True, why=f"a warm-up shorter than the run, trainer.epochs={self.epochs}")
        rules.number(self, "final_fraction", 0.0, 1.0)


@dataclass
class TriangularConfig:
    """Linear rise from start_fraction x lr to lr at peak_at of the run, then linear fall to
    final_fraction x lr at its end, updated every step (``configs/scheduler/triangular.yaml``):
    airbench94's schedule (0.2, 0.23, 0.07)."""
    _target_: str = rules.target("mgnet_cli.train.schedules.Triangular")
    epochs: int = rules.setting(MISSING, "epochs the schedule spans: the length of the run")
    peak_at: float = rules.setting(0.23, "where the lr peaks, as a fraction of the run")
    start_fraction: float = rules.setting(0.2, "lr at the first step, as a fraction of the peak")
    final_fraction: float = rules.setting(0.07, "lr at the end, as a fraction of the peak")
    TARGETS: ClassVar[tuple[str, ...]] = ("mgnet_cli.train.schedules.Triangular",)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.count(self, "epochs", maximum=rules.LARGEST_EPOCHS)
        rules.number(self, "peak_at", 0.0, 1.0, high_open=True)
        rules.number(self, "start_fraction", 0.0, 1.0)
        rules.number(self, "final_fraction", 0.0, 1.0)


@dataclass
class ConstantConfig:
    """No schedule (``configs/scheduler/constant.yaml``)."""
    _target_: str = rules.target("mgnet_cli.train.schedules.Constant")
    TARGETS: ClassVar[tuple[str, ...]] = ("mgnet_cli.train.schedules.Constant",)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)


# --- the commands' own keys ---------------------------------------------------------------------
@dataclass
class EvalTTAConfig:
    """``eval``: how a run's evaluations score its model."""
    tta: TTA = rules.setting(TTA.none, "test-time augmentation of evaluation: flip averages the "
                                       "logits of x and its mirror; flip_translate also those of x shifted "
                                       "by a pixel (airbench94's)")


@dataclass
class TrainConfig:
    """``configs/train.yaml``'s own keys (the groups have their schemas above)."""
    seed: int = rules.setting(0, "seeds Python, NumPy and torch: the weights, the data order, the "
                                 "augmentation and the validation split")
    eval: EvalTTAConfig = field(default_factory=EvalTTAConfig)
    resume: str | None = rules.setting(None, "a run folder or checkpoint to continue (its config is "
                                             "used; see README)")
    objective: Objective = rules.setting(Objective.auto, "what a sweeper (search=optuna) maximises; auto: "
                                                         "the val accuracy when dataset.val_size > 0, else test")
    dataset: Any = rules.group("dataset")  # each group has its own schemas (mgnet_cli.schema.GROUPS)
    model: Any = rules.group("model")
    smoother: Any = rules.group("smoother")
    optimizer: Any = rules.group("optimizer")
    scheduler: Any = rules.group("scheduler")
    trainer: Any = rules.group("trainer")

    def __post_init__(self) -> None:
        rules.seed(self, "seed")
        rules.text(self, "resume", optional=True)

    def across_groups(self) -> None:
        """Rules between this config's keys and its groups' (run once the groups are checked)."""
        if self.objective == Objective.val and getattr(self.dataset, "val_size", 0) == 0:
            raise rules.Invalid("objective", self.objective, "needs a validation split: set "
                                                             "dataset.val_size (e.g. 5000)")
