"""Training-settings arithmetic shared by the compiler (scheduler sizes) and the engine."""

from __future__ import annotations

import math


def split_counts(samples: int, val_split: float) -> tuple[int, int]:
    """(train, validation) sample counts for a fractional split; both kept non-empty."""
    n_val = round(samples * val_split)
    if val_split > 0:
        n_val = min(max(n_val, 1), samples - 1)
    return samples - n_val, n_val


def steps_per_epoch(train_samples: int, batch_size: int, grad_accumulation: int = 1) -> int:
    """Optimizer steps per epoch: the last partial batch is kept, as DataLoader does."""
    batches = math.ceil(train_samples / batch_size)
    return math.ceil(batches / grad_accumulation)
