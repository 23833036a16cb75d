"""The document's structure, per scope (the top level and each block definition): node ids and
types, where a node may stand, ports, edges, unconnected inputs, topological order and cycles.
Each node's parameters are checked as it is met (parameters.py), so errors keep document order."""

from __future__ import annotations

import heapq
from collections import defaultdict
from typing import Any

from ..catalog import CATALOG, NodeSpec, Port
from ..document import Edge, Node
from .blocks import block_ports
from .context import AnalysisContext, suggest
from .parameters import check_params, with_defaults
from .result import TOP_ONLY_ROLES, Scope


def check_scopes(ctx: AnalysisContext) -> None:
    """Pass: every block definition, then the top level."""
    ctx.blocks = {
        name: check_scope(ctx, defn.nodes, defn.edges, block=name)
        for name, defn in ctx.doc.blocks.items()
    }
    ctx.top = check_scope(ctx, ctx.doc.nodes, ctx.doc.edges, block=None)


def check_scope(ctx: AnalysisContext, nodes, edges, block: str | None) -> Scope:
    """One scope, checked in the order its errors are listed: nodes (and their parameters),
    ports, edges, unconnected inputs, cycles."""
    ok_nodes, specs, params = _check_nodes(ctx, nodes, block)
    in_ports, out_ports = _ports(ctx, ok_nodes, specs, params, block)
    valid, incoming = _check_edges(ctx, edges, ok_nodes, specs, in_ports, out_ports, block)
    _check_inputs_connected(ctx, ok_nodes, in_ports, incoming, block)
    order = topological(ctx, ok_nodes, valid, block)
    return Scope(block, ok_nodes, specs, params, valid, incoming, order, in_ports, out_ports)


def _check_nodes(
    ctx: AnalysisContext, nodes, block: str | None
) -> tuple[dict[str, Node], dict[str, NodeSpec], dict[str, dict[str, Any]]]:
    """The nodes that may stand here, their catalog entries and their checked parameters."""
    where = f"block {block}" if block else "the graph"
    ok_nodes: dict[str, Node] = {}
    specs: dict[str, NodeSpec] = {}
    params: dict[str, dict[str, Any]] = {}
    for node in nodes:
        if node.id in ok_nodes:
            ctx.error(
                "duplicate_id",
                f"two nodes have the id {node.id!r} in {where}; ids must be unique",
                node.id,
                "id",
                block,
            )
            continue
        spec = CATALOG.get(node.type)
        if spec is None:
            ctx.error(
                "unknown_type",
                f"{node.display}: unknown node type {node.type!r}" + suggest(node.type, CATALOG),
                node.id,
                "type",
                block,
            )
            continue
        if block and spec.role in TOP_ONLY_ROLES:
            ctx.error(
                "not_allowed_in_block",
                f"{node.display}: a {node.type} node cannot be "
                f"inside a block (blocks hold model layers only)",
                node.id,
                "type",
                block,
            )
            continue
        if not block and spec.role == "block_io":
            ctx.error(
                "not_allowed_outside_block",
                f"{node.display}: {node.type} nodes belong inside block definitions",
                node.id,
                "type",
                block,
            )
            continue
        ok_nodes[node.id] = node
        specs[node.id] = spec
        params[node.id] = check_params(ctx, node, spec, block)
    return ok_nodes, specs, params


def _ports(
    ctx: AnalysisContext, ok_nodes: dict[str, Node], specs, params, block: str | None
) -> tuple[dict[str, tuple[Port, ...]], dict[str, tuple[Port, ...]]]:
    """Each node's input and output ports: from its parameters, or its block's definition."""
    in_ports: dict[str, tuple[Port, ...]] = {}
    out_ports: dict[str, tuple[Port, ...]] = {}
    for node_id, spec in specs.items():
        if spec.role == "block":
            in_ports[node_id], out_ports[node_id] = block_ports(
                ctx, ok_nodes[node_id], params[node_id], block
            )
        else:
            merged = with_defaults(spec, params[node_id])
            in_ports[node_id] = spec.input_ports(merged)
            out_ports[node_id] = spec.output_ports(merged)
    return in_ports, out_ports


