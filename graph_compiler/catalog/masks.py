"""Padded token batches: PaddingMask (where the pad id is) and MaskedPool (pooling over the
real positions only), category "merges".

A padded batch (a tokenized CSV text column) holds each row's tokens first, then the pad id up
to the longest row. Attention takes PaddingMask's mask as key_padding_mask; a recurrent or
attention stack's sequence output is pooled with MaskedPool so that padding counts for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .registry import register
from .spec import NodeSpec, Param, Port

LAST_STEP = "last_step"  # MaskedPool "last": each row's last real position

register(
    NodeSpec(
        type="PaddingMask",
        category="merges",
        doc="Where a padded batch of token ids holds the pad id: (B, T) int64 → (B, T) bool, "
        "True at padding — the key_padding_mask of attention, the mask of MaskedPool.",
        role="op",
        params=(
            Param(
                "pad_id",
                "int",
                0,
                "The pad token's id (a tokenized CSV text column pads with 0).",
                min=0,
            ),
        ),
        inputs=(Port("in", ranks=(2,), dtype="int", description="Token ids (B, T)."),),
        call=lambda p, ins, m: f"{ins['in'][0]}.eq({p['pad_id']})",
        keywords=("padding", "mask", "key_padding_mask", "pad", "attention"),
    )
)


def _pool_call(p: Mapping[str, Any], ins: Mapping[str, list[str]], m: str) -> str:
    x, mask = ins["in"][0], ins["mask"][0]
    if p["mode"] == "max":
        return f'{x}.masked_fill({mask}.unsqueeze(-1), float("-inf")).amax(dim=1)'
    if p["mode"] == "last":  # rows are padded at the end: the last real step is length - 1
        # a statement of its own before the call, as the causal mask is (the line stays short)
        step = f"{LAST_STEP} = (~{mask}).sum(dim=1).sub(1).clamp(min=0)\n"
        return step + f"{x}[torch.arange({x}.size(0), device={x}.device), {LAST_STEP}]"
    keep = f"(~{mask}).unsqueeze(-1).to({x}.dtype)"
    return f"({x} * {keep}).sum(dim=1) / {keep}.sum(dim=1).clamp(min=1)"


register(
    NodeSpec(
        type="MaskedPool",
        category="merges",
        doc="Pools a sequence (B, T, H) over its real positions only (mask: True at padding, "
        "from PaddingMask) → (B, H): their mean, their max, or the last real step.",
        role="op",
        params=(
            Param(
                "mode",
                "choice",
                "mean",
                "mean / max of the real positions, or the last real one (rows padded at the "
                "end, as a tokenized text column is).",
                choices=("mean", "max", "last"),
            ),
        ),
        inputs=(
            Port("in", ranks=(3,), dtype="float", description="The sequence (B, T, H)."),
            Port("mask", ranks=(2,), dtype="bool", description="(B, T) bool, True at padding."),
        ),
        call=_pool_call,
        keywords=("pool", "mask", "padding", "mean", "last", "sequence"),
    )
)
