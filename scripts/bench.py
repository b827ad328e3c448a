"""Measures MgNet training and evaluation speed against this machine's measured peak, in one run.

    .venv/bin/python scripts/bench.py model.channels=64 model.smoothing_steps=[2,2,2,2] \\
        trainer.device=cpu trainer.channels_last=true --wait-idle 5 --markdown  # docs/benchmarks.md
    .venv/bin/python scripts/bench.py model.channels=64 model.smoothing_steps=[2,2,2,2] \\
        trainer.device=cuda trainer.precision=bf16 trainer.channels_last=true trainer.compile=true

Overrides are those of ``mgnet train``. The data is synthetic and CIFAR-shaped (32x32x3, 10 classes,
random crop + flip as for CIFAR) unless a ``dataset=`` override names another data set. Every
figure is the best of ``--rounds`` rounds, and the rounds interleave all measurements, so the
ratios compare work done under the same conditions (other processes only ever slow a round down;
on a shared machine ``--wait-idle`` starts each round only after the others have been quiet):

- GFLOPs per image: the forward pass and a training step (forward + backward), both counted by
  ``torch.utils.flop_counter`` as ``mgnet info`` counts them (model/summary.py; BatchNorm, ReLU
  and additions are not FLOPs there).
- training images/s: SGD steps on batches already made (pure compute), through ``train_epoch``;
  the best step (timed like the peaks, see ``best_times``) and the best run of ``--steps`` steps.
- peak: forward + backward of one 3x3 convolution at the model's finest width, resolution and
  batch (the model's most common operation), in NCHW and NHWC, best taken; and a large matmul.
- model FLOP utilisation (MFU): the best training step's FLOP rate over the convolution peak.
- evaluation images/s through ``evaluate`` (inference mode, eval batch size), without and with
  flip test-time augmentation.
- data share: 1 - (pure compute time) / (epoch wall time) on the same number of batches, where
  the epoch is ``train_epoch`` over the live pipeline (crop, flip and normalisation included).
"""

import argparse
import datetime
import itertools
import logging
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig
from torch import nn

from mgnet_cli.cli import config_dir, register_configs
from mgnet_cli.cli.build import build_training
from mgnet_cli.cli.preflight import explain
from mgnet_cli.errors import MgnetError
from mgnet_cli.model.summary import flop_count, image_flops
from mgnet_cli.schema.train import TrainerConfig
from mgnet_cli.timing import timed, wait_until_idle
from mgnet_cli.train.fast import autocast, prepare_model, retain_freed_memory
from mgnet_cli.train.epoch import TrainStep, train_epoch
from mgnet_cli.train.evaluation import evaluate_split

log = logging.getLogger("bench")


def compose_config(overrides: list[str], steps: int, eval_images: int) -> DictConfig:
    """``mgnet train``'s config; synthetic CIFAR-shaped data of ``steps`` full batches by default."""
    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
        if not any(o.split("=", 1)[0].lstrip("+~") == "dataset" for o in overrides):
            synthetic = ["dataset=synthetic", f"dataset.num_train={steps * cfg.trainer.batch_size}",
                         f"dataset.num_test={eval_images}", "dataset.augmentation.crop_padding=4",
                         "dataset.augmentation.flip=true"]
            cfg = compose("train", overrides=[*synthetic, *overrides])
    return cfg


def settle(quiet_s: float, give_up_s: float = 900.0) -> None:
    """``wait_until_idle``, measuring anyway (with a warning) when the machine never was idle."""
    if not wait_until_idle(quiet_s, give_up_s):
        log.warning("the machine was not idle for %.0f s within %.0f s: measuring anyway", quiet_s, give_up_s)