def _check_edges(
    ctx: AnalysisContext, edges, ok_nodes, specs, in_ports, out_ports, block: str | None
) -> tuple[list[Edge], dict[str, dict[str, list[Edge]]]]:
    """The valid edges in document order, and each node's incoming edges by port."""
    valid: list[Edge] = []
    incoming: dict[str, dict[str, list[Edge]]] = {n: defaultdict(list) for n in ok_nodes}
    seen: set[tuple] = set()
    for i, edge in enumerate(edges):
        edge_ref = f"edges[{i}]"
        missing = [end for end in (edge.source, edge.target) if end not in ok_nodes]
        if missing:
            known = (
                edge.target
                if edge.target in ok_nodes
                else (edge.source if edge.source in ok_nodes else None)
            )
            ctx.error(
                "dangling_edge",
                f"edge {edge.source}.{edge.source_port} → "
                f"{edge.target}.{edge.target_port} refers to a missing node "
                f"{missing[0]!r}",
                known,
                edge_ref,
                block,
            )
            continue
        src_port = next((p for p in out_ports[edge.source] if p.name == edge.source_port), None)
        dst_port = next((p for p in in_ports[edge.target] if p.name == edge.target_port), None)
        if src_port is None:
            names = [p.name for p in out_ports[edge.source]]
            ctx.error(
                "unknown_port",
                f"{ok_nodes[edge.source].display}: "
                f"{specs[edge.source].type} has no output port {edge.source_port!r} "
                f"(outputs: {', '.join(names) or 'none'})",
                edge.source,
                edge.source_port,
                block,
            )
            continue
        if dst_port is None:
            names = [p.name for p in in_ports[edge.target]]
            ctx.error(
                "unknown_port",
                f"{ok_nodes[edge.target].display}: "
                f"{specs[edge.target].type} has no input port {edge.target_port!r} "
                f"(inputs: {', '.join(names) or 'none'})",
                edge.target,
                edge.target_port,
                block,
            )
            continue
        if src_port.kind != dst_port.kind:
            ctx.error(
                "port_type",
                f"{ok_nodes[edge.target].display}: input "
                f"{dst_port.name!r} takes a {dst_port.kind}, but "
                f"{ok_nodes[edge.source].display}.{src_port.name} gives a "
                f"{src_port.kind}",
                edge.target,
                edge.target_port,
                block,
            )
            continue
        key = (edge.source, edge.source_port, edge.target, edge.target_port)
        if key in seen and not dst_port.multi:  # into a merge it is one more input: x * x
            ctx.error(
                "duplicate_edge",
                f"{ok_nodes[edge.target].display}: the edge from "
                f"{ok_nodes[edge.source].display} is listed twice",
                edge.target,
                edge.target_port,
                block,
                "warning",
            )
            continue
        seen.add(key)
        if incoming[edge.target][edge.target_port] and not dst_port.multi:
            first = incoming[edge.target][edge.target_port][0]
            ctx.error(
                "multiple_inputs",
                f"{ok_nodes[edge.target].display}: input "
                f"{dst_port.name!r} takes one edge but gets two (from "
                f"{ok_nodes[first.source].display} and {ok_nodes[edge.source].display})"
                + (" — use an Add or Concat to merge them" if dst_port.kind == "tensor" else ""),
                edge.target,
                edge.target_port,
                block,
            )
            continue
        incoming[edge.target][edge.target_port].append(edge)
        valid.append(edge)
    return valid, incoming


def _check_inputs_connected(
    ctx: AnalysisContext, ok_nodes, in_ports, incoming, block: str | None
) -> None:
    for node_id, ports in in_ports.items():
        for port in ports:
            edges = incoming[node_id].get(port.name) or []
            if not port.optional and not edges:
                ctx.error(
                    "missing_input",
                    f"{ok_nodes[node_id].display}: input "
                    f"{port.name!r} ({port.kind}) is not connected",
                    node_id,
                    port.name,
                    block,
                )
            elif 0 < len(edges) < port.min_edges:
                ctx.error(
                    "too_few_inputs",
                    f"{ok_nodes[node_id].display}: input {port.name!r} takes "
                    f"{port.min_edges} or more edges but gets {len(edges)} (from "
                    f"{ok_nodes[edges[0].source].display}) — connect another tensor, or remove "
                    "the node",
                    node_id,
                    port.name,
                    block,
                )


def topological(
    ctx: AnalysisContext, nodes: dict[str, Node], edges: list[Edge], block
) -> list[str]:
    succ: dict[str, list[str]] = defaultdict(list)
    indeg = {n: 0 for n in nodes}
    for e in edges:
        succ[e.source].append(e.target)
        indeg[e.target] += 1
    # ready nodes leave in document order, which keeps the generated code deterministic
    position = {n: i for i, n in enumerate(nodes)}
    ready = [position[n] for n in nodes if indeg[n] == 0]
    heapq.heapify(ready)
    names = list(nodes)
    order: list[str] = []
    while ready:
        n = names[heapq.heappop(ready)]
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(ready, position[m])
    if len(order) < len(nodes):
        for cycle in cycles(nodes, succ):
            names = " → ".join(nodes[n].display for n in (*cycle, cycle[0]))
            ctx.error(
                "cycle",
                f"cycle: {names} — a network's data must flow one way "
                "(recurrence needs an LSTM/GRU/RNN node)",
                cycle[0],
                None,
                block,
            )
    return order


def cycles(nodes: dict[str, Node], succ: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components that are cycles (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            children = succ.get(v, [])
            if i < len(children):
                work.append((v, i + 1))
                w = children[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in succ.get(v, []):
                    found.append(_cycle_path(comp, succ))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return found


def _cycle_path(comp: list[str], succ: dict[str, list[str]]) -> list[str]:
    """Order a strongly connected component as a path that returns to its start."""
    members = set(comp)
    start = min(comp, key=comp.index)
    path = [start]
    seen = {start}
    current = start
    while True:
        nxt = next((w for w in succ.get(current, []) if w in members and w not in seen), None)
        if nxt is None:
            return path
        path.append(nxt)
        seen.add(nxt)
        current = nxt
