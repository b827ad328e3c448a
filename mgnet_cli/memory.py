"""How much memory this process may still take: the smallest of the machine's free memory, the
process's own limits (``ulimit -v``, ``ulimit -d``) and its cgroup's (a container's, a SLURM job's).

Free memory alone is not the bound: a process capped below it dies in the allocator with a grid or
a model that "fits". Each bound names itself, so a refusal says which limit it met.
"""

import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")
NO_LIMIT = 2**60  # cgroup v1 writes "no limit" as a number near 2^63
CGROUP_FILES = {"v2": ("memory.max", "memory.current"), "v1": ("memory.limit_in_bytes", "memory.usage_in_bytes")}
PROCESS_LIMITS = ((resource.RLIMIT_AS, "VmSize", "the address-space limit, ulimit -v"),
                  (resource.RLIMIT_DATA, "VmData", "the data limit, ulimit -d"))
BYTES_PER_NUMBER = 4  # float32 weights, gradients, optimizer state and activations
COPIES_OF_WEIGHTS = 3  # the weights, their gradients and SGD's momentum
SAVED_PER_STEP = 6  # tensors of a level's size autograd keeps per smoothing step (or ResNet block):
                    # the outputs of A's and B's convolution, normalisation and activation


@dataclass(frozen=True)
class Bound:
    """``free`` bytes the process may still allocate before it meets the limit ``source`` names."""
    free: int
    source: str


def read_number(path: Path) -> int | None:
    """An integer file of /proc or /sys; None if absent, unreadable or ``max`` (no limit)."""
    try:
        text = path.read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(text) if text.isdigit() else None


def status_bytes(key: str, status: Path = Path("/proc/self/status")) -> int:
    """A ``kB`` line of /proc/self/status (VmSize, VmData) in bytes; 0 where there is none."""
    try:
        lines = status.read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in lines if line.startswith(f"{key}:")), 0)


def free_memory() -> Bound | None:
    """What the kernel could give without swapping (MemAvailable), else the free pages."""
    available = status_bytes("MemAvailable", Path("/proc/meminfo"))
    if available:
        return Bound(available, "free memory, MemAvailable")
    try:
        return Bound(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"), "free memory")
    except (ValueError, OSError, AttributeError):
        return None


def process_limits() -> list[Bound]:
    """``RLIMIT_AS`` and ``RLIMIT_DATA``, less what the process already uses of each."""
    bounds = []
    for limit, used, source in PROCESS_LIMITS:
        soft, _ = resource.getrlimit(limit)
        if soft != resource.RLIM_INFINITY:
            bounds.append(Bound(max(soft - status_bytes(used), 0), source))
    return bounds


def cgroup_limits(root: Path = CGROUP_ROOT, membership: Path = Path("/proc/self/cgroup")) -> list[Bound]:
    """The memory left under this process's cgroup and each cgroup above it (v2: ``memory.max`` less
    ``memory.current``; v1: ``memory.limit_in_bytes`` less ``memory.usage_in_bytes``)."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return []
    bounds = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            version, mount = "v2", root / "unified" if (root / "unified").is_dir() else root
        elif "memory" in controllers.split(","):
            version, mount = "v1", root / "memory"
        else:
            continue
        limit_file, usage_file = CGROUP_FILES[version]
        here = mount / path.strip("/")
        for folder in [here, *(parent for parent in here.parents if mount in (parent, *parent.parents))]:
            limit, used = read_number(folder / limit_file), read_number(folder / usage_file)
            if limit is not None and limit < NO_LIMIT:
                bounds.append(Bound(max(limit - (used or 0), 0), f"the cgroup limit, {folder / limit_file}"))
    return bounds


def tightest() -> Bound | None:
    """The smallest of the bounds that apply; None where none can be read."""
    bounds = [bound for bound in (free_memory(), *process_limits(), *cgroup_limits()) if bound is not None]
    return min(bounds, key=lambda bound: bound.free, default=None)


def size(count: int) -> str:
    """Bytes for a person: ``5.0 GiB``, ``300 MiB``."""
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"


def shortfall(needed: int, what: str = "") -> str | None:
    """None when ``needed`` bytes fit in what the process may still take; else the refusal's reason:
    ``needs about 5.0 GiB<what>, and 1.2 GiB are free (the address-space limit, ulimit -v)``."""
    bound = tightest()
    if bound is None or needed <= bound.free:
        return None
    return f"needs about {size(needed)}{what}, and {size(bound.free)} are free ({bound.source})"


def weight_bytes(parameters: int, copies: int = COPIES_OF_WEIGHTS) -> int:
    """The weights, and by default their gradients and SGD's momentum, as float32."""
    return parameters * BYTES_PER_NUMBER * copies


def activation_bytes(facts: dict[str, Any], batch: int) -> int:
    """What autograd keeps, for the backward pass, of a batch of ``batch`` images through the
    model ``mgnet_cli.model.summary`` describes: about ``SAVED_PER_STEP`` tensors of a level's
    ``u`` per smoothing step (of a stage's output per ResNet block). An estimate, on the low side."""
    rows = [(row["resolution"], row["channels_u"], row["smoothing_steps"]) for row in facts["levels"]]
    rows += [(row["resolution"], row["channels"], row["blocks"]) for row in facts["stages"]]
    numbers = sum(resolution**2 * width * steps * SAVED_PER_STEP for resolution, width, steps in rows)
    return batch * numbers * BYTES_PER_NUMBER
