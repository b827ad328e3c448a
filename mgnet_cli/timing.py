"""Wall-clock timing for the measurement scripts: device work included, and on a shared machine only
once the other processes leave the CPUs idle (Linux's ``/proc/stat``; elsewhere nothing waits)."""

import time
from collections.abc import Callable
from pathlib import Path

import torch

PROC_STAT = Path("/proc/stat")
SAMPLE_S = 0.2  # how often wait_until_idle looks at the CPUs


def synchronize(device: torch.device) -> None:
    """Waits for the work queued on ``device`` (CUDA runs asynchronously; a CPU never needs to)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work: Callable[[], object]) -> float:
    """Seconds that ``work()`` takes, the device work it queues included."""
    synchronize(device)
    start = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - start


def cpu_times(stat: Path = PROC_STAT) -> tuple[int, int]:
    """(idle, total) clock ticks of all CPUs since boot; idle counts waiting for I/O."""
    fields = [int(x) for x in stat.read_text().splitlines()[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def busy_fraction(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of all CPUs busy between two ``cpu_times`` readings, 0 to 1."""
    idle, total = after[0] - before[0], after[1] - before[1]
    return 1.0 - idle / total if total > 0 else 0.0


def wait_until_idle(quiet_s: float, give_up_s: float = 900.0, busy_below: float = 0.1,
                    stat: Path = PROC_STAT) -> bool:
    """Waits until less than ``busy_below`` of the CPUs have been busy for ``quiet_s`` seconds on
    end (this process's own share included). True once they have (at once for ``quiet_s <= 0``);
    False after ``give_up_s`` seconds without such a spell, or where there is no ``stat`` to read."""
    if quiet_s <= 0:
        return True
    if not stat.exists():
        return False
    start = quiet_since = time.monotonic()
    before = cpu_times(stat)
    while time.monotonic() - quiet_since < quiet_s:
        if time.monotonic() - start >= give_up_s:
            return False
        time.sleep(min(SAMPLE_S, quiet_s))
        after = cpu_times(stat)
        if busy_fraction(before, after) >= busy_below:
            quiet_since = time.monotonic()
        before = after
    return True
