"""Training on several processes (GPUs, machines) with torch.distributed, launched by torchrun.

    torchrun --nproc_per_node 8 -m cyclegan train datasets/horse2zebra --batch-size 1

Each process trains on its own slice of every epoch's plan; DistributedDataParallel averages
the gradients, so N processes at --batch-size B compute what one process computes at batch
N x B (up to the order of float sums). Rank 0 alone writes the run directory; the checkpoint
holds every rank's image pools and random state, so a resume continues exactly.
Without torchrun's environment (WORLD_SIZE unset or 1) nothing here changes a run.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..models import CycleGANNets


# Newer torch renamed the option (and warns about the old name); both keep the sync at start.
_NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}
)


@dataclass(frozen=True)
class ProcessGroup:
    """Where this process stands among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1  # processes on this machine

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_process_group(device_name: str) -> tuple[ProcessGroup, str]:
    """Join the group torchrun describes (NCCL on CUDA, gloo on CPU); return it and the device to use.

    With device "auto" under torchrun on a GPU machine each process takes cuda:LOCAL_RANK.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ProcessGroup(), device_name
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda") or device_name.startswith("cuda")
    if use_cuda:
        device_name = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return ProcessGroup(rank, world_size, local_rank, local_world_size), device_name if device_name != "auto" else "cpu"


def close_process_group(group: ProcessGroup) -> None:
    if group.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap_for_training(nets: CycleGANNets, group: ProcessGroup, device: torch.device,
                      compile: bool = False) -> CycleGANNets:
    """The networks as the training step should call them: in DDP wrappers when distributed,
    compiled with torch.compile when asked.

    The wrappers share the parameters of `nets`, so optimisers, checkpoints and sample grids
    keep using the plain modules (whose state_dict keys stay unprefixed). Batch norm becomes
    SyncBatchNorm on GPUs (where it exists), so the statistics are those of the global batch.
    """
    if not group.distributed and not compile:
        return nets
    ids = [group.local_rank] if device.type == "cuda" else None

    def wrap(net: nn.Module | None) -> nn.Module | None:
        if net is None:
            return None
        if group.distributed:
            if device.type == "cuda":
                net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
            # Buffers are running statistics only: SyncBatchNorm keeps them equal, and instance
            # norm has none, so broadcasting them before every forward would be wasted traffic.
            net = DistributedDataParallel(net, device_ids=ids, **_NO_FORWARD_BUFFER_SYNC)
        return torch.compile(net) if compile else net

    return CycleGANNets(wrap(nets.gen_ab), wrap(nets.gen_ba), wrap(nets.disc_a), wrap(nets.disc_b),
                        nets.samples_independent)


def mean_over_processes(values: dict[str, float], group: ProcessGroup) -> dict[str, float]:
    """The mean of each value over all processes (the logged losses of the global batch)."""
    if not group.distributed or not values:
        return values
    names = sorted(values)
    t = torch.tensor([values[n] for n in names], dtype=torch.float64)
    t = t.cuda() if dist.get_backend() == "nccl" else t
    dist.all_reduce(t)
    return {n: float(v) / group.world_size for n, v in zip(names, t.cpu().tolist())}


def any_process(flag: bool, group: ProcessGroup) -> bool:
    """True on every process when it is true on one (a stop request, say)."""
    if not group.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    t = t.cuda() if dist.get_backend() == "nccl" else t
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_to_main(obj: object, group: ProcessGroup) -> list[object] | None:
    """Every process's `obj`, as a list on rank 0 (None elsewhere)."""
    if not group.distributed:
        return [obj]
    out: list[object] | None = [None] * group.world_size if group.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def barrier(group: ProcessGroup) -> None:
    """Every process waits here until all have arrived (rank 0's evaluation during training)."""
    if group.distributed:
        dist.barrier()
