"""Where a command computes: the device a config names (``auto``, ``cpu``, ``cuda:N``) and how many
CPU threads torch takes (training and solving alike)."""

import contextlib
from collections.abc import Callable, Iterator

import torch

from mgnet_cli.errors import ConfigError
from mgnet_cli.schema.rules import DEVICES
from mgnet_cli.timing import Cores, free_cores, usable_cpus


def resolve_device(name: str, key: str = "trainer.device") -> torch.device:
    """``auto`` = CUDA when present, else CPU; a CUDA request without CUDA is a ConfigError naming ``key``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{key}={name!r} is not a device: use {DEVICES}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}={name} but this machine has no CUDA device: use {key}=auto or cpu")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{key}={name!r}: mgnet runs on {DEVICES}")
    return device


def choose_threads(requested: int | None, look: Callable[[], Cores] = free_cores,
                   repeatable: bool = False) -> tuple[int, str]:
    """CPU threads for torch and why: by default the cores this process may use that other processes
    leave idle now (``look``: ``timing.free_cores``), at least one; a request as asked, but never
    more threads than usable cores (far more were reported to crash torch). Threads beyond the free
    cores wait on each other (the figures: docs/benchmarks.md). ``repeatable`` (a deterministic
    run): by default every usable core, a count the load cannot change, since the thread count
    changes the order of a CPU reduction and so the last bits of the weights."""
    usable = len(usable_cpus())
    if requested is not None and requested > usable:
        return usable, f"{requested} threads asked, {usable} cores usable: using {usable}"
    if requested is None and repeatable:
        return usable, f"all {usable} usable cores (deterministic: a count the load does not change)"
    if requested == 1:  # nothing to look at: one thread never waits on another
        return 1, "1 requested"
    cores = look()
    if requested is None:
        return cores.free, f"{cores.free} of {cores.usable} cores free now ({cores.busy:.1f} busy)"
    note = f"{requested} requested" + (f"; about {cores.free} of {cores.usable} cores are free now: "
                                       "threads beyond them wait on each other"
                                       if requested > cores.free else "")
    return requested, note


@contextlib.contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Runs the body on one CPU thread, then restores the count: on grids this small a parallel
    operation costs more in synchronisation than it saves (docs/benchmarks.md)."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
