"""Attention: MultiheadAttention and the Transformer encoder / decoder layers, batch first
(category "layers").
"""

from __future__ import annotations

from torch import nn

from .layer_entry import BIAS, last_dim, layer, size
from .spec import Param, Port


def _attention_call(p, ins, m) -> str:
    q = ins["query"][0]
    k = ins["key"][0] if ins.get("key") else q
    v = ins["value"][0] if ins.get("value") else k
    return f"{m}({q}, {k}, {v}, need_weights=False)[0]"


layer(
    "MultiheadAttention",
    nn.MultiheadAttention,
    "Multi-head attention over (B, T, E); key and value default to the query (self-attention).",
    [
        Param(
            "embed_dim",
            "int",
            min=1,
            infer=lambda c: (c.shape("query") or (None,))[-1],
            positional=True,
            description="Model width E (inferred from the query).",
        ),
        size("num_heads", "Attention heads (must divide embed_dim).", default=4),
        Param("dropout", "float", 0.0, "Dropout on attention weights.", min=0, max=1),
        BIAS,
    ],
    inputs=(
        Port("query", ranks=(3,)),
        Port("key", ranks=(3,), optional=True),
        Port("value", ranks=(3,), optional=True),
    ),
    fixed_args={"batch_first": True},
    call=_attention_call,
    keywords=("attention", "transformer", "self-attention"),
)

_TRANSFORMER = [
    Param(
        "d_model",
        "int",
        min=1,
        infer=last_dim,
        positional=True,
        description="Model width (inferred from the input).",
    ),
    size("nhead", "Attention heads (must divide d_model).", default=4),
    Param("dim_feedforward", "int", 2048, "Feed-forward hidden size.", min=1),
    Param("dropout", "float", 0.1, "Dropout.", min=0, max=1),
    Param("activation", "choice", "relu", "Feed-forward activation.", choices=("relu", "gelu")),
    Param("layer_norm_eps", "float", 1e-5, "LayerNorm epsilon.", min=0, exclusive_min=True),
    Param("norm_first", "bool", False, "Pre-norm (LayerNorm before attention / feed-forward)."),
    BIAS,
]
layer(
    "TransformerEncoderLayer",
    nn.TransformerEncoderLayer,
    "Transformer encoder layer (self-attention + feed-forward) over (B, T, d_model).",
    _TRANSFORMER,
    inputs=(Port("in", ranks=(3,), layout="3-D (B, T, d_model)"),),
    fixed_args={"batch_first": True},
    keywords=("transformer", "attention", "encoder"),
)
layer(
    "TransformerDecoderLayer",
    nn.TransformerDecoderLayer,
    "Transformer decoder layer: self-attention on tgt, cross-attention to memory, feed-forward.",
    [
        Param(
            "d_model",
            "int",
            min=1,
            infer=lambda c: (c.shape("tgt") or (None,))[-1],
            positional=True,
            description="Model width (inferred from tgt).",
        ),
        *_TRANSFORMER[1:],
    ],
    inputs=(Port("tgt", ranks=(3,)), Port("memory", ranks=(3,))),
    fixed_args={"batch_first": True},
    call=lambda p, ins, m: f"{m}({ins['tgt'][0]}, {ins['memory'][0]})",
    keywords=("transformer", "attention", "decoder"),
)
