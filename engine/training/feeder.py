"""Batches for the training loop: sampled in the loop's own thread, or by worker processes ahead of a GPU.

Cutting, degrading and stacking 32 patches of 96 x 96 takes ~50 ms of one CPU core, while a GPU runs the step of
a 1-2 M-parameter model in a few milliseconds: without workers a GPU would wait for data ~90% of the time. With
``workers > 0`` a torch DataLoader runs that many processes, each drawing whole batches from its own generator
(seeded by the run's seed, the step it starts at and its index), so a run is reproducible for a given number of
workers. The loop's own generator (``workers == 0``) keeps CPU runs bit-exact and resumable as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from . import datasets as ds


def auto_workers(device: str) -> int:
    """Data workers for ``device``: none on the CPU (the cores train), most of the cores in front of a GPU."""
    if device != "cuda":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, cores - 2))


def stack(samples: Sequence[ds.Sample], roles: Sequence[str]) -> tuple[list[np.ndarray], np.ndarray, Any]:
    """One batch as numpy arrays: an N x C x H x W array per input role, the targets, the valid masks or None."""
    inputs = [np.stack([s.inputs[r] for s in samples]) for r in roles]
    target = np.stack([s.target for s in samples])
    valid = None
    if any(s.valid is not None for s in samples):
        valid = np.stack([s.valid if s.valid is not None else np.ones(s.target.shape, bool) for s in samples])
    return inputs, target, valid


def _worker_batches(train_set, roles, batch_size: int, seed: int, start_step: int):
    import torch.utils.data as tud

    class Batches(tud.IterableDataset):
        def __iter__(self) -> Iterator:
            info = tud.get_worker_info()
            rng = np.random.default_rng([seed, start_step, info.id if info else 0])
            while True:
                yield stack([train_set.sample(rng) for _ in range(batch_size)], roles)

    return Batches()


class BatchFeeder:
    """``next_batch()`` returns (inputs, target, valid) as tensors on ``device``."""

    def __init__(self, train_set, roles: Sequence[str], batch_size: int, device: str, rng: np.random.Generator,
                 *, workers: int = 0, seed: int = 0, start_step: int = 0) -> None:
        self.train_set, self.roles, self.batch_size = train_set, tuple(roles), batch_size
        self.device, self.rng, self.workers = device, rng, workers
        self._loader = None
        self._iterator = None
        if workers > 0:
            import torch.utils.data as tud

            self._loader = tud.DataLoader(
                _worker_batches(train_set, self.roles, batch_size, seed, start_step),
                batch_size=None,
                num_workers=workers,
                pin_memory=device == "cuda",
                prefetch_factor=4,
                persistent_workers=False,
            )

    def next_batch(self) -> tuple[list, Any, Any]:
        import torch

        if self._loader is None:
            inputs, target, valid = stack([self.train_set.sample(self.rng) for _ in range(self.batch_size)],
                                          self.roles)
            inputs = [torch.from_numpy(x) for x in inputs]
            target = torch.from_numpy(target)
            valid = None if valid is None else torch.from_numpy(valid)
        else:
            if self._iterator is None:
                self._iterator = iter(self._loader)
            inputs, target, valid = next(self._iterator)  # default conversion: numpy -> (pinned) tensors
        move = dict(device=self.device, non_blocking=self._loader is not None)
        return ([x.to(**move) for x in inputs], target.to(**move), None if valid is None else valid.to(**move))

    def close(self) -> None:
        """Stop the worker processes now (dropping the loader's iterator shuts them down and joins them)."""
        self._iterator = None
