"""An Embedding fed the Dataset's token ids, checked against what the data says about them: the
vocabulary must fit in num_embeddings (torch would fail mid-run with an index error, or a CUDA
device assert), and a padded source's pad id should be the padding_idx (a warning) — and a
PaddingMask's pad_id (a warning too)."""

from __future__ import annotations

from ..document import Node
from .context import AnalysisContext
from .result import Scope


def fed_by_data_ids(ctx: AnalysisContext, scope: Scope, node: Node) -> bool:
    """Whether the node's input is the Dataset's x itself (top level, a direct edge)."""
    if scope.block is not None or ctx.data_node is None:
        return False
    edges = scope.incoming[node.id].get("in", [])
    return any(e.source == ctx.data_node and e.source_port == "x" for e in edges)


def check_token_range(
    ctx: AnalysisContext, scope: Scope, node: Node, type_: str, params: dict
) -> bool:
    """False (with the error recorded) when the data's ids do not all have a row."""
    data = ctx.data
    if type_ not in ("Embedding", "PaddingMask") or data is None:
        return True
    if not fed_by_data_ids(ctx, scope, node):
        return True
    if type_ == "PaddingMask":
        if data.pad_id is not None and params.get("pad_id") != data.pad_id:
            ctx.error(
                "pad_id_mismatch",
                f"{node.display}: the data pads its token rows with id {data.pad_id}, but "
                f"pad_id is {params.get('pad_id')} — the mask would miss the padding",
                node.id,
                "pad_id",
                scope.block,
                severity="warning",
            )
        return True
    rows = params.get("num_embeddings")
    vocab = data.vocab_size
    if vocab is not None and isinstance(rows, int) and vocab > rows:
        ctx.error(
            "vocab_out_of_range",
            f"{node.display}: the data's token ids go up to {vocab - 1} (vocab_size {vocab}) "
            f"but num_embeddings is {rows} — set num_embeddings to at least {vocab}",
            node.id,
            "num_embeddings",
            scope.block,
        )
        return False
    pad = data.pad_id
    if pad is not None and params.get("padding_idx") != pad:
        ctx.error(
            "padding_idx_mismatch",
            f"{node.display}: the data pads its token rows with id {pad}, but padding_idx is "
            f"{params.get('padding_idx')} — set padding_idx to {pad} so padding stays a zero "
            "vector and learns nothing",
            node.id,
            "padding_idx",
            scope.block,
            severity="warning",
        )
    return True
