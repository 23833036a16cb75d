"""Attention: MultiheadAttention, the Transformer encoder / decoder layers (batch first, category
"layers") and ScaledDotProductAttention (an inline F.scaled_dot_product_attention, "merges").

A causal layer masks the future the way careful PyTorch does: the square subsequent mask for the
input's length, built on its device, with the is_causal hint where the torch API takes it. The
mask is a statement of its own in forward (`causal_mask = ...`), before the call.
"""

from __future__ import annotations

from torch import nn

from .layer_entry import BIAS, last_dim, layer, size
from .registry import register
from .spec import NodeSpec, Param, Port

CAUSAL_MASK = "causal_mask"


def causal_mask(seq: str) -> str:
    """The statement that builds the (T, T) causal mask for `seq` (B, T, E) on its device."""
    head = f"{CAUSAL_MASK} = nn.Transformer.generate_square_subsequent_mask("
    args = f"{seq}.size(1), device={seq}.device"
    if len(head) + len(args) + 1 <= 100 - 8:  # in forward, eight spaces in
        return f"{head}{args})\n"
    return f"{head}\n    {args}\n)\n"  # as ruff format wraps it


def _causal(what: str) -> Param:
    return Param(
        "causal",
        "bool",
        False,
        f"Causal {what}: position t attends only to positions <= t (GPT-style).",
        torch_arg=False,
    )


def _padding_port(name: str) -> Port:
    return Port(
        name,
        ranks=(2,),
        dtype="bool",
        optional=True,
        description="(B, T) bool, True at padding: those keys are ignored (from PaddingMask).",
    )


def _attention_call(p, ins, m) -> str:
    q = ins["query"][0]
    k = ins["key"][0] if ins.get("key") else q
    v = ins["value"][0] if ins.get("value") else k
    args = [q, k, v]
    if ins.get("key_padding_mask"):
        args.append(f"key_padding_mask={ins['key_padding_mask'][0]}")
    args.append("need_weights=False")
    if not p.get("causal"):
        return f"{m}({', '.join(args)})[0]"
    args += [f"attn_mask={CAUSAL_MASK}", "is_causal=True"]
    return causal_mask(q) + f"{m}({', '.join(args)})[0]"


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
        _causal("self-attention (key and value as long as the query)"),
    ],
    inputs=(
        Port("query", ranks=(3,)),
        Port("key", ranks=(3,), optional=True),
        Port("value", ranks=(3,), optional=True),
        _padding_port("key_padding_mask"),
    ),
    fixed_args={"batch_first": True},
    call=_attention_call,
    keywords=("attention", "transformer", "self-attention", "causal"),
)


def _encoder_call(p, ins, m) -> str:
    x = ins["in"][0]
    args = [x]
    if ins.get("src_key_padding_mask"):
        args.append(f"src_key_padding_mask={ins['src_key_padding_mask'][0]}")
    if not p.get("causal"):
        return f"{m}({', '.join(args)})"
    args += [f"src_mask={CAUSAL_MASK}", "is_causal=True"]
    return causal_mask(x) + f"{m}({', '.join(args)})"


def _decoder_call(p, ins, m) -> str:
    tgt, memory = ins["tgt"][0], ins["memory"][0]
    if not p.get("causal") and not p.get("memory_causal"):
        return f"{m}({tgt}, {memory})"
    args = [tgt, memory]
    if p.get("causal"):
        args += [f"tgt_mask={CAUSAL_MASK}", "tgt_is_causal=True"]
    if p.get("memory_causal"):
        args += [f"memory_mask={CAUSAL_MASK}", "memory_is_causal=True"]
    return causal_mask(tgt) + f"{m}({', '.join(args)})"


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
    [*_TRANSFORMER, _causal("self-attention")],
    inputs=(
        Port("in", ranks=(3,), layout="3-D (B, T, d_model)"),
        _padding_port("src_key_padding_mask"),
    ),
    fixed_args={"batch_first": True},
    call=_encoder_call,
    keywords=("transformer", "attention", "encoder", "causal", "gpt"),
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
        _causal("self-attention on tgt"),
        Param(
            "memory_causal",
            "bool",
            False,
            "Causal mask on the cross-attention to memory too (memory as long as tgt).",
            torch_arg=False,
        ),
    ],
    inputs=(Port("tgt", ranks=(3,)), Port("memory", ranks=(3,))),
    fixed_args={"batch_first": True},
    call=_decoder_call,
    keywords=("transformer", "attention", "decoder", "causal"),
)


def _sdpa_call(p, ins, m) -> str:
    args = [ins["query"][0], ins["key"][0], ins["value"][0]]
    if p["dropout_p"]:
        # torch applies dropout_p even in eval mode: only while training, as careful code does
        owner = m.rpartition(".")[0] or m
        args.append(f"dropout_p={p['dropout_p']!r} if {owner}.training else 0.0")
    if p["is_causal"]:
        args.append("is_causal=True")
    if p["scale"] is not None:
        args.append(f"scale={p['scale']!r}")
    return f"F.scaled_dot_product_attention({', '.join(args)})"


register(
    NodeSpec(
        type="ScaledDotProductAttention",
        category="merges",
        doc=(
            "softmax(q·kᵀ·scale)·v over (B, T, E) or (B, heads, T, E): attention built from "
            "parts (F.scaled_dot_product_attention)."
        ),
        role="op",
        params=(
            Param("is_causal", "bool", False, "Causal: query t attends only to keys <= t."),
            Param(
                "dropout_p",
                "float",
                0.0,
                "Dropout on the attention weights (while training).",
                min=0,
                max=1,
            ),
            Param(
                "scale",
                "float",
                None,
                "Scale of q·kᵀ (auto: 1/sqrt(E)).",
                nullable=True,
                min=0,
                exclusive_min=True,
            ),
        ),
        inputs=(
            Port("query", ranks=(3, 4), description="(B, T, E) or (B, heads, T, E)"),
            Port("key", ranks=(3, 4), description="(B, S, E) or (B, heads, S, E)"),
            Port("value", ranks=(3, 4), description="(B, S, Ev) or (B, heads, S, Ev)"),
        ),
        call=_sdpa_call,
        keywords=("attention", "sdpa", "flash", "causal", "softmax"),
    )
)
