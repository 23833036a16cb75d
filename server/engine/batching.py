"""Batches for one epoch: indices from one seeded generator, gathered on the device when the data
fits there (the fast path), else streamed through a DataLoader with workers and pinned memory."""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset


class EpochOrder:
    """Sample order per epoch. The generator state at each epoch start is kept so that a run
    resumed mid-epoch regenerates exactly the same order and skips what it already did."""

    def __init__(self, n: int, shuffle: bool, seed: int):
        self.n, self.shuffle = n, shuffle
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch_state = self.generator.get_state()

    def next_epoch(self) -> torch.Tensor:
        self.epoch_state = self.generator.get_state()
        if self.shuffle:
            return torch.randperm(self.n, generator=self.generator)
        return torch.arange(self.n)

    def state(self) -> dict:
        return {"generator": self.generator.get_state(), "epoch_state": self.epoch_state}

    def restore(self, state: dict, *, mid_epoch: bool) -> None:
        # mid-epoch: rewind to the start of the interrupted epoch; else continue from here
        self.generator.set_state(state["epoch_state"] if mid_epoch else state["generator"])


def batch_slices(n: int, batch_size: int) -> list[tuple[int, int]]:
    return [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def shard(indices: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's part of a global batch (data parallel)."""
    return indices if world == 1 else indices.tensor_split(world)[rank]


class _Batches(Dataset):
    """A dataset indexed by whole batches: one gather per batch instead of per-sample
    __getitem__ + collate."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batches: list[torch.Tensor]):
        self.x, self.y, self.batches = x, y, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.batches[i]
        return self.x[idx], self.y[idx]


class Feeder:
    """Yields (x, y) batches on the training device for a given epoch order."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        device: torch.device,
        batch_size: int,
        *,
        resident: bool,
        rank: int = 0,
        world: int = 1,
        workers: int | None = None,
    ):
        self.device, self.batch_size = device, batch_size
        self.rank, self.world = rank, world
        self.resident = resident
        if resident:
            self.x, self.y = x.to(device), y.to(device)
        else:
            self.x, self.y = x, y
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
            self.workers = min(4, max(0, cpus - 1)) if workers is None else workers
        self.n = len(x)

    @property
    def mode(self) -> str:
        return "resident" if self.resident else f"dataloader({self.workers} workers)"

    def epoch_indices(self, order: torch.Tensor, skip: int = 0) -> Iterator[torch.Tensor]:
        """Resident data only: each batch's indices on the device (the step gathers them)."""
        order_dev = order.to(self.device, non_blocking=True)
        for start, end in batch_slices(self.n, self.batch_size)[skip:]:
            yield shard(order_dev[start:end], self.rank, self.world)

    def epoch(
        self, order: torch.Tensor, skip: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        slices = batch_slices(self.n, self.batch_size)[skip:]
        if self.resident:
            order_dev = order.to(self.device, non_blocking=True)
            for start, end in slices:
                idx = shard(order_dev[start:end], self.rank, self.world)
                yield self.x.index_select(0, idx), self.y.index_select(0, idx)
            return
        batches = [shard(order[s:e], self.rank, self.world) for s, e in slices]
        loader = DataLoader(
            _Batches(self.x, self.y, batches),
            batch_size=None,
            shuffle=False,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            # its own generator: worker seeding must not draw from the global RNG that dropout
            # uses, or the two data paths (and a resumed run) would see different masks
            generator=torch.Generator().manual_seed(0),
        )
        for xb, yb in loader:
            yield xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)

    def steps(self) -> int:
        return len(batch_slices(self.n, self.batch_size))
