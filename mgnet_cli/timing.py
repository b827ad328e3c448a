"""Wall-clock timing for the measurement scripts, device work included, and how busy the CPUs are
now (Linux's ``/proc/stat``): the scripts wait until other processes leave them idle, and training
and solving take as many threads as there are cores free (elsewhere nothing waits, every core counts)."""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

PROC_STAT = Path("/proc/stat")
SAMPLE_S = 0.2  # how often wait_until_idle looks at the CPUs
LOOK_S = 0.1  # how long free_cores watches the CPUs: 10 clock ticks of each at Linux's 100 Hz


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


def cpu_ticks(text: str) -> dict[str, tuple[int, int]]:
    """(idle, total) clock ticks since boot of all CPUs (``"cpu"``) and of each (``"cpu0"``, …) in
    ``/proc/stat``'s ``text``; idle counts waiting for I/O, busy counts time stolen by a hypervisor."""
    ticks = {}
    for line in text.splitlines():
        if line.startswith("cpu"):
            name, *values = line.split()
            # user nice system idle iowait irq softirq steal; guest time is counted in user already
            fields = [int(x) for x in values[:8]]
            ticks[name] = fields[3] + fields[4], sum(fields)
    return ticks


def cpu_times(stat: Path = PROC_STAT) -> tuple[int, int]:
    """(idle, total) clock ticks of all CPUs since boot; idle counts waiting for I/O."""
    return cpu_ticks(stat.read_text())["cpu"]


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


def usable_cpus() -> set[int]:
    """The CPUs this process may run on (its affinity: taskset, a container's cpuset)."""
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class Cores:
    """What ``free_cores`` saw: how many cores this process may use, and how busy other processes
    kept them during the look (in cores: 1.5 = one core fully and another half the time)."""

    usable: int
    busy: float

    @property
    def free(self) -> int:
        """The usable cores other processes left idle, rounded, at least one."""
        return max(1, min(self.usable, round(self.usable - self.busy)))


def free_cores(read: Callable[[], str] | None = None, pause: Callable[[], None] = lambda: time.sleep(LOOK_S),
               own_seconds: Callable[[], float] = time.process_time, cpus: set[int] | None = None) -> Cores:
    """The usable cores and how busy they are now: two reads of ``/proc/stat`` (``read()``'s text)
    ``pause()`` apart, per CPU of ``cpus`` (default: ``usable_cpus()``), less this process's own
    CPU time (``own_seconds``) in between. Unlike the load average, which trails by a minute, an
    idle machine shows every core free right after another job ended. Without ``/proc/stat``: no
    core counts as busy."""
    cpus = usable_cpus() if cpus is None else cpus
    if read is None:
        if not PROC_STAT.exists():
            return Cores(len(cpus), 0.0)
        read = PROC_STAT.read_text
    before, own_before = cpu_ticks(read()), own_seconds()
    pause()
    after, own = cpu_ticks(read()), own_seconds() - own_before
    shares, totals = [], []
    for cpu in (f"cpu{number}" for number in sorted(cpus)):
        if cpu in before and cpu in after and after[cpu][1] > before[cpu][1]:
            shares.append(busy_fraction(before[cpu], after[cpu]))
            totals.append(after[cpu][1] - before[cpu][1])
    if not shares:  # no tick passed (or no per-CPU lines): nothing seen busy
        return Cores(len(cpus), 0.0)
    own_cores = own * os.sysconf("SC_CLK_TCK") / (sum(totals) / len(totals))  # CPU seconds / wall seconds
    return Cores(len(cpus), max(0.0, sum(shares) - own_cores))
