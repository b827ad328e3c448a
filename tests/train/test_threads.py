"""How many CPU threads training and solving take: the cores idle now (not the load average, which
trails by a minute), never more than this process may use. Events, not timings: /proc/stat snapshots."""

import os

import torch

from mgnet_cli.timing import free_cores, usable_cpus
from mgnet_cli.device import choose_threads
from tests.helpers import fit_config, mgnet_solve


def snapshots(busy: dict[int, int]) -> list[str]:
    """Two /proc/stat texts 100 ticks apart per usable CPU, CPU n busy for ``busy.get(n, 0)`` of them."""
    cpus = sorted(usable_cpus())
    before = [f"cpu{n} 5000 0 0 5000 0 0 0 0 0 0" for n in cpus]  # a long job's busy ticks, long ago
    after = [f"cpu{n} {5000 + busy.get(n, 0)} 0 0 {5100 - busy.get(n, 0)} 0 0 0 0 0 0" for n in cpus]
    return ["\n".join(["cpu 0 0 0 0 0 0 0 0 0 0", *lines]) for lines in (before, after)]


def looking_at(texts: list[str]):
    reads = iter(texts)
    return lambda: free_cores(lambda: next(reads), pause=lambda: None, own_seconds=lambda: 0.0)


def test_right_after_another_job_an_idle_machine_gives_every_core(monkeypatch):
    # the job that just ended leaves a 1-minute load average of 2 or more behind
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    usable = len(usable_cpus())
    threads, why = choose_threads(None, look=looking_at(snapshots({})))
    assert threads == usable and why == f"{usable} of {usable} cores free now (0.0 busy)"


def test_a_machine_busy_now_still_gives_the_free_cores():
    first = min(usable_cpus())
    threads, why = choose_threads(None, look=looking_at(snapshots({first: 100})))
    usable = len(usable_cpus())
    assert threads == max(1, usable - 1) and why == f"{threads} of {usable} cores free now (1.0 busy)"
    asked, note = choose_threads(usable, look=looking_at(snapshots({first: 100})))
    assert asked == usable
    if usable > 1:  # more threads than free cores: said, since they wait on each other
        assert note.endswith(f"about {usable - 1} of {usable} cores are free now: threads beyond them "
                             "wait on each other")


def test_a_deterministic_run_takes_every_usable_core_however_busy_the_machine():
    # the thread count orders a CPU reduction: a repeatable run cannot let the load choose it
    first, usable = min(usable_cpus()), len(usable_cpus())
    busy = looking_at(snapshots({first: 100}))
    assert choose_threads(None, look=busy, repeatable=True) == (
        usable, f"all {usable} usable cores (deterministic: a count the load does not change)")
    assert choose_threads(1, look=busy, repeatable=True) == (1, "1 requested")


def test_threads_far_above_the_usable_cores_are_capped():
    usable = len(usable_cpus())
    assert choose_threads(512) == (usable, f"512 threads asked, {usable} cores usable: using {usable}")


def test_the_start_line_says_the_threads_were_capped(compose_config, tmp_path, caplog):
    usable = len(usable_cpus())
    threads = torch.get_num_threads()
    try:
        with caplog.at_level("INFO", logger="mgnet_cli.train.loop"):
            fit_config(compose_config("trainer.threads=512"), tmp_path)
        assert torch.get_num_threads() == usable
    finally:
        torch.set_num_threads(threads)
    start = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("training "))
    assert f"512 threads asked, {usable} cores usable: using {usable}" in start


def test_the_real_proc_stat_is_read_per_usable_cpu():
    """This machine's /proc/stat, as training reads it: its usable cores, and how busy they are now
    (other processes may run: only the bounds are certain)."""
    cores = free_cores()
    assert cores.usable == len(os.sched_getaffinity(0)) and 0.0 <= cores.busy <= cores.usable
    assert 1 <= cores.free <= cores.usable


def test_mgnet_solve_caps_its_threads_too(tmp_path):
    done = mgnet_solve("problem.n=15", "solver.threads=512", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    usable = len(usable_cpus())
    assert done.returncode == 0, done.stderr
    assert f"{usable} CPU thread{'s' if usable > 1 else ''}: 512 threads asked, {usable} cores usable" in (
        done.stdout + done.stderr)
