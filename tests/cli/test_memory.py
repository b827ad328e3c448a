"""Memory bounds from the machine and the process: free memory, ``ulimit -v``/``-d`` and the cgroup's
limit, the smallest applying, named in the refusal (``mgnet_cli.memory``)."""

import functools
import multiprocessing
import resource
import subprocess
import sys

import pytest

from mgnet_cli import memory
from tests.helpers import BIN, PATIENCE_S, TINY, one_line_error

pytestmark = pytest.mark.process  # address-space limits and what a started process maps

HEADROOM = 3 * 2**29  # 1.5 GiB above what an mgnet process maps when it starts


@functools.cache
def started_size() -> int:
    """What a process that has imported mgnet's commands maps (torch alone maps GiBs), in bytes."""
    return int(subprocess.run([sys.executable, "-c", "import mgnet_cli.cli.train, mgnet_cli.cli.solve, "
                               "mgnet_cli.cli.info; from mgnet_cli import memory; print(memory.status_bytes('VmSize'))"],
                              check=True, capture_output=True, text=True, timeout=PATIENCE_S).stdout)


def mgnet_limited(*args: str, cwd) -> subprocess.CompletedProcess:
    """``mgnet <args>`` under ``ulimit -v`` (RLIMIT_AS): ``HEADROOM`` above what it maps at start."""
    limit = started_size() + HEADROOM
    return subprocess.run([str(BIN / "mgnet"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=PATIENCE_S,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))


def needs_free(gib: float) -> None:
    free = memory.free_memory()
    if free is None or free.free < gib * 2**30 or memory.process_limits():
        pytest.skip(f"the premise needs {gib} GiB of free memory and no ulimit -v/-d")


def tightest_under(limit: int, queue) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    queue.put(memory.tightest())


def test_a_lowered_address_space_limit_is_the_bound_less_what_the_process_maps():
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=tightest_under, args=(memory.status_bytes("VmSize") + 2**29, queue))
    child.start()
    bound = queue.get(timeout=PATIENCE_S)
    child.join()
    assert bound.source == "the address-space limit, ulimit -v"
    assert 2**28 < bound.free <= 2**29  # the 512 MiB above what it maps, less what it mapped since


def test_the_cgroup_limit_of_the_process_and_of_the_groups_above_it(tmp_path):
    """cgroup v2: memory.max less memory.current, in the process's group and each above; "max" is
    no limit. v1: memory.limit_in_bytes less usage, a number near 2^63 meaning no limit."""
    membership = tmp_path / "cgroup"
    membership.write_text("0::/job/step\n4:memory:/slurm\n")
    for folder, limit, used in (("job/step", "max", "100"), ("job", str(3 * 2**30), str(2**30)),
                                ("memory/slurm", str(2**30), str(2**28)), ("memory", str(2**63 - 4096), "5")):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        names = ("memory.limit_in_bytes", "memory.usage_in_bytes") if folder.startswith("memory") else \
            ("memory.max", "memory.current")
        (tmp_path / folder / names[0]).write_text(limit + "\n")
        (tmp_path / folder / names[1]).write_text(used + "\n")
    bounds = memory.cgroup_limits(tmp_path, membership)
    assert sorted((bound.free, bound.source) for bound in bounds) == [
        (3 * 2**28, f"the cgroup limit, {tmp_path / 'memory/slurm/memory.limit_in_bytes'}"),
        (2 * 2**30, f"the cgroup limit, {tmp_path / 'job/memory.max'}")]


def test_a_grid_that_fits_free_memory_but_not_the_process_limit_is_refused(tmp_path):
    """problem.n=4095 needs about 5 GiB: free here, but not under ulimit -v (1.5 GiB left)."""
    needs_free(5.5)
    line = one_line_error(mgnet_limited("solve", "problem.n=4095", "solver.device=cpu", cwd=tmp_path), "solve")
    assert "problem.n=4095: needs about 5.0 GiB, and " in line
    assert line.endswith("are free (the address-space limit, ulimit -v): give a smaller grid")


def test_info_refuses_a_model_that_fits_free_memory_but_not_the_process_limit(tmp_path):
    """512 channels on CIFAR-10, batches of 128: about 378 MiB of weights, gradients and momentum
    and 4 GiB of activations. Described without a limit; refused, with its size, under one."""
    needs_free(6)
    args = ("info", "dataset=cifar10", "model.channels=512", "trainer.device=cpu")
    assert "parameters: 33,072,650" in subprocess.run([str(BIN / "mgnet"), *args], cwd=tmp_path, check=True,
                                                      capture_output=True, text=True).stdout
    line = one_line_error(mgnet_limited(*args, cwd=tmp_path), "info")
    assert line.startswith("mgnet info: error: the model needs about 4.4 GiB (33,072,650 parameters: 378 MiB "
                           "with their gradients and momentum; activations for a batch of 128: 4.0 GiB), and ")
    assert "are free (the address-space limit, ulimit -v): use fewer or narrower levels, or a smaller " \
           "trainer.batch_size" in line


def test_training_refuses_a_model_it_cannot_hold_before_building_it(tmp_path):
    """906M parameters: 10 GiB with gradients and momentum; refused before any allocation, and the
    new run's folder is removed."""
    run = tmp_path / "run"
    line = one_line_error(mgnet_limited("train", *TINY, "model.channels=4096", f"hydra.run.dir={run}",
                                        cwd=tmp_path), "train")
    assert "the model needs about " in line and "(the address-space limit, ulimit -v)" in line
    assert not run.exists()


def test_training_on_the_cpu_refuses_a_batch_whose_activations_cannot_fit(tmp_path):
    """Its weights fit (378 MiB with gradients and momentum); 128 images' activations (4 GiB) do not."""
    run = tmp_path / "run"
    line = one_line_error(mgnet_limited("train", *TINY, "model.channels=512", "model.smoothing_steps=[2,2,2,2]",
                                        "dataset.num_train=128", "trainer.batch_size=128",
                                        f"hydra.run.dir={run}", cwd=tmp_path), "train")
    assert "(33,072,650 parameters: 378 MiB with their gradients and momentum; activations for a batch of " \
           "128: 4.0 GiB)" in line and "(the address-space limit, ulimit -v)" in line
    assert not run.exists()