class Bench:
    """One model, its optimizer and its batches, set up exactly as ``fit`` sets them up."""

    def __init__(self, cfg: DictConfig, steps: int, allocator_tuning: bool = True) -> None:
        training = build_training(cfg)
        self.settings = settings = training.trainer
        self.place = place = training.place
        data, self.model, self.batches = training.data, training.model, training.batches
        self.in_channels, self.image_size = data.in_channels, data.image_size
        self.forward_flops = image_flops(self.model, data.in_channels, data.image_size)
        if place.device.type == "cpu" and allocator_tuning:  # as fit does
            retain_freed_memory()
        self.forward = prepare_model(self.model, place.device, settings.channels_last, settings.compile)
        self.optimizer = training.optimizer
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 1.0)
        self.step = TrainStep(self.forward, self.optimizer, self.scheduler,
                              TrainerConfig(channels_last=settings.channels_last), place)
        self.steps = min(steps, len(self.batches.train))
        self.ready = list(itertools.islice(self.batches.train, self.steps))  # the pure-compute batches
        self.eval_images = sum(len(labels) for _, labels in self.batches.evaluations["test"])
        self.fast = {"precision": place.precision, "channels_last": settings.channels_last}

    def train(self, batches: object) -> float:
        """Seconds for ``train_epoch`` over ``batches``."""
        return timed(self.place.device, lambda: train_epoch(self.step, batches, "bench"))

    def paired(self, chunk: int) -> tuple[float, float, float]:
        """One pass over ``self.ready`` in chunks of ``chunk`` steps, each chunk followed by as many
        steps on batches drawn from the live pipeline (its epoch set-up included), so that both see
        the same conditions. Returns seconds: the best compute chunk per step, and the totals of
        the compute steps and of the pipeline steps."""
        live = iter(self.batches.train)
        best, compute, epoch = float("inf"), 0.0, 0.0
        for start in range(0, self.steps, chunk):
            part = self.ready[start:start + chunk]
            seconds = self.train(part)
            best, compute = min(best, seconds / len(part)), compute + seconds
            epoch += self.train(Drawn(live, len(part)))
        return best, compute, epoch

    def evaluation(self, tta: str) -> float:
        test = self.batches.evaluations["test"]
        return timed(self.place.device, lambda: evaluate_split(self.forward, test, tta=tta, **self.fast))

    def pipeline(self) -> float:
        """Seconds to draw one epoch of training batches and nothing else."""
        return timed(self.place.device,
                     lambda: [None for _ in itertools.islice(self.batches.train, self.steps)])

    def training_flops(self) -> float:
        """FLOPs of one training step, per image (the model in training mode, no optimizer step)."""
        images, labels = self.ready[0]
        self.model.train()

        def step() -> None:
            with autocast(self.place.device, self.place.precision):
                loss = F.cross_entropy(self.model(images), labels)
            loss.backward()

        flops = flop_count(step).get_total_flops()
        self.optimizer.zero_grad(set_to_none=True)
        return flops / len(labels)

    def finest_width(self) -> tuple[int, int, int]:
        """(channels in, channels out, resolution) of the finest level's smoothing convolution B."""
        convs = [m for m in self.model.modules() if isinstance(m, nn.Conv2d) and m.stride == (1, 1)
                 and m.kernel_size == (3, 3) and m.in_channels != self.in_channels]
        return convs[0].in_channels, convs[0].out_channels, self.image_size


class Drawn:
    """The next ``count`` batches of an iterator that lives on across calls (an epoch in parts)."""

    def __init__(self, batches: Iterator, count: int) -> None:
        self.batches, self.count = batches, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator:
        return itertools.islice(self.batches, self.count)


class ConvPeak:
    """Forward + backward of one 3x3 convolution (a given shape, batch and memory format)."""

    def __init__(self, shape: tuple[int, int, int], batch: int, device: torch.device,
                 precision: str, channels_last: bool) -> None:
        c_in, c_out, size = shape
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False).to(device, memory_format=fmt)
        self.x = torch.randn(batch, c_in, size, size, device=device).contiguous(memory_format=fmt)
        self.x.requires_grad_()
        self.device, self.precision = device, precision
        self.flops = flop_count(self.step).get_total_flops()

    def step(self) -> None:
        with autocast(self.device, self.precision):
            out = self.conv(self.x)
        out.backward(torch.ones_like(out))  # gradient with the output's dtype and memory format
        self.x.grad = self.conv.weight.grad = None


def matmul_dtype(device: torch.device, precision: str) -> torch.dtype:
    """The peak matmul's dtype: bf16 on CUDA (what tensor cores are rated in), and on a CPU when the
    run is bf16; fp32 otherwise."""
    return torch.bfloat16 if device.type == "cuda" or precision == "bf16" else torch.float32


class MatmulPeak:
    """A square matmul of ``size`` in ``matmul_dtype``."""

    def __init__(self, size: int, device: torch.device, precision: str) -> None:
        dtype = matmul_dtype(device, precision)
        self.a = torch.randn(size, size, device=device, dtype=dtype)
        self.b = torch.randn(size, size, device=device, dtype=dtype)
        self.flops = 2 * size**3

    def step(self) -> None:
        self.a @ self.b


