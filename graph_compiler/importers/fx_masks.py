"""Attention masks read in forward: a square subsequent (causal) mask becomes the causal option
of the layer that takes it (MultiheadAttention, the Transformer layers, nn.TransformerEncoder).

A mask is recognised by its value on the example input (fx_tracing.py records the value of every
small square 2-D tensor) and by where it comes from: built from sizes only
(`nn.Transformer.generate_square_subsequent_mask(x.size(1), device=x.device)`, torch.full +
triu, ...) or held by the model (a buffer), never from the input's values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import fx

from .fx_values import Attr
from .lookup import Unsupported

if TYPE_CHECKING:
    from .fx_converter import Converter

VALUE = "square_value"  # node.meta key: the example value of a small square 2-D tensor
SMALL = 1 << 20


@dataclass(frozen=True)
class SizeOnly:
    """A tensor computed from sizes only (torch.full((T, T), ...), its triu): a mask candidate."""

    node: fx.Node


def record(node: fx.Node, result: Any) -> None:
    """Keep the example value of a small square 2-D tensor (fx_tracing.py, per node)."""
    if isinstance(result, torch.Tensor) and result.dim() == 2:
        rows, cols = result.shape
        if rows == cols and result.numel() <= SMALL:
            node.meta[VALUE] = result.detach().clone()


def _causal(value: torch.Tensor) -> bool:
    future = torch.ones(value.shape, dtype=torch.bool, device=value.device).triu(1)
    if value.dtype == torch.bool:
        return torch.equal(value, future)
    blocked = torch.isinf(value) & (value < 0)
    return torch.equal(blocked, future) and bool((value[~future] == 0).all())


def causal(converter: Converter, mask: Any, length: int | None, what: str) -> bool:
    """True for a causal mask of `length` (None: no mask); Unsupported for any other mask."""
    if mask is None:
        return False
    if not isinstance(mask, fx.Node) or not isinstance(converter.env.get(mask), SizeOnly | Attr):
        raise Unsupported(f"the {what} is computed from the input (only a causal mask maps)")
    value = mask.meta.get(VALUE)
    if value is None or value.shape[0] != length or not _causal(value):
        raise Unsupported(f"the {what} is not a square subsequent (causal) mask")
    return True
