"""Several processes, one training run: ``torchrun`` and DistributedDataParallel.

    torchrun --standalone --nproc_per_node=4 -m sslkit run alexnet -p model=caffenet --profile paper

:func:`init` (called by the command line) joins the process group that ``torchrun`` describes
in the environment: NCCL with one GPU per process on GPUs, gloo on the CPU. :func:`sslkit.training.loop.train`
then runs the same iterations as one process would: every rank draws the same per-iteration
sample order and augmentation for the solver's whole batch and trains on its contiguous
share of it, DDP averages the gradients, so the global batch is the solver's and the weights
stay equal on every rank. Only rank 0 writes checkpoints, trained stages and results; a run
resumes on any number of processes whose count divides the batch. Not identical to one
process: dropout masks (each rank draws its own) and BatchNorm statistics (per rank).
Outside ``torchrun`` every function here is a no-op for one process.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.nn as nn


def active() -> bool:
    """Whether this process is one of several in an initialized process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world() -> tuple[int, int]:
    """(rank, number of processes); (0, 1) outside a process group."""
    return (dist.get_rank(), dist.get_world_size()) if active() else (0, 1)


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one process that writes files."""
    return world()[0] == 0


def init() -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1 in the environment):
    NCCL with ``cuda:LOCAL_RANK`` as this process's device when CUDA is available, else gloo.
    Returns whether a group was joined (False for a single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or active():
        return active()
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return True


def barrier() -> None:
    """Wait for every rank (no-op for one process)."""
    if active():
        dist.barrier()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on any rank, so all ranks take the same decision (e.g. to stop
    at a deadline); ``flag`` itself for one process."""
    if not active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def wrap(model: nn.Module) -> nn.Module:
    """``model`` in DistributedDataParallel when several processes train it (rank 0's weights are
    broadcast to all), else ``model`` itself."""
    if not active():
        return model
    device = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def share(batch_size: int) -> slice:
    """This rank's contiguous part of a batch of ``batch_size`` samples.

    Raises:
        ValueError: the processes do not divide the batch.
    """
    rank, size = world()
    if batch_size % size:
        raise ValueError(f"the batch of {batch_size} does not split over {size} processes: "
                         f"use a process count that divides it")
    n = batch_size // size
    return slice(rank * n, (rank + 1) * n)
