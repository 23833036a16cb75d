"""How large a model validation accepts, counted after expanding blocks × repeats.

A Block node repeats its definition up to 1,000 times and definitions nest, so a graph of a
kilobyte can stand for a billion layers: it validates in milliseconds (the analysis infers each
distinct block instance once), but building it would not end. The analysis multiplies counts
through the block tree without expanding anything and refuses a graph above either limit, so
nothing downstream (code generation, the weights check, a run) ever builds such a model.

MAX_EXPANDED_NODES: model nodes after expansion (layers, ops, custom layers and each block
instance). Building a model costs about 0.2 ms and 5.5 KB per module (measured here on the meta
device: 10,000 repeated Linear blocks, 20,000 modules, 2.0 s and +55 MB), so 50,000 nodes stay
near 10 s and 0.3 GB, inside the analysis processes' time limit on a loaded machine. Large real
architectures are far below it: a 152-layer ResNet is about 500 nodes, a 96-layer transformer
about 1,500.

MAX_PARAMS: parameters after expansion, from the per-node counts shape inference already
computes. 2e9 float32 parameters are 8 GB of weights and about 32 GB with Adam's state while
training: beyond what this single-machine trainer is for.

MAX_BLOCK_DEPTH: blocks inside blocks. Inference, code generation and torch's own module walks
recurse once per level, so a 2,000-level chain (repeat 1, a small model) overflowed Python's
stack; real architectures nest blocks 2 to 4 deep.
"""

from __future__ import annotations

MAX_EXPANDED_NODES = 50_000
MAX_PARAMS = 2_000_000_000
MAX_BLOCK_DEPTH = 32


# counts through nested repeats stop growing here (20 levels × 1,000 would be a 61-digit number,
# 2,000 levels one too long for int → str); any count this large is far above both limits
SATURATED = 10**18


def saturated(n: int) -> int:
    return min(n, SATURATED)


def count_text(n: int) -> str:
    """A count for a message: exact with separators, or "more than 10^18" once saturated."""
    return f"{n:,}" if n < SATURATED else "more than 10^18"
