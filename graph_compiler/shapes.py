"""Symbolic tensor shapes: fixed sizes plus multiples of the batch size B."""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class Batch:
    """A dimension equal to `k × B` (k = 1 for the ordinary batch dimension)."""

    k: int = 1

    def __str__(self) -> str:
        return "B" if self.k == 1 else f"{self.k}B"


Dim = int | Batch
Shape = tuple[Dim, ...]
B = Batch(1)


@dataclass(frozen=True)
class TensorInfo:
    shape: Shape
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    def concrete(self, batch: int) -> tuple[int, ...]:
        return tuple(d.k * batch if isinstance(d, Batch) else d for d in self.shape)

    @property
    def batch_leading(self) -> bool:
        """True when dim 0 is B and no other dim depends on the batch."""
        return (
            bool(self.shape)
            and self.shape[0] == B
            and not any(isinstance(d, Batch) for d in self.shape[1:])
        )

    @property
    def is_float(self) -> bool:
        return self.dtype.startswith(("float", "bfloat", "complex"))

    def __str__(self) -> str:
        return format_shape(self.shape)

    def to_json(self) -> dict:
        return _info_json(self.shape, self.dtype)


@functools.lru_cache(maxsize=8192)
def _info_json(shape: Shape, dtype: str) -> dict:
    # the editor validates on every edit and the same few shapes recur on hundreds of ports: one
    # dict per (shape, dtype), shared — callers serialize it, never change it
    return {"shape": shape_json(shape), "dtype": dtype, "text": format_shape(shape)}


def format_shape(shape: Shape) -> str:
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def shape_json(shape: Shape) -> list:
    return [str(d) if isinstance(d, Batch) else d for d in shape]


def symbolic(at2: tuple[int, ...], at3: tuple[int, ...]) -> Shape | None:
    """Recover a symbolic shape from the same output computed at batch sizes 2 and 3."""
    if len(at2) != len(at3):
        return None
    dims: list[Dim] = []
    for a, b in zip(at2, at3, strict=True):
        if a == b:
            dims.append(a)
        elif b - a > 0 and a == 2 * (b - a):
            dims.append(Batch(b - a))
        else:
            return None
    return tuple(dims)
