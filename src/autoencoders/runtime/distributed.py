"""Data-parallel training under ``torchrun``: gloo on CPU, nccl on GPU.

``torchrun --nproc-per-node N -m autoencoders train ...`` starts N processes; each takes
its slice of every global batch, DistributedDataParallel averages the gradients, and
rank 0 alone writes the run directory.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def launched() -> bool:
    """Whether this process was started by torchrun as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_name: str) -> torch.device | None:
    """Join the process group when launched by torchrun; return this rank's device (None if alone)."""
    if not launched():
        return None
    cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def rank_and_size() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def teardown(finished: bool = False) -> None:
    """Leave the process group, if joined. A ``finished`` rank first waits for every other one:
    rank 0 evaluates alone after training, and a rank that destroyed its group while another
    still ran was killed by an abort (SIGABRT) in two of this project's test runs. After a failure
    it leaves at once, as the other ranks may never get there."""
    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def from_first(value: str) -> str:
    """Rank 0's ``value`` on every rank (``value`` itself when alone): what one process chose, such
    as a new run directory's name, which the others could not choose alike."""
    if rank_and_size()[1] == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(value: torch.Tensor) -> torch.Tensor:
    """Sum of ``value`` over all ranks (``value`` itself when alone)."""
    if rank_and_size()[1] > 1:
        value = value.clone()
        dist.all_reduce(value)
    return value


def data_parallel(losses: nn.Module) -> nn.Module:
    """``losses`` DDP-wrapped (gradients averaged across ranks) when not alone, else itself."""
    if rank_and_size()[1] == 1:
        return losses
    device = next(losses.parameters()).device
    return nn.parallel.DistributedDataParallel(
        losses,
        device_ids=[device.index] if device.type == "cuda" else None,
    )
