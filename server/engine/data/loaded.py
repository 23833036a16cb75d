"""`Loaded`: a data source read into memory, ready to split, normalize and batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Loaded:
    x: torch.Tensor  # (N, ...) float32 (int64 for token ids)
    y: torch.Tensor  # classification: (N,) int64 class ids; regression: (N, k) float32;
    # language_model: (N, T) int64 next-token ids
    task: str  # "classification" | "regression" | "language_model"
    num_classes: int | None
    class_names: list[str] | None
    feature_names: list[str] | None  # CSV columns after encoding ("color=red"), else None
    description: str
    # an explicit validation set (val_path, the CIFAR test batch, the MNIST t10k files)
    val: tuple[torch.Tensor, torch.Tensor] | None = None
    # text sources: the Tokenizer (server/engine/data/tokenizer.py) that made the token ids;
    # saved with the run as tokenizer.json and used by generation and sample.py
    tokenizer: Any = None
    vocab_size: int | None = None  # token-id inputs: ids lie in 0..vocab_size-1

    @property
    def samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def x_shape(self) -> tuple[int, ...]:
        """Per-sample input shape (batch excluded)."""
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def y_dim(self) -> int:
        return 1 if self.y.dim() < 2 else int(self.y.shape[1])
