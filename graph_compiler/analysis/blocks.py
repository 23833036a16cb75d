"""Blocks: a Block node's ports come from its definition's Input and Output nodes, and no block
may lead back to itself."""

from __future__ import annotations

from collections.abc import Mapping

from ..catalog import Port
from ..document import Node
from .context import AnalysisContext, suggest


def block_ports(
    ctx: AnalysisContext, node: Node, params: dict, block
) -> tuple[tuple[Port, ...], tuple[Port, ...]]:
    name = params.get("block")
    if name is None:
        return (), ()
    defn = ctx.doc.blocks.get(name)
    if defn is None:
        ctx.error(
            "unknown_block",
            f"{node.display}: there is no block named {name!r}" + suggest(name, ctx.doc.blocks),
            node.id,
            "block",
            block,
        )
        return (), ()
    ins = tuple(Port(n.id) for n in defn.nodes if n.type == "Input")
    outs = tuple(Port(n.id) for n in defn.nodes if n.type == "Output")
    if not outs:
        ctx.error(
            "block_no_output",
            f"{node.display}: block {name} has no Output node",
            node.id,
            "block",
            block,
        )
    if params.get("repeat", 1) > 1 and (len(ins) != 1 or len(outs) != 1):
        ctx.error(
            "repeat_needs_single_io",
            f"{node.display}: repeat > 1 needs a block with "
            f"one input and one output; {name} has {len(ins)} and {len(outs)}",
            node.id,
            "repeat",
            block,
        )
    return ins, outs


def check_recursion(ctx: AnalysisContext) -> None:
    """Pass: blocks that lead back to themselves, kept in ctx.recursive."""
    uses: dict[str, set[str]] = {}
    for name, scope in ctx.blocks.items():
        uses[name] = {
            scope.params[n].get("block") for n, s in scope.specs.items() if s.role == "block"
        } - {None}

    component = _components(uses)  # a block leads back to itself: same component

    for name, scope in ctx.blocks.items():
        for node_id, spec in scope.specs.items():
            used = scope.params[node_id].get("block")
            if (
                spec.role == "block"
                and used in ctx.blocks
                and (used == name or component[used] == component[name])
            ):
                ctx.recursive.add(name)
                ctx.error(
                    "block_recursion",
                    f"{scope.nodes[node_id].display}: block {name} "
                    f"uses block {used}, which leads back to {name} — a block cannot "
                    "contain itself",
                    node_id,
                    "block",
                    name,
                )


def _components(succ: Mapping[str, set[str]]) -> dict[str, int]:
    """Strongly connected components (Tarjan's, iterative: blocks may nest thousands deep, and
    reachability per block would cost time and memory quadratic in their number)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    component: dict[str, int] = {}
    stack: list[str] = []
    for root in succ:
        if root in index:
            continue
        work = [(root, iter(sorted(succ[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            v, children = work[-1]
            w = next((c for c in children if c in succ), None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    work.append((w, iter(sorted(succ[w]))))
                elif w not in component:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    component[w] = index[v]
                    if w == v:
                        break
    return component
