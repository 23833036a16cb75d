"""The learned-tensor and attention patterns of forward → their catalog nodes:

* `self.cls_token.expand(x.size(0), -1, -1)` (B read off a tensor) → Expand (like = that tensor);
* `torch.arange(x.size(1), device=x.device)` (+ `.unsqueeze(0)`) → PositionIds;
* `F.scaled_dot_product_attention(q, k, v, is_causal=...)` → ScaledDotProductAttention.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import fx

from .fx_values import Dim, Ref, arg
from .lookup import Unsupported

if TYPE_CHECKING:
    from .fx_converter import Converter

DEVICE = "<device>"  # what `x.device` stands for: followed only as arange's device


def _dim_of(value: Any, dim: int) -> Ref | None:
    """The tensor whose size `dim` `value` is (x.size(dim), x.shape[dim]), else None."""
    if isinstance(value, Dim) and value.dim == dim and isinstance(value.source, Ref):
        return value.source
    return None


def expand(converter: Converter, node: fx.Node) -> Ref:
    x = converter.tensor(node.args[0], node)
    sizes = list(node.args[1:])
    if len(sizes) == 1 and isinstance(sizes[0], list | tuple):
        sizes = list(sizes[0])
    sizes = [converter.value(s) for s in sizes]
    like = _dim_of(sizes[0], 0) if sizes else None
    if like is None or any(s != -1 for s in sizes[1:]) or set(node.kwargs):
        raise Unsupported("an expand other than to the batch of a tensor, (x.size(0), -1, ...)")
    shape = converter.shape(node.args[0])
    if shape is not None and (len(shape) != len(sizes) or shape[0] != 1):
        raise Unsupported(f"an expand of a tensor of shape {list(shape)} (dim 0 must be 1)")
    inputs = [("in", x.node, x.port), ("like", like.node, like.port)]
    return converter.add(node, "Expand", {}, inputs)


def arange(converter: Converter, node: fx.Node) -> Ref:
    if len(node.args) != 1 or set(node.kwargs) - {"device", "dtype"}:
        raise Unsupported("an arange other than torch.arange(x.size(d)) (start, step)")
    length = converter.value(node.args[0])
    dtype = node.kwargs.get("dtype")
    dim = length.dim if isinstance(length, Dim) else None
    source = _dim_of(length, dim) if isinstance(dim, int) and dim >= 1 else None
    if source is None or dtype not in (None, torch.long):
        raise Unsupported("an arange other than torch.arange(x.size(d)) with d >= 1, int64")
    params = {"batch_dim": False} if dim == 1 else {"dim": dim, "batch_dim": False}
    return converter.add(node, "PositionIds", params, [("in", source.node, source.port)])


def fold_positions(converter: Converter, node: fx.Node, x: Ref) -> bool:
    """`positions.unsqueeze(0)` read once: the PositionIds node gains its batch dim."""
    source = node.args[0]
    made = next((n for n in converter.g.nodes if n.id == x.node), None)
    if made is None or made.type != "PositionIds" or len(source.users) != 1:
        return False
    if made.params.get("batch_dim", True):
        return False
    del made.params["batch_dim"]
    return True


def sdpa(converter: Converter, node: fx.Node) -> Ref:
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")
    values = {name: arg(node, i, name) for i, name in enumerate(names)}
    extra = set(node.kwargs) - set(names)
    if values["attn_mask"] is not None or extra:
        raise Unsupported(f"an attention mask or {sorted(extra)} (is_causal is supported)")
    params: dict[str, Any] = {}
    for name, default in (("dropout_p", 0.0), ("is_causal", False), ("scale", None)):
        value = values[name]
        if isinstance(value, fx.Node):
            raise Unsupported(f"{name} computed at run time")
        if value is not None and value != default:
            params[name] = float(value) if name != "is_causal" else bool(value)
    refs = [converter.tensor(values[n], node) for n in names[:3]]
    inputs = [(n, r.node, r.port) for n, r in zip(names[:3], refs, strict=True)]
    return converter.add(node, "ScaledDotProductAttention", params, inputs)
