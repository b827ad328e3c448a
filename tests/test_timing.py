"""The timing helpers: what ``timed`` runs, how /proc/stat is read, when waiting stops, how many cores are free."""

import os

import pytest
import torch

from mgnet_cli.timing import Cores, busy_fraction, cpu_ticks, cpu_times, free_cores, timed, wait_until_idle

# user nice system idle iowait irq softirq steal guest guest_nice, in clock ticks
STAT = "cpu  100 20 30 800 50 0 0 0 0 0\ncpu0 50 10 15 400 25 0 0 0 0 0\nprocs_running 1\n"


def test_timed_runs_the_work_once_and_returns_seconds():
    calls = []
    seconds = timed(torch.device("cpu"), lambda: calls.append(sum(range(1000))))
    assert calls == [499500] and isinstance(seconds, float) and seconds >= 0.0


def test_cpu_times_count_iowait_as_idle(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(STAT)
    assert cpu_times(stat) == (800 + 50, 1000)


@pytest.mark.parametrize("before, after, busy", [
    ((850, 1000), (900, 1100), 0.5),   # 50 idle ticks of 100
    ((850, 1000), (950, 1100), 0.0),   # all idle
    ((850, 1000), (850, 1000), 0.0),   # no tick between the readings
])  # fmt: skip
def test_busy_fraction_is_the_share_of_ticks_not_idle(before, after, busy):
    assert busy_fraction(before, after) == busy


def test_waiting_for_nothing_or_without_proc_stat_returns_at_once(tmp_path):
    missing = tmp_path / "no-stat"
    assert wait_until_idle(0.0, stat=missing) is True  # nothing asked: idle at once
    assert wait_until_idle(60.0, stat=missing) is False  # nothing to read: never known to be idle
    stat = tmp_path / "stat"
    stat.write_text(STAT)
    assert wait_until_idle(60.0, give_up_s=0.0, stat=stat) is False  # no time to wait in


def test_a_machine_whose_ticks_stay_idle_is_idle(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(STAT)  # never changes: no CPU busy between any two readings
    assert wait_until_idle(0.05, give_up_s=60.0, stat=stat) is True


def stat(*cpus: tuple[int, int]) -> str:
    """/proc/stat's text with one line per CPU of (busy, idle) ticks, and their sum."""
    line = lambda name, busy, idle: f"{name} {busy} 0 0 {idle} 0 0 0 0 0 0"  # noqa: E731
    total = line("cpu", sum(busy for busy, _ in cpus), sum(idle for _, idle in cpus))
    return "\n".join([total, *(line(f"cpu{n}", busy, idle) for n, (busy, idle) in enumerate(cpus))]) + "\nintr 5\n"


def look(*snapshots: str, own=(0.0, 0.0), cpus=None) -> Cores:
    """``free_cores`` on the given /proc/stat snapshots, with this process's CPU seconds ``own``."""
    reads, seconds = iter(snapshots), iter(own)
    return free_cores(lambda: next(reads), pause=lambda: None, own_seconds=lambda: next(seconds),
                      cpus={0, 1} if cpus is None else cpus)


def test_cpu_ticks_reads_every_cpu_and_leaves_out_guest_time():
    ticks = cpu_ticks(STAT.replace("0 0 0 0 0\ncpu0", "0 0 0 7 7\ncpu0"))  # guest time: already in user
    assert ticks == {"cpu": (850, 1000), "cpu0": (425, 500)}


def test_the_cores_idle_between_two_reads_are_free_whatever_ran_before():
    # the previous job kept both cores busy for 10,000 ticks, then ended: the next 20 ticks are idle
    before = stat((10_000, 50), (10_000, 50))
    cores = look(before, stat((10_000, 70), (10_000, 70)))
    assert (cores.usable, cores.busy, cores.free) == (2, 0.0, 2)


@pytest.mark.parametrize("ticks, busy, free", [
    (((15, 5), (0, 20)), 0.75, 1),   # cpu0 busy 15 of 20 ticks, cpu1 idle
    (((20, 0), (20, 0)), 2.0, 1),    # both busy: still one thread
    (((10, 10), (4, 16)), 0.7, 1),   # half and a fifth
    (((2, 18), (2, 18)), 0.2, 2),    # a little noise: every core
])  # fmt: skip
def test_busy_cores_are_counted_per_cpu(ticks, busy, free):
    after = stat(*((100 + b, 100 + i) for b, i in ticks))
    cores = look(stat((100, 100), (100, 100)), after)
    assert cores.busy == pytest.approx(busy) and cores.free == free


def test_only_the_cpus_this_process_may_use_count():
    before, after = stat((0, 0), (0, 0)), stat((0, 20), (20, 0))  # cpu1 busy, cpu0 idle
    assert look(before, after, cpus={0}) == Cores(usable=1, busy=0.0)
    assert look(before, after, cpus={1}) == Cores(usable=1, busy=1.0)


def test_this_process_own_cpu_time_is_not_counted_busy():
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    before, after = stat((0, 0), (0, 0)), stat((ticks_per_s, 0), (0, ticks_per_s))  # 1 s, cpu0 busy
    assert look(before, after).busy == pytest.approx(1.0)
    assert look(before, after, own=(3.0, 4.0)).busy == pytest.approx(0.0)  # the busy second was ours


def test_no_tick_between_the_reads_counts_nothing_busy():
    assert look(STAT, STAT, cpus={0, 1, 2}) == Cores(usable=3, busy=0.0)
