"""Train / validation split: a seeded permutation, sizes from graph_compiler's split_counts."""

from __future__ import annotations

import torch

from graph_compiler.training import split_counts

from .loaded import Loaded

Pair = tuple[torch.Tensor, torch.Tensor]


def split(loaded: Loaded, val_split: float, seed: int) -> tuple[Pair, Pair]:
    """(x_train, y_train), (x_val, y_val). An explicit validation set (loaded.val) wins: all of
    `loaded` trains and val_split is ignored. Otherwise the samples are permuted with
    torch.Generator().manual_seed(seed) and the last split_counts(...)[1] of them validate."""
    if loaded.val is not None:
        return (loaded.x, loaded.y), loaded.val
    train, val = split_order(loaded.x.shape[0], val_split, seed)
    return (loaded.x[train], loaded.y[train]), (loaded.x[val], loaded.y[val])


def split_order(n: int, val_split: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The indices of the training and the validation samples among n (what split() uses; a
    reader that learns from its data, such as a text column's tokenizer, learns from the
    training ones only)."""
    n_train, _ = split_counts(n, val_split)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[:n_train], order[n_train:]
