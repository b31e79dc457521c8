"""This process's place in a training job under `torch.distributed` (Ray Train, torchrun), or rank 0 of 1.

Torch-only: importing this module never imports Ray.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class WorkerContext:
    """Rank and number of workers: rank 0 of 1 when not distributed."""

    rank: int
    world_size: int

    @property
    def is_primary(self) -> bool:
        return self.rank == 0


def worker_context() -> WorkerContext:
    if dist.is_available() and dist.is_initialized():
        return WorkerContext(rank=dist.get_rank(), world_size=dist.get_world_size())
    return WorkerContext(rank=0, world_size=1)


def worker_device() -> torch.device:
    """This worker's GPU (LOCAL_RANK, set by Ray Train and torchrun) when CUDA exists, else the CPU."""
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def wrap_model(model: torch.nn.Module, context: WorkerContext) -> torch.nn.Module:
    """DDP around `model` when there is more than one worker (parameters broadcast from rank 0), else `model`."""
    if context.world_size == 1:
        return model
    device = next(model.parameters()).device
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def sum_across_workers(values: Sequence[float], context: WorkerContext) -> list[float]:
    """Element-wise sums of `values` over every worker (the values themselves with one worker)."""
    if context.world_size == 1:
        return [float(value) for value in values]
    device = worker_device() if dist.get_backend() == "nccl" else torch.device("cpu")
    buffer = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    return [float(value) for value in buffer.tolist()]


def barrier(context: WorkerContext) -> None:
    if context.world_size > 1:
        dist.barrier()