def best_times(bench: Bench, rounds: int, quiet_s: float) -> dict[str, float]:
    """Seconds per unit (training step, pipeline batch, conv step, matmul, evaluation image), the
    best of ``rounds`` interleaved rounds after a warm-up round (compilation, autotuning); each
    round starts once the machine has been idle for ``quiet_s`` seconds.

    Training steps and the peaks are timed in chunks of about the same length (a second on a CPU)
    and the best chunk is kept, so that neither is favoured by catching a shorter quiet moment.
    The data share adds up all rounds: compute chunks and pipeline chunks alternate (``paired``).
    """
    device, settings, steps = bench.place.device, bench.settings, bench.steps
    peaks = {f"conv_{'nhwc' if last else 'nchw'}": ConvPeak(bench.finest_width(), settings.batch_size,
                                                            device, bench.place.precision, last)
             for last in (False, True)}
    peaks["matmul"] = MatmulPeak(4096 if device.type == "cpu" else 8192, device, bench.place.precision)
    chunk, repeats = (1, 8) if device.type == "cpu" else (10, 50)
    work: dict[str, tuple[Callable[[], float], int]] = {  # name: (seconds of one run, units per run)
        "pipeline": (bench.pipeline, steps),
        "eval": (lambda: bench.evaluation("none"), bench.eval_images),
        "eval_flip": (lambda: bench.evaluation("flip"), bench.eval_images),
    }
    for name, peak in peaks.items():
        work[name] = (lambda peak=peak: timed(device, lambda: [peak.step() for _ in range(repeats)]),
                      repeats)
    start = time.perf_counter()
    bench.paired(chunk)
    for name, (run, _) in work.items():
        run()
    log.info("warm-up round: %.1f s (compilation and autotuning included)", time.perf_counter() - start)
    best = {name: float("inf") for name in [*work, "step", "compute"]}
    best |= {"compute_total": 0.0, "epoch_total": 0.0}
    for index in range(rounds):
        settle(quiet_s)
        step, compute, epoch = bench.paired(chunk)
        best["step"], best["compute"] = min(best["step"], step), min(best["compute"], compute / steps)
        best["compute_total"] += compute
        best["epoch_total"] += epoch
        for name, (run, units) in work.items():
            best[name] = min(best[name], run() / units)
        log.info("round %d/%d: best step %.3f s; %d steps %.2f s, with the pipeline %.2f s",
                 index + 1, rounds, step, steps, compute, epoch)
    best |= {f"{name}_flops": peak.flops for name, peak in peaks.items()}
    return best


