"""Data-parallel training on PyTorch's own engine: ``torchrun`` starts one process per GPU (or CPU
worker), ``torch.distributed`` connects them (NCCL on CUDA, gloo on the CPU) and
DistributedDataParallel averages the gradients. A process not started by torchrun is a world of
one: no process group, nothing changes.

Each rank trains on its part of every global batch (the batch loaders take a ``shard``), so
``trainer.batch_size`` is the global batch whatever the number of ranks.
"""

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mgnet_cli.errors import ConfigError
from mgnet_cli.train.guards import LossWatch, StopSignal

log = logging.getLogger(__name__)


@contextlib.contextmanager
def process_group() -> Iterator[None]:
    """Joins the other ranks torchrun started (its environment says where and how many) for the
    duration of the block.

    One group serves CPU tensors (gloo) and, where CUDA is present, CUDA tensors (NCCL, each rank on
    ``cuda:LOCAL_RANK``), so the backend follows the tensors whatever ``trainer.device`` says.
    """
    backend = "gloo"
    if torch.cuda.is_available() and dist.is_nccl_available():
        backend = "cpu:gloo,cuda:nccl"
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank < torch.cuda.device_count():
            torch.cuda.set_device(local_rank)
    dist.init_process_group(backend)  # env://: torchrun's MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    try:
        yield
        # Finished (not stopped or failed, where a barrier could hang): no rank tears the group down
        # while another still has its last collective in flight; seen once as a SIGABRT at exit.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def broadcast_object(value: object) -> object:
    """Rank 0's ``value`` on every rank (pickled, over gloo)."""
    box = [value]
    dist.broadcast_object_list(box, src=0, device=torch.device("cpu"))
    return box[0]


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel run; the defaults are a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def active(self) -> bool:
        """True when several processes train together (a process group exists)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes logs, events, checkpoints and results."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        """(rank, world size): which part of every global batch this rank takes."""
        return self.rank, self.world_size

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the ranks (a copy; the tensor itself in one process)."""
        if not self.active:
            return tensor
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    def all(self, flag: torch.Tensor) -> torch.Tensor:
        """True on every rank when ``flag`` (a bool tensor) is True on every rank."""
        if not self.active:
            return flag
        agreed = flag.to(torch.int32)
        dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
        return agreed.bool()

    def data_parallel(self, model: nn.Module, compile: bool = False) -> nn.Module:
        """What the training steps call: ``model`` wrapped in DistributedDataParallel (which
        broadcasts rank 0's weights now and averages gradients in every backward), compiled if asked."""
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # static_graph: every step runs the same graph, in which some parameters take no part (the
        # coarsest level's A, Chebyshev coefficients beyond the smoothing steps); DDP finds them in
        # the first step instead of searching the graph in every step (find_unused_parameters)
        wrapped = DistributedDataParallel(model, device_ids=device_ids, static_graph=True)
        return torch.compile(wrapped, dynamic=False) if compile else wrapped

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) on every rank: each rank's last training
        forward updated its own from its own images; evaluation and checkpoints use rank 0's."""
        if self.active:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def sync_report(self, model: nn.Module) -> dict[str, bool | float]:
        """For results.json: whether DDP kept every rank's weights bitwise equal to rank 0's (every
        rank applies the same averaged gradients), and the largest |difference| of any rank's
        parameters and buffers from rank 0's; an error if they differ."""
        if not self.active:
            return {}
        flat = torch.cat([tensor.detach().double().flatten() for tensor in [*model.parameters(), *model.buffers()]])
        reference = flat.clone()
        dist.broadcast(reference, src=0)
        largest = (flat - reference).abs().max()
        dist.all_reduce(largest, op=dist.ReduceOp.MAX)
        difference = float(largest)
        if difference != 0.0:
            log.error("the ranks' weights differ from rank 0's by up to %.3g", difference)
        return {"ranks_in_sync": difference == 0.0, "max_rank_difference": difference}


def this_process(device: torch.device) -> Distributed:
    """The process's place in the run started by torchrun (a world of one otherwise): on CUDA each
    rank takes ``cuda:LOCAL_RANK``."""
    if not dist.is_initialized():
        return Distributed(device=device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if device.index not in (None, local_rank):
            raise ConfigError(f"trainer.device={device}: under torchrun each rank uses cuda:LOCAL_RANK; "
                              "use trainer.device=cuda or auto (CUDA_VISIBLE_DEVICES picks the GPUs)")
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"local rank {local_rank} has no GPU: this machine shows "
                              f"{torch.cuda.device_count()}; start at most that many processes per node")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank, device)


def check_batch_sizes(world: Distributed, batch_size: int, eval_batch_size: int) -> None:
    """The global batch splits evenly across the ranks; every rank gets evaluation images."""
    if batch_size % world.world_size:
        raise ConfigError(f"trainer.batch_size={batch_size} is the global batch, split across "
                          f"{world.world_size} ranks: use a multiple of {world.world_size}")
    if eval_batch_size < world.world_size:
        raise ConfigError(f"trainer.eval_batch_size={eval_batch_size} is split across "
                          f"{world.world_size} ranks: use at least {world.world_size}")


def check_sync_bn(requested: bool, device: torch.device) -> None:
    """SyncBatchNorm runs on CUDA only: a ConfigError elsewhere."""
    if requested and device.type != "cuda":
        raise ConfigError(f"trainer.sync_bn=true needs CUDA (NCCL): PyTorch's SyncBatchNorm cannot run "
                          f"on {device.type} (the gloo backend); set trainer.sync_bn=false")


def sync_batchnorm(model: nn.Module, world: Distributed, requested: bool) -> nn.Module:
    """``trainer.sync_bn``: BatchNorm statistics over the global batch instead of each rank's part
    (SyncBatchNorm, CUDA only). The parameters stay the same objects, so an optimizer built on the
    model still holds them."""
    check_sync_bn(requested, world.device)
    if not requested:
        return model
    if not world.active:
        log.info("trainer.sync_bn: one process, nothing to synchronise")
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


class StepAgreement:
    """The decisions every rank must take at the same step, or DDP waits forever for the missing
    rank: whether to stop (a signal reached any rank) and the first step whose loss was not finite
    (on any rank). ``agree()`` takes both in one all-reduce, a host sync, so the loop calls it every
    few steps; in between, ``stop()`` answers what was last agreed. Quacks like ``StopSignal``."""

    NONE = 2**62  # "no non-finite step", larger than any step

    def __init__(self, world: Distributed, signal: StopSignal, watch: LossWatch) -> None:
        self.world, self.signal, self.watch = world, signal, watch
        self.received: int | None = None  # the agreed signal number

    def __call__(self) -> bool:
        return self.received is not None

    def agree(self) -> None:
        first_bad = self.watch.first_bad
        bad = torch.where(first_bad >= 0, first_bad, torch.full_like(first_bad, self.NONE))
        flags = torch.stack([torch.full_like(bad, self.signal.received or 0), -bad])
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)  # the largest signal number, the first bad step
        signal_number, bad = flags.tolist()
        self.received = signal_number or None
        self.watch.first_bad = torch.full_like(first_bad, -1 if -bad == self.NONE else -bad)
