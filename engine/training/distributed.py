"""Multi-process training with torch DistributedDataParallel, started by torchrun:

    torchrun --nproc-per-node N main.py train --recipe R            # one machine, N processes
    torchrun --nnodes M --node-rank I --rdzv-endpoint HOST:PORT --nproc-per-node N main.py train --recipe R

torchrun sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`setup` joins the process group (NCCL when the
run is on CUDA, one GPU per local rank; gloo on the CPU). Without those variables everything here is a no-op and
training runs as one process, as before.

What N processes mean: the recipe's ``batch_size`` is per process, so one step sees N x batch_size samples and
reaches the same quality per step as one process with N times the batch (tests/test_training_distributed.py
checks that the weights match after a few steps). Every rank draws the whole global batch from the run's one
generator (same seed, same state on every rank) and keeps its own slice (:func:`shard`), so the samples, and a
resumed run, are exactly those of the single process; the price is N x the sampling work, small next to a step on
the CPU. DDP averages the gradients; decisions that must agree (skip a bad batch, stop at the budget) are taken
together (:func:`all_true`, :func:`main_decides`); rank 0 alone validates, saves checkpoints, prints and exports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_environment() -> Context:
    """The context torchrun describes in the environment (one process when it did not start us)."""
    try:
        return Context(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                       int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        return Context()


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def current() -> Context:
    """The running process group's context (one process when none was set up)."""
    dist = _dist()
    if dist is None:
        return Context()
    return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def setup(device: str | None = None) -> Context:
    """Join torchrun's process group: NCCL on CUDA (this process's GPU: ``LOCAL_RANK``), gloo on the CPU."""
    context = from_environment()
    if not context.enabled or _dist() is not None:
        return context
    import torch
    import torch.distributed as dist

    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(context.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    return context


def teardown(finished: bool = True) -> None:
    """Leave the process group. After a finished run every rank first waits for the others (rank 0 still
    validates, saves and exports after the last step); after a failure there is no waiting: torchrun stops the
    other ranks."""
    dist = _dist()
    if dist is None:
        return
    if finished:
        dist.barrier()
    import gc

    gc.collect()  # the DDP wrapper and its reducer hold the group: let them go before it is destroyed
    dist.destroy_process_group()


def exit_process(code: int) -> None:
    """End a torchrun worker whose run is finished and whose group is torn down, without the interpreter's
    teardown. On a loaded machine about one worker exit in ten aborted in a C++ static destructor after all Python
    code had returned ("terminate called without an active exception", SIGABRT, no Python frame: a gloo / c10d
    thread still joinable), and torchrun then failed the whole run. Everything is written by then; the standard
    streams and logging are flushed here before ``os._exit``."""
    import logging
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def wrap(model, device: str):
    """The model to run forward and backward with: DDP around ``model`` in a process group, else ``model``.

    Keep using ``model`` itself for state dicts, validation and export (no ``module.`` prefixes)."""
    if _dist() is None:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if device == "cuda":
        import torch

        return DistributedDataParallel(model, device_ids=[torch.cuda.current_device()])
    return DistributedDataParallel(model)


def shard(batch: tuple[list, Any, Any], context: Context) -> tuple[list, Any, Any]:
    """This rank's slice of a global batch (inputs, target, valid), drawn identically on every rank."""
    if not context.enabled:
        return batch
    inputs, target, valid = batch
    size = target.shape[0] // context.world_size
    part = slice(context.rank * size, (context.rank + 1) * size)
    return [x[part] for x in inputs], target[part], None if valid is None else valid[part]


def all_true(flag: bool) -> bool:
    """True when ``flag`` holds on every rank (a collective: every rank must call it)."""
    dist = _dist()
    if dist is None:
        return flag
    import torch

    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_collective_device())
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def main_decides(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (e.g. "the time budget is not spent yet")."""
    dist = _dist()
    if dist is None:
        return flag
    import torch

    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_collective_device())
    dist.broadcast(value, src=0)
    return bool(value.item())


def mean(value: float) -> float:
    """The mean of ``value`` over the ranks (the loss one process with the whole batch would report)."""
    dist = _dist()
    if dist is None:
        return value
    import torch

    tensor = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist.get_world_size()


def _collective_device() -> str:
    dist = _dist()
    return "cuda" if dist is not None and dist.get_backend() == "nccl" else "cpu"
