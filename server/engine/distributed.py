"""Data-parallel training with DistributedDataParallel, launched by torchrun.

Why not nn.DataParallel: it runs one process that scatters each batch to the GPUs and gathers
the outputs back on GPU 0 every step — the Python interpreter and GPU 0 become the bottleneck,
and it cannot span machines. DDP runs one process per GPU, each with its own shard of every
batch, and all-reduces gradients during backward; it is what PyTorch recommends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int | None = None

    @classmethod
    def single(cls) -> DistContext:
        return cls()

    @classmethod
    def from_env(cls) -> DistContext:
        """Join the process group torchrun set up (WORLD_SIZE > 1), else a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if not torch_dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(local_rank)
            torch_dist.init_process_group(backend)
        return cls(rank, world, local_rank)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def mean(self, values: list[float], device: torch.device) -> list[float]:
        """Average per-step losses over the ranks (every rank calls this at the same steps)."""
        t = torch.tensor(values, dtype=torch.float64, device=device)
        torch_dist.all_reduce(t)
        return (t / self.world).tolist()

    def close(self) -> None:
        if self.world > 1 and torch_dist.is_initialized():
            torch_dist.barrier()  # every rank done (rank 0 writes files last) before teardown
            torch_dist.destroy_process_group()
