"""`import-module --input-shape`: the example inputs forward is traced with, one per spec.

A spec is the shape, batch first, and optionally a dtype: `1,3,32,32` (float32), `2,20:int64`
(token ids). Several inputs: repeat the flag or separate them with `;` (`2,20:int64;2,20:bool`).
Token inputs are traced with ids every Embedding of the model accepts (below the smallest
num_embeddings), so that the example run cannot fail on an out-of-range id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .graph import ImportFailed

DTYPES = {"float32": torch.float32, "int64": torch.int64, "int32": torch.int32, "bool": torch.bool}


@dataclass(frozen=True)
class ExampleInput:
    shape: tuple[int, ...]  # batch first
    dtype: str = "float32"

    def spec(self) -> str:
        dims = ",".join(map(str, self.shape))
        return dims if self.dtype == "float32" else f"{dims}:{self.dtype}"


def parse_inputs(specs: Iterable[str]) -> list[ExampleInput]:
    """Every --input-shape flag, each possibly `;`-separated, as example inputs."""
    parts = [p.strip() for text in specs for p in text.split(";") if p.strip()]
    if not parts:
        raise ImportFailed("--input-shape: give the example input's shape, e.g. 1,3,32,32")
    return [_parse(part) for part in parts]


def _parse(text: str) -> ExampleInput:
    shape_text, sep, dtype = text.partition(":")
    dtype = dtype.strip() if sep else "float32"
    if dtype not in DTYPES:
        raise ImportFailed(
            f"--input-shape {text!r}: unknown dtype {dtype!r} (one of {', '.join(DTYPES)})"
        )
    try:
        dims = tuple(int(p) for p in shape_text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise ImportFailed(
            f"--input-shape {text!r}: expected integers like 1,3,32,32 (or 2,20:int64)"
        ) from None
    return checked(ExampleInput(dims, dtype))


def checked(given: ExampleInput) -> ExampleInput:
    if len(given.shape) < 2 or any(d < 1 for d in given.shape):
        raise ImportFailed(
            f"--input-shape {given.spec()}: give the batch and every sample dimension, each "
            ">= 1, e.g. 1,3,32,32"
        )
    return given


def as_inputs(given: Sequence[int] | Sequence[ExampleInput]) -> list[ExampleInput]:
    """import_module's argument: one shape (float32) or a list of example inputs."""
    items = list(given)
    if not items:
        raise ImportFailed("--input-shape: give the example input's shape, e.g. 1,3,32,32")
    if all(isinstance(i, ExampleInput) for i in items):
        return [checked(i) for i in items]
    return [checked(ExampleInput(tuple(int(d) for d in items)))]


def example(model: nn.Module, given: ExampleInput) -> torch.Tensor:
    """A random example of the input; token ids every Embedding accepts."""
    if given.dtype == "float32":
        return torch.randn(*given.shape)
    if given.dtype == "bool":
        return torch.randint(0, 2, given.shape).bool()
    vocab = [m.num_embeddings for m in model.modules() if isinstance(m, nn.Embedding)]
    high = min(vocab, default=1)
    return torch.randint(0, high, given.shape, dtype=DTYPES[given.dtype])
