"""Reading the step losses: they stay on the device while training and are read in batches
(one transfer per flush, so a step never waits for the host just to report), averaged over
the data-parallel ranks, and checked finite before any is reported."""

from __future__ import annotations

import math

import torch

from .distributed import DistContext
from .run_document import RunFailed


def read_losses(
    pending: list[torch.Tensor], step_fn, dist: DistContext, device: torch.device
) -> list[float]:
    """The losses of the steps since the last read, in step order."""
    drain = getattr(step_fn, "drain", None)
    values = drain() if drain is not None else []  # CUDA-graph steps record on the device
    if pending:
        values += torch.stack(pending).float().tolist()
    if values and dist.world > 1:
        values = dist.mean(values, device)
    return values


def check_finite(value: float, step: int, steps_per_epoch: int) -> None:
    """A NaN or infinite loss fails the run, naming the step it appeared at."""
    if not math.isfinite(value):
        epoch = (step - 1) // steps_per_epoch + 1
        in_epoch = (step - 1) % steps_per_epoch + 1
        raise RunFailed(
            "non_finite_loss",
            f"non-finite loss at epoch {epoch} step {in_epoch} (global step {step}): {value}",
        )
