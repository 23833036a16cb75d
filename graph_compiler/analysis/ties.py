"""Weight tying: a Linear head that shares an Embedding's weight (GPT's output layer reads the
token table), named by the Linear's `tie_weight` param. The generated model assigns
`self.head.weight = self.tok_emb.weight` after building both, and the shared tensor is counted
once (the Linear's own count leaves it out: tensor_nodes.py).

Two checks: before inference, that the named node exists in the Linear's own scope (the model,
or the same block definition) and is an Embedding; after it, that the two weights have one
shape — Linear (out_features, in_features) against Embedding (num_embeddings, embedding_dim).
"""

from __future__ import annotations

from collections.abc import Iterator

from .context import AnalysisContext
from .result import Scope, ScopeResult

TIE_PARAM = "tie_weight"


def tied_to(params: dict) -> str:
    """The Embedding a Linear's weight is tied to ("" when it has its own)."""
    return params.get(TIE_PARAM) or ""


def _scopes(ctx: AnalysisContext) -> Iterator[Scope]:
    if ctx.top is not None:
        yield ctx.top
    yield from ctx.blocks.values()


def check_tie_targets(ctx: AnalysisContext) -> None:
    """Pass (before inference): the tied node exists beside the Linear and is an Embedding."""
    for scope in _scopes(ctx):
        for node_id, spec in scope.specs.items():
            target = tied_to(scope.params[node_id]) if spec.param(TIE_PARAM) else ""
            if not target:
                continue
            node = scope.nodes[node_id]
            where = f"block {scope.block}" if scope.block else "the model"
            other = scope.specs.get(target)
            if other is None:
                ctx.error(
                    "tie_missing",
                    f"{node.display}: tie_weight names {target!r}, but {where} has no node "
                    "with that id — name an Embedding in the same graph",
                    node_id,
                    TIE_PARAM,
                    scope.block,
                )
            elif other.type != "Embedding":
                ctx.error(
                    "tie_not_embedding",
                    f"{node.display}: tie_weight names {scope.nodes[target].display}, a "
                    f"{other.type}; only an Embedding's weight can be shared with a Linear head",
                    node_id,
                    TIE_PARAM,
                    scope.block,
                )


def check_tie_shapes(ctx: AnalysisContext) -> None:
    """Pass (after inference): Linear (out_features, in_features) must equal the Embedding's
    (num_embeddings, embedding_dim)."""
    results: list[ScopeResult] = []
    if ctx.result is not None:
        results.append(ctx.result)
    for instances in ctx.instances.values():
        results.extend(instances[:1])  # sizes are the same in every instance of a block
    for result in results:
        scope = result.scope
        for node_id, r in result.nodes.items():
            target = tied_to(r.params) if r.spec.param(TIE_PARAM) else ""
            emb = result.nodes.get(target) if target else None
            if emb is None or emb.spec.type != "Embedding" or "in_features" not in r.params:
                continue
            head = (r.params["out_features"], r.params["in_features"])
            table = (emb.params["num_embeddings"], emb.params["embedding_dim"])
            if head != table:
                ctx.error(
                    "tie_shape",
                    f"{r.node.display}: its weight {_shape(head)} (out_features, in_features) "
                    f"cannot share {emb.node.display}'s weight {_shape(table)} "
                    "(num_embeddings, embedding_dim) — they must be equal",
                    node_id,
                    TIE_PARAM,
                    scope.block,
                )


def _shape(dims: tuple[int, int]) -> str:
    return f"({dims[0]}, {dims[1]})"
