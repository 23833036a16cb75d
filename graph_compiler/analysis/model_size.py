"""The model's size once blocks are expanded × their repeats (limits in graph_compiler/limits.py):
nodes and nesting depth before inference, parameters after it."""

from __future__ import annotations

from collections.abc import Mapping

from ..limits import MAX_BLOCK_DEPTH, MAX_EXPANDED_NODES, MAX_PARAMS, count_text, saturated
from .context import AnalysisContext
from .result import MODEL_ROLES, Scope


def node_size(scope: Scope, node_id: str, sizes: Mapping[str, int]) -> int:
    """Model nodes that one node of a scope stands for once its blocks are expanded."""
    spec = scope.specs[node_id]
    if spec.role == "block":
        params = scope.params[node_id]
        return saturated(params.get("repeat", 1) * (1 + sizes.get(params.get("block"), 0)))
    return 1 if spec.role in MODEL_ROLES else 0


def block_tree(ctx: AnalysisContext) -> tuple[dict[str, int], dict[str, int]]:
    """Each block definition's size once expanded and its nesting depth, computed bottom-up
    through the block tree (a multiplication per Block node: nothing is expanded). Blocks
    that lead back to themselves count 0: their block_recursion error stands already."""
    uses = {
        name: [
            scope.params[n].get("block")
            for n, s in scope.specs.items()
            if s.role == "block" and scope.params[n].get("block") in ctx.blocks
        ]
        for name, scope in ctx.blocks.items()
    }
    sizes = {name: 0 for name in ctx.recursive}
    depths = {name: 0 for name in ctx.recursive}
    for start in ctx.blocks:
        stack = [start]  # depth-first without recursion: blocks may nest thousands deep
        while stack:
            name = stack[-1]
            if name in sizes:
                stack.pop()
                continue
            pending = [u for u in uses[name] if u not in sizes and u not in stack]
            if pending:
                stack.extend(pending)
                continue
            scope = ctx.blocks[name]
            sizes[name] = saturated(sum(node_size(scope, n, sizes) for n in scope.specs))
            depths[name] = 1 + max((depths[u] for u in uses[name]), default=0)
            stack.pop()
    return sizes, depths


def check_expanded_nodes(ctx: AnalysisContext) -> None:
    """Pass (before inference): sets ctx.too_large, which keeps blocks from being inferred."""
    ctx.too_large = _check_expanded_nodes(ctx, ctx.top)


def _check_expanded_nodes(ctx: AnalysisContext, top: Scope) -> bool:
    """Refuse a model above MAX_EXPANDED_NODES or MAX_BLOCK_DEPTH before any block is
    inferred (inference grows with the expanded size when repeats change shapes, and
    recurses once per level). True: too large, blocks are not inferred."""
    sizes, depths = block_tree(ctx)
    blocks = [n for n in top.specs if top.specs[n].role == "block"]
    too_deep = [n for n in blocks if depths.get(top.params[n].get("block"), 0) > MAX_BLOCK_DEPTH]
    for node_id in too_deep:
        name = top.params[node_id]["block"]
        ctx.error(
            "blocks_too_deep",
            f"{top.nodes[node_id].display}: block {name} nests blocks {depths[name]} levels "
            f"deep, above the limit of {MAX_BLOCK_DEPTH}",
            node_id,
            "block",
        )
    own = {n: node_size(top, n, sizes) for n in top.specs}
    total = sum(own.values())
    if total <= MAX_EXPANDED_NODES:
        return bool(too_deep)
    what = (
        f"the model expands to {count_text(total)} nodes (blocks × their repeats), above "
        f"the limit of {MAX_EXPANDED_NODES:,}"
    )
    if not blocks:
        ctx.error("graph_too_large", f"{what}: split the model or remove nodes")
        return True
    biggest = max(blocks, key=lambda n: own[n])
    display = top.nodes[biggest].display
    ctx.error(
        "graph_too_large",
        f"{display}: {what}; {display} alone stands for {count_text(own[biggest])} — "
        "lower its repeat or its blocks' repeats",
        biggest,
        "repeat",
    )
    return True


def check_params_total(ctx: AnalysisContext) -> None:
    """Pass (after inference): refuse a model above MAX_PARAMS (blocks' counts are already
    summed over their repeats by inference)."""
    if ctx.too_large:
        return  # graph_too_large stands: blocks were not inferred, the count means nothing
    result = ctx.result
    counted = {n: r.num_params for n, r in result.nodes.items() if r.spec.role in MODEL_ROLES}
    total = sum(counted.values())
    if total <= MAX_PARAMS:
        return
    biggest = max(counted, key=lambda n: counted[n])
    r = result.nodes[biggest]
    field_name = "repeat" if r.spec.role == "block" and r.params.get("repeat", 1) > 1 else None
    ctx.error(
        "too_many_params",
        f"{r.label}: the model has {count_text(total)} parameters after expanding blocks, "
        f"above the limit of {MAX_PARAMS:,}; {r.label} holds {count_text(counted[biggest])}",
        biggest,
        field_name,
    )