def figures(bench: Bench, rounds: int, quiet_s: float) -> dict[str, float]:
    """Everything the report shows, as numbers."""
    settings = bench.settings
    train_flops = bench.training_flops()
    t = best_times(bench, rounds, quiet_s)
    batch = settings.batch_size
    conv_peak = max(t["conv_nchw_flops"] / t["conv_nchw"], t["conv_nhwc_flops"] / t["conv_nhwc"])
    model_rate = train_flops * batch / t["step"]
    return {
        "forward_gflops": bench.forward_flops / 1e9, "train_gflops": train_flops / 1e9,
        "train_img_s": batch / t["step"], "rounds_img_s": batch / t["compute"],
        "epoch_img_s": batch * bench.steps * rounds / t["epoch_total"],
        "model_gflop_s": model_rate / 1e9, "conv_peak_gflop_s": conv_peak / 1e9,
        "conv_nchw_gflop_s": t["conv_nchw_flops"] / t["conv_nchw"] / 1e9,
        "conv_nhwc_gflop_s": t["conv_nhwc_flops"] / t["conv_nhwc"] / 1e9,
        "matmul_gflop_s": t["matmul_flops"] / t["matmul"] / 1e9,
        "mfu_conv": model_rate / conv_peak, "mfu_matmul": model_rate / (t["matmul_flops"] / t["matmul"]),
        "mfu_conv_rounds": train_flops * batch / t["compute"] / conv_peak,
        "eval_img_s": 1 / t["eval"], "eval_flip_img_s": 1 / t["eval_flip"],
        "data_share": 1 - t["compute_total"] / t["epoch_total"],
        "pipeline_share": t["pipeline"] * bench.steps * rounds / t["epoch_total"],
    }


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {torch.get_num_threads()} threads"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def report(f: dict[str, float], bench: Bench, overrides: list[str], markdown: bool) -> str:
    s = bench.settings
    place = bench.place
    matmul = "bf16" if matmul_dtype(place.device, place.precision) == torch.bfloat16 else "fp32"
    rows = [
        ("forward GFLOPs per image", f"{f['forward_gflops']:.4f}"),
        ("training GFLOPs per image (fwd + bwd)", f"{f['train_gflops']:.4f}"),
        ("training images/s (best step)", f"{f['train_img_s']:.1f}"),
        (f"training images/s (best round of {bench.steps} steps)", f"{f['rounds_img_s']:.1f}"),
        ("training images/s with the data pipeline (all rounds)", f"{f['epoch_img_s']:.1f}"),
        ("a 50,000-image epoch (CIFAR) at that rate, s", f"{50_000 / f['epoch_img_s']:.1f}"),
        ("model FLOP rate (best step), GFLOP/s", f"{f['model_gflop_s']:.1f}"),
        ("peak: 3x3 conv fwd+bwd NCHW / NHWC, GFLOP/s",
         f"{f['conv_nchw_gflop_s']:.1f} / {f['conv_nhwc_gflop_s']:.1f}"),
        (f"peak: {matmul} matmul, GFLOP/s", f"{f['matmul_gflop_s']:.1f}"),
        ("MFU against the conv peak (best step)", f"{f['mfu_conv']:.1%}"),
        (f"MFU against the conv peak (best round of {bench.steps} steps)", f"{f['mfu_conv_rounds']:.1%}"),
        ("MFU against the matmul peak (best step)", f"{f['mfu_matmul']:.1%}"),
        (f"evaluation images/s (batch {s.eval_batch_size})", f"{f['eval_img_s']:.1f}"),
        ("evaluation images/s, flip TTA", f"{f['eval_flip_img_s']:.1f}"),
        ("data pipeline share of an epoch (1 - compute / epoch)", f"{f['data_share']:.1%}"),
        ("drawing the batches alone / epoch", f"{f['pipeline_share']:.1%}"),
    ]
    head = (f"{machine(place.device)}; Python {platform.python_version()}, torch {torch.__version__}; "
            f"{datetime.date.today()}; "
            f"{place.device.type}, {place.precision}, batch {s.batch_size}, "
            f"channels_last={s.channels_last}, compile={s.compile}")
    command = "scripts/bench.py " + " ".join(overrides)
    if not markdown:
        width = max(len(name) for name, _ in rows)
        return "\n".join([head, command, *(f"{name:<{width}}  {value}" for name, value in rows)])
    lines = [f"`{command}`", "", head, "", "| measure | value |", "| --- | --- |"]
    return "\n".join(lines + [f"| {name} | {value} |" for name, value in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="mgnet train overrides, e.g. model.channels=64")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; the best is kept")
    parser.add_argument("--steps", type=int, default=None,
                        help="training batches per round (default 6 on CPU, 50 on CUDA)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown block")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="before each round, wait until the CPUs have been idle for this long")
    parser.add_argument("--no-allocator-tuning", action="store_true",
                        help="leave glibc's malloc as it is (fit tunes it on CPU; this shows the cost)")
    args = parser.parse_intermixed_args()  # overrides and flags in any order
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cuda = any(o.startswith("trainer.device=cuda") for o in args.overrides) or (
        torch.cuda.is_available() and not any(o == "trainer.device=cpu" for o in args.overrides))
    steps = args.steps or (50 if cuda else 6)
    try:  # a bad override or data set is one line, as with mgnet train
        cfg = compose_config(args.overrides, steps, eval_images=1024 if not cuda else 10240)
        settle(args.wait_idle)
        bench = Bench(cfg, steps, allocator_tuning=not args.no_allocator_tuning)  # a real data set: its first `steps` batches
    except (HydraException, MgnetError) as error:
        print(f"bench.py: error: {explain(error, 'train')}", file=sys.stderr)
        sys.exit(2)
    log.info("%s, %d steps per round", machine(bench.place.device), bench.steps)
    print(report(figures(bench, args.rounds, args.wait_idle), bench, args.overrides, args.markdown))


if __name__ == "__main__":
    main()
