"""The scripts' timing helpers: what ``timed`` runs, how /proc/stat is read, when waiting stops."""

import pytest
import torch

from mgnet_cli.timing import busy_fraction, cpu_times, timed, wait_until_idle

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
