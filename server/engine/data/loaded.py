"""`Loaded`: a data source read into memory, ready to split, normalize and batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Loaded:
    x: torch.Tensor  # (N, ...) float32 (int64 for token ids)
    y: torch.Tensor  # classification: (N,) int64 class ids; regression: (N, k) float32
    task: str  # "classification" | "regression"
    num_classes: int | None
    class_names: list[str] | None
    feature_names: list[str] | None  # CSV columns after encoding ("color=red"), else None
    description: str
    # an explicit validation set (val_path, the CIFAR test batch, the MNIST t10k files)
    val: tuple[torch.Tensor, torch.Tensor] | None = None

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
