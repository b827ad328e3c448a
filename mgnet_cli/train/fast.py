"""The speed switches of training and evaluation (``trainer.precision``, ``channels_last``,
``compile``): each one computes the same function as the plain fp32 NCHW eager path.

- precision: ``bf16``/``fp16`` autocast (convolutions and matmuls in 16 bits; BatchNorm, its
  parameters and running statistics, the loss and the optimizer stay fp32). fp16 needs loss scaling,
  so it gets a GradScaler and is CUDA only; bf16 runs on both (CPUs with AVX-512 BF16 or AMX gain).
  ``auto`` is bf16 where the device has bf16 arithmetic units, fp32 elsewhere (``auto_precision``).
- channels_last: the model's weights and the batches in NHWC memory order, the layout the fast
  convolution kernels (oneDNN, cuDNN tensor cores) use natively.
- compile: ``torch.compile`` of the model's forward (and so its backward); the plain module is what
  checkpoints save, so state dicts never carry ``_orig_mod.`` prefixes.
"""

import contextlib
import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mgnet_cli.errors import ConfigError

log = logging.getLogger(__name__)

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BF16 = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX-512 BF16"}  # /proc/cpuinfo flags: their names
CUDA_BF16 = (8, 0)  # the compute capability from which NVIDIA GPUs have bf16 tensor cores (Ampere)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux lists them (the instructions it has and the kernel enabled);
    none where there is no ``/proc/cpuinfo``."""
    if not cpuinfo.exists():
        return set()
    line = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def auto_precision(device: torch.device, flags: Callable[[], set[str]] = cpu_flags,
                   cuda_capability: Callable[[torch.device], tuple[int, int]] = torch.cuda.get_device_capability,
                   ) -> tuple[str, str]:
    """``trainer.precision=auto``: (bf16 or fp32, why), from what the device's hardware has. bf16 on
    CUDA GPUs with bf16 tensor cores (and ROCm GPUs) and on CPUs with AMX-BF16 or AVX-512 BF16;
    elsewhere bf16 would be emulated, slower than fp32, so fp32."""
    if device.type == "cuda":
        if torch.version.hip:
            return "bf16", "auto: a ROCm GPU has bf16 matrix cores"
        major, minor = cuda_capability(device)
        has = (major, minor) >= CUDA_BF16
        return ("bf16" if has else "fp32"), (f"auto: compute capability {major}.{minor} "
                                             f"{'has' if has else 'has no'} bf16 tensor cores")
    found = [name for flag, name in CPU_BF16.items() if flag in flags()]
    if found:
        return "bf16", f"auto: the CPU has {' and '.join(found)}"
    return "fp32", "auto: the CPU has neither AMX-BF16 nor AVX-512 BF16 (bf16 would be emulated)"


@dataclass(frozen=True)
class Placement:
    """Where and in what arithmetic a run computes: ``trainer.device`` and ``trainer.precision``
    resolved (``placement``); ``why`` says why ``auto`` chose the precision ("" when asked for)."""

    device: torch.device = torch.device("cpu")
    precision: str = "fp32"  # trainer.precision resolved: a Precision other than auto
    why: str = ""

    def __post_init__(self) -> None:
        """A ValueError for a precision without arithmetic (the schema's choices are checked before),
        a ConfigError for fp16 off CUDA (no loss scaling nor fast fp16 there)."""
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r}: one of {', '.join(PRECISIONS)}")
        if self.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError(f"trainer.precision=fp16 runs on CUDA only (it needs loss scaling, and "
                              f"{self.device.type} has no fast fp16 convolutions): use trainer.precision=bf16 or fp32")


def placement(device: torch.device, precision: str) -> Placement:
    """``precision`` (``trainer.precision``, ``auto`` included) on ``device``, checked."""
    if precision == "auto":
        return Placement(device, *auto_precision(device))
    return Placement(device, str(precision))


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast region of a forward pass (nothing for fp32)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16 (whose small gradients would underflow); for the other precisions a
    disabled scaler, whose ``scale``, ``unscale_``, ``step`` and ``update`` leave the step as it is."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def memory_format(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """Images (B, C, H, W) in the model's memory order; free when they already are."""
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


def prepare_model(model: nn.Module, device: torch.device, channels_last: bool, compile: bool) -> nn.Module:
    """Moves ``model`` to ``device`` (NHWC weights if asked) in place; returns what to call for
    forward passes: ``model`` itself, or its compiled wrapper (sharing the parameters)."""
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if not compile:
        return model
    if device.type == "cpu":  # Inductor's C++ build looks for a CUDA runtime it does not need here
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    # Static shapes: a run sees at most four batch shapes (full and last, train and eval); each
    # compiles once, where a dynamic-shape graph would give up the fixed-size kernels.
    return torch.compile(model, dynamic=False)


def retain_freed_memory() -> bool:
    """Makes glibc keep freed activation buffers for reuse instead of returning them to the OS.

    PyTorch's CPU allocator is plain malloc; glibc serves blocks of 32 MiB or more (one 64-channel
    32x32 activation of a 128-image batch is exactly that) with a fresh mmap each time, so every
    activation costs page faults and zeroing: 102 against 132 training images/s on the 2-core
    CPU of docs/benchmarks.md (``scripts/bench.py --no-allocator-tuning`` shows it). Called by
    ``fit`` on CPU devices; a process-wide allocator setting, like the thread count. True if set.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1))
