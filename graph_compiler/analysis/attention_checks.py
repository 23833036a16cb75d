"""Attention inputs that torch would take but that are mistakes, or that it would reject in
words of its own: a causal mask across sequences of different lengths (cross-attention), and
ScaledDotProductAttention's query / key / value that do not fit together (named by port)."""

from __future__ import annotations

from ..document import Node
from ..shapes import TensorInfo
from .context import AnalysisContext
from .result import Scope


def check_attention(
    ctx: AnalysisContext,
    scope: Scope,
    node: Node,
    type_: str,
    params: dict,
    inputs: dict[str, list[TensorInfo]],
) -> bool:
    """False (with the errors recorded) when the node's attention inputs cannot work."""

    def shape(port: str) -> tuple | None:
        got = inputs.get(port) or []
        return tuple(got[0].concrete(1)) if got else None

    def cross(field: str, q_port: str, kv_port: str, what: str) -> bool:
        q, kv = shape(q_port), shape(kv_port)
        if not params.get(field) or q is None or kv is None or q[-2] == kv[-2]:
            return True
        ctx.error(
            "causal_cross_attention",
            f"{node.display}: {field} masks the future of one sequence, but {what} attends "
            f"from {q_port} of length {q[-2]} to {kv_port} of length {kv[-2]} — a causal "
            "mask needs both as long (self-attention); turn it off for cross-attention",
            node.id,
            field,
            scope.block,
        )
        return False

    if type_ == "MultiheadAttention":
        return cross("causal", "query", "key", "the attention")
    if type_ == "TransformerDecoderLayer":
        return cross("memory_causal", "tgt", "memory", "the memory attention")
    if type_ != "ScaledDotProductAttention":
        return True
    q, k, v = shape("query"), shape("key"), shape("value")
    if q is None or k is None or v is None:
        return True
    qi, ki, vi = (inputs[port][0] for port in ("query", "key", "value"))
    problems = []
    if len(k) != len(q) or k[:-2] != q[:-2]:
        problems.append(("key", f"key {ki} and query {qi} differ in their leading dims"))
    elif k[-1] != q[-1]:
        problems.append(("key", f"key width {k[-1]} is not the query's {q[-1]} (q·kᵀ)"))
    if len(v) != len(k) or v[:-1] != k[:-1]:
        problems.append(("value", f"value {vi} must match key {ki} in all but the last dim"))
    for port, problem in problems:
        ctx.error(
            "attention_shapes",
            f"{node.display}: ScaledDotProductAttention: {problem} — query (B, T, E), key "
            "(B, S, E), value (B, S, Ev), optionally with a heads dim after B",
            node.id,
            port,
            scope.block,
        )
    if not problems and not cross("is_causal", "query", "key", "the attention"):
        return False
    return not problems
