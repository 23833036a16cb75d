"""Validation and shape inference of a whole graph document.

`analyze(document)` never raises. It returns every problem at once (structured, keyed by node and
field) together with what could be inferred: each edge's shape and dtype, each node's resolved
params (inferred sizes filled in), parameter counts and FLOPs. Code generation and the training
plan are built from this one result.
"""

from __future__ import annotations

import difflib
import heapq
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .catalog import CATALOG, REQUIRED, InferContext, NodeSpec, Port
from .custom import CUSTOM_TYPES, CustomCodeError, as_layer_params, custom_layer_factory
from .datasets import FILE, DataInfo, describe
from .document import Edge, GraphDocument, Node, parse_document
from .errors import GraphError
from .infer import MODULE_VAR, NodeFailure, infer_node, input_names
from .limits import MAX_BLOCK_DEPTH, MAX_EXPANDED_NODES, MAX_PARAMS, count_text, saturated
from .shapes import B, TensorInfo
from .training import split_counts, steps_per_epoch

MODEL_ROLES = ("layer", "op", "custom", "block")
TOP_ONLY_ROLES = ("data", "loss", "optimizer", "scheduler", "settings")


@dataclass
class NodeResult:
    node: Node
    spec: NodeSpec
    params: dict[str, Any]  # defaults + user values + inferred sizes
    inferred: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, list[TensorInfo]] = field(default_factory=dict)
    outputs: dict[str, TensorInfo] = field(default_factory=dict)
    num_params: int = 0
    trainable_params: int = 0
    flops: int = 0
    instances: list[ScopeResult] = field(default_factory=list)  # Block nodes: one per repeat

    @property
    def label(self) -> str:
        return self.node.display


@dataclass
class Scope:
    """A checked graph: the top level or one block definition."""

    block: str | None
    nodes: dict[str, Node]
    specs: dict[str, NodeSpec]
    params: dict[str, dict[str, Any]]  # user params, normalized
    edges: list[Edge]  # the valid edges, in document order
    incoming: dict[str, dict[str, list[Edge]]]
    order: list[str]  # topological order of nodes outside cycles
    in_ports: dict[str, tuple[Port, ...]]
    out_ports: dict[str, tuple[Port, ...]]


@dataclass
class ScopeResult:
    scope: Scope
    nodes: dict[str, NodeResult]
    outputs: dict[str, TensorInfo] = field(default_factory=dict)  # block Output nodes


@dataclass
class Analysis:
    document: GraphDocument | None
    errors: list[GraphError]
    top: ScopeResult | None = None
    blocks: dict[str, Scope] = field(default_factory=dict)
    instances: dict[str, list[ScopeResult]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    data: DataInfo | None = None
    data_node: str | None = None

    @property
    def ok(self) -> bool:
        return not any(e.severity == "error" for e in self.errors)

    @property
    def error_list(self) -> list[GraphError]:
        return [e for e in self.errors if e.severity == "error"]

    def result(self, node_id: str) -> NodeResult | None:
        return self.top.nodes.get(node_id) if self.top else None

    def model_nodes(self) -> list[NodeResult]:
        if not self.top:
            return []
        return [
            self.top.nodes[n]
            for n in self.top.scope.order
            if n in self.top.nodes and self.top.scope.specs[n].role in MODEL_ROLES
        ]

    def totals(self) -> dict[str, int]:
        nodes = self.model_nodes()
        return {
            "params": sum(r.num_params for r in nodes),
            "trainable_params": sum(r.trainable_params for r in nodes),
            "flops": sum(r.flops for r in nodes),
        }

    def edge_info(self, edge: Edge) -> TensorInfo | None:
        if not self.top:
            return None
        src = self.top.nodes.get(edge.source)
        return src.outputs.get(edge.source_port) if src else None

    def to_json(self) -> dict:
        """What the editor shows: errors, per-node shapes/params/FLOPs, per-edge shapes, totals."""
        nodes = {}
        if self.top:
            for node_id, r in self.top.nodes.items():
                nodes[node_id] = {
                    "type": r.spec.type,
                    "params": _json_params(r.params),
                    "inferred": _json_params(r.inferred),
                    "inputs": {p: [i.to_json() for i in infos] for p, infos in r.inputs.items()},
                    "outputs": {p: i.to_json() for p, i in r.outputs.items()},
                    "num_params": r.num_params,
                    "trainable_params": r.trainable_params,
                    "flops": r.flops,
                }
        edges = []
        if self.document:
            for e in self.document.edges:
                info = self.edge_info(e)
                edges.append(info.to_json() if info else None)
        return {
            "ok": self.ok,
            "errors": [e.to_dict() for e in self.errors],
            "nodes": nodes,
            "edges": edges,
            "totals": self.totals(),
            "settings": _json_params(self.settings),
        }


def _json_params(params: Mapping[str, Any]) -> dict:
    def conv(v: Any) -> Any:
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v

    return {k: conv(v) for k, v in params.items()}


# --- public entry points -------------------------------------------------------------------------


def analyze(document: Any, *, allow_custom_code: bool = False) -> Analysis:
    doc, problems = parse_document(document)
    errors = list(problems)
    if doc is None:
        return Analysis(None, errors)
    return _Analyzer(doc, errors, allow_custom_code).run()


def validate(document: Any, *, allow_custom_code: bool = False) -> list[dict]:
    """Every problem of a document as dicts {node, field, code, message, severity}."""
    return [e.to_dict() for e in analyze(document, allow_custom_code=allow_custom_code).errors]


# --- the analyzer --------------------------------------------------------------------------------


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _source_text(scope: Scope, edge: Edge) -> str:
    node = scope.nodes[edge.source]
    outs = scope.out_ports.get(edge.source, ())
    return node.display if len(outs) <= 1 else f"{node.display}.{edge.source_port}"


class _Analyzer:
    def __init__(self, doc: GraphDocument, errors: list[GraphError], allow_custom_code: bool):
        self.doc = doc
        self.errors = errors
        self.allow_custom_code = allow_custom_code
        self.memo: dict[tuple, ScopeResult | None] = {}
        self.instances: dict[str, list[ScopeResult]] = defaultdict(list)
        self.recursive: set[str] = set()
        self.settings: dict[str, Any] = {}
        self.failed: dict[tuple[str | None, str | None], int] = defaultdict(int)
        self.too_large = False  # over MAX_EXPANDED_NODES: blocks are not inferred at all

    def error(
        self,
        code: str,
        message: str,
        node: str | None = None,
        fld: str | None = None,
        block: str | None = None,
        severity: str = "error",
    ) -> None:
        self.errors.append(GraphError(code, message, node, fld, severity, block))
        if severity == "error":
            self.failed[(block, node)] += 1

    def run(self) -> Analysis:
        blocks = {
            name: self.check_scope(defn.nodes, defn.edges, block=name)
            for name, defn in self.doc.blocks.items()
        }
        self.blocks = blocks
        top = self.check_scope(self.doc.nodes, self.doc.edges, block=None)
        self.check_block_recursion()
        data_node = self.check_roles(top)
        data = None
        if data_node is not None and not self.has_node_errors(top, data_node):
            params = self.resolved_plain(top, data_node)
            if params["source"] == FILE and not params["x_shape"]:
                where = params["path"] or params["dataset_id"] or "no file chosen"
                self.error(
                    "data_not_loaded",
                    f"{top.nodes[data_node].display}: the data file's "
                    f"shapes are not known yet ({where}): upload the file, or let "
                    "`torchloom train` read it",
                    data_node,
                    "x_shape",
                )
            else:
                data = describe(params)
        self.settings = self.resolve_settings(top, data)
        self.too_large = self.check_expanded_nodes(top)
        result = self.infer_scope(top, None, data)
        if not self.too_large:
            self.check_params_total(top, result)
        self.check_losses(top, result, data)
        self.check_unused(top)
        self.check_trainable(top, result)
        self.errors.sort(key=lambda e: e.severity != "error")  # errors before warnings, stable
        return Analysis(
            self.doc,
            self.errors,
            result,
            blocks,
            dict(self.instances),
            self.settings,
            data,
            data_node,
        )

    # --- structure ---------------------------------------------------------------------------

    def check_scope(self, nodes, edges, block: str | None) -> Scope:
        where = f"block {block}" if block else "the graph"
        ok_nodes: dict[str, Node] = {}
        specs: dict[str, NodeSpec] = {}
        params: dict[str, dict[str, Any]] = {}
        for node in nodes:
            if node.id in ok_nodes:
                self.error(
                    "duplicate_id",
                    f"two nodes have the id {node.id!r} in {where}; ids must be unique",
                    node.id,
                    "id",
                    block,
                )
                continue
            spec = CATALOG.get(node.type)
            if spec is None:
                self.error(
                    "unknown_type",
                    f"{node.display}: unknown node type {node.type!r}"
                    + _suggest(node.type, CATALOG),
                    node.id,
                    "type",
                    block,
                )
                continue
            if block and spec.role in TOP_ONLY_ROLES:
                self.error(
                    "not_allowed_in_block",
                    f"{node.display}: a {node.type} node cannot be "
                    f"inside a block (blocks hold model layers only)",
                    node.id,
                    "type",
                    block,
                )
                continue
            if not block and spec.role == "block_io":
                self.error(
                    "not_allowed_outside_block",
                    f"{node.display}: {node.type} nodes belong inside block definitions",
                    node.id,
                    "type",
                    block,
                )
                continue
            ok_nodes[node.id] = node
            specs[node.id] = spec
            params[node.id] = self.check_params(node, spec, block)

        in_ports: dict[str, tuple[Port, ...]] = {}
        out_ports: dict[str, tuple[Port, ...]] = {}
        for node_id, spec in specs.items():
            if spec.role == "block":
                in_ports[node_id], out_ports[node_id] = self.block_ports(
                    ok_nodes[node_id], params[node_id], block
                )
            else:
                merged = self.with_defaults(spec, params[node_id])
                in_ports[node_id] = spec.input_ports(merged)
                out_ports[node_id] = spec.output_ports(merged)

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
                self.error(
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
                self.error(
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
                self.error(
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
                self.error(
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
            if key in seen:
                self.error(
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
                self.error(
                    "multiple_inputs",
                    f"{ok_nodes[edge.target].display}: input "
                    f"{dst_port.name!r} takes one edge but gets two (from "
                    f"{ok_nodes[first.source].display} and {ok_nodes[edge.source].display})"
                    + (
                        " — use an Add or Concat to merge them" if dst_port.kind == "tensor" else ""
                    ),
                    edge.target,
                    edge.target_port,
                    block,
                )
                continue
            incoming[edge.target][edge.target_port].append(edge)
            valid.append(edge)

        for node_id, ports in in_ports.items():
            for port in ports:
                if not port.optional and not incoming[node_id].get(port.name):
                    self.error(
                        "missing_input",
                        f"{ok_nodes[node_id].display}: input "
                        f"{port.name!r} ({port.kind}) is not connected",
                        node_id,
                        port.name,
                        block,
                    )

        order = self.topological(ok_nodes, valid, block)
        return Scope(block, ok_nodes, specs, params, valid, incoming, order, in_ports, out_ports)

    def topological(self, nodes: dict[str, Node], edges: list[Edge], block) -> list[str]:
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
            for cycle in self.cycles(nodes, succ):
                names = " → ".join(nodes[n].display for n in (*cycle, cycle[0]))
                self.error(
                    "cycle",
                    f"cycle: {names} — a network's data must flow one way "
                    "(recurrence needs an LSTM/GRU/RNN node)",
                    cycle[0],
                    None,
                    block,
                )
        return order

    @staticmethod
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

    def check_params(self, node: Node, spec: NodeSpec, block) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in node.params.items():
            p = spec.param(name)
            if p is None:
                options = [q.name for q in spec.params]
                self.error(
                    "param_unknown",
                    f"{node.display}: {spec.type} has no parameter "
                    f"{name!r}{_suggest(name, options)}",
                    node.id,
                    name,
                    block,
                )
                continue
            norm, problem = p.check(value)
            if problem:
                code, text = problem
                self.error(code, f"{node.display}: {name} {text}", node.id, name, block)
                continue
            out[name] = norm
        for p in spec.params:
            if p.required and p.name not in out and p.name not in node.params:
                self.error(
                    "param_required",
                    f"{node.display}: {spec.type} needs {p.name} ({p.description.rstrip('.')})",
                    node.id,
                    p.name,
                    block,
                )
        return out

    @staticmethod
    def with_defaults(spec: NodeSpec, user: Mapping[str, Any]) -> dict[str, Any]:
        # defaults go through the same normalization as user values (JSON → hashable tuples)
        merged = {p.name: p.check(p.default)[0] for p in spec.params if p.default is not REQUIRED}
        merged.update(user)
        return merged

    def block_ports(
        self, node: Node, params: dict, block
    ) -> tuple[tuple[Port, ...], tuple[Port, ...]]:
        name = params.get("block")
        if name is None:
            return (), ()
        defn = self.doc.blocks.get(name)
        if defn is None:
            self.error(
                "unknown_block",
                f"{node.display}: there is no block named {name!r}"
                + _suggest(name, self.doc.blocks),
                node.id,
                "block",
                block,
            )
            return (), ()
        ins = tuple(Port(n.id) for n in defn.nodes if n.type == "Input")
        outs = tuple(Port(n.id) for n in defn.nodes if n.type == "Output")
        if not outs:
            self.error(
                "block_no_output",
                f"{node.display}: block {name} has no Output node",
                node.id,
                "block",
                block,
            )
        if params.get("repeat", 1) > 1 and (len(ins) != 1 or len(outs) != 1):
            self.error(
                "repeat_needs_single_io",
                f"{node.display}: repeat > 1 needs a block with "
                f"one input and one output; {name} has {len(ins)} and {len(outs)}",
                node.id,
                "repeat",
                block,
            )
        return ins, outs

    def check_block_recursion(self) -> None:
        uses: dict[str, set[str]] = {}
        for name, scope in self.blocks.items():
            uses[name] = {
                scope.params[n].get("block") for n, s in scope.specs.items() if s.role == "block"
            } - {None}

        component = _components(uses)  # a block leads back to itself: same component

        for name, scope in self.blocks.items():
            for node_id, spec in scope.specs.items():
                used = scope.params[node_id].get("block")
                if (
                    spec.role == "block"
                    and used in self.blocks
                    and (used == name or component[used] == component[name])
                ):
                    self.recursive.add(name)
                    self.error(
                        "block_recursion",
                        f"{scope.nodes[node_id].display}: block {name} "
                        f"uses block {used}, which leads back to {name} — a block cannot "
                        "contain itself",
                        node_id,
                        "block",
                        name,
                    )

    # --- size after expanding blocks × repeats (graph_compiler/limits.py) ---------------------

    def node_size(self, scope: Scope, node_id: str, sizes: Mapping[str, int]) -> int:
        """Model nodes that one node of a scope stands for once its blocks are expanded."""
        spec = scope.specs[node_id]
        if spec.role == "block":
            params = scope.params[node_id]
            return saturated(params.get("repeat", 1) * (1 + sizes.get(params.get("block"), 0)))
        return 1 if spec.role in MODEL_ROLES else 0

    def block_tree(self) -> tuple[dict[str, int], dict[str, int]]:
        """Each block definition's size once expanded and its nesting depth, computed bottom-up
        through the block tree (a multiplication per Block node: nothing is expanded). Blocks
        that lead back to themselves count 0: their block_recursion error stands already."""
        uses = {
            name: [
                scope.params[n].get("block")
                for n, s in scope.specs.items()
                if s.role == "block" and scope.params[n].get("block") in self.blocks
            ]
            for name, scope in self.blocks.items()
        }
        sizes = {name: 0 for name in self.recursive}
        depths = {name: 0 for name in self.recursive}
        for start in self.blocks:
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
                scope = self.blocks[name]
                sizes[name] = saturated(sum(self.node_size(scope, n, sizes) for n in scope.specs))
                depths[name] = 1 + max((depths[u] for u in uses[name]), default=0)
                stack.pop()
        return sizes, depths

    def check_expanded_nodes(self, top: Scope) -> bool:
        """Refuse a model above MAX_EXPANDED_NODES or MAX_BLOCK_DEPTH before any block is
        inferred (inference grows with the expanded size when repeats change shapes, and
        recurses once per level). True: too large, blocks are not inferred."""
        sizes, depths = self.block_tree()
        blocks = [n for n in top.specs if top.specs[n].role == "block"]
        too_deep = [
            n for n in blocks if depths.get(top.params[n].get("block"), 0) > MAX_BLOCK_DEPTH
        ]
        for node_id in too_deep:
            name = top.params[node_id]["block"]
            self.error(
                "blocks_too_deep",
                f"{top.nodes[node_id].display}: block {name} nests blocks {depths[name]} levels "
                f"deep, above the limit of {MAX_BLOCK_DEPTH}",
                node_id,
                "block",
            )
        own = {n: self.node_size(top, n, sizes) for n in top.specs}
        total = sum(own.values())
        if total <= MAX_EXPANDED_NODES:
            return bool(too_deep)
        what = (
            f"the model expands to {count_text(total)} nodes (blocks × their repeats), above "
            f"the limit of {MAX_EXPANDED_NODES:,}"
        )
        if not blocks:
            self.error("graph_too_large", f"{what}: split the model or remove nodes")
            return True
        biggest = max(blocks, key=lambda n: own[n])
        display = top.nodes[biggest].display
        self.error(
            "graph_too_large",
            f"{display}: {what}; {display} alone stands for {count_text(own[biggest])} — "
            "lower its repeat or its blocks' repeats",
            biggest,
            "repeat",
        )
        return True

    def check_params_total(self, top: Scope, result: ScopeResult) -> None:
        """Refuse a model above MAX_PARAMS (blocks' counts are already summed over their
        repeats by inference)."""
        counted = {n: r.num_params for n, r in result.nodes.items() if r.spec.role in MODEL_ROLES}
        total = sum(counted.values())
        if total <= MAX_PARAMS:
            return
        biggest = max(counted, key=lambda n: counted[n])
        r = result.nodes[biggest]
        field_name = "repeat" if r.spec.role == "block" and r.params.get("repeat", 1) > 1 else None
        self.error(
            "too_many_params",
            f"{r.label}: the model has {count_text(total)} parameters after expanding blocks, "
            f"above the limit of {MAX_PARAMS:,}; {r.label} holds {count_text(counted[biggest])}",
            biggest,
            field_name,
        )

    def check_roles(self, top: Scope) -> str | None:
        by_role: dict[str, list[str]] = defaultdict(list)
        for node_id, spec in top.specs.items():
            by_role[spec.role].append(node_id)
        data = by_role.get("data", [])
        if not data:
            self.error("no_data", "the graph has no Dataset node: add one to provide x and y")
        for extra in data[1:]:
            self.error(
                "multiple_data",
                f"{top.nodes[extra].display}: only one Dataset node is supported per graph",
                extra,
            )
        if not by_role.get("loss"):
            self.error(
                "no_loss",
                "the graph has no loss: connect the model's output and the "
                "target to a loss such as CrossEntropyLoss or MSELoss",
            )
        optimizers = by_role.get("optimizer", [])
        if not optimizers:
            self.error(
                "no_optimizer",
                "the graph has no optimizer: add one (e.g. Adam) and connect a loss to it",
            )
        for extra in optimizers[1:]:
            self.error(
                "multiple_optimizers",
                f"{top.nodes[extra].display}: only one optimizer per graph is supported",
                extra,
            )
        for opt in optimizers:
            if not top.incoming[opt].get("loss"):
                self.error(
                    "optimizer_unreachable",
                    f"{top.nodes[opt].display}: no loss reaches "
                    "this optimizer — connect a loss's output to its loss input",
                    opt,
                    "loss",
                )
        fed = {e.source for e in top.edges if top.specs[e.target].role == "optimizer"}
        for loss in by_role.get("loss", []):
            if loss not in fed:
                self.error(
                    "loss_unused",
                    f"{top.nodes[loss].display}: this loss feeds no "
                    "optimizer, so it trains nothing",
                    loss,
                    "loss",
                    severity="warning",
                )
        final = [
            s for s in by_role.get("scheduler", []) if not any(e.source == s for e in top.edges)
        ]
        for extra in final[1:]:
            self.error(
                "multiple_schedulers",
                f"{top.nodes[extra].display}: only one LR scheduler "
                "can drive the optimizer; chain several with SequentialLR",
                extra,
            )
        for node_id in by_role.get("scheduler", []):
            if top.specs[node_id].type == "SequentialLR":
                opts = {
                    self.scheduler_optimizer(top, e.source)
                    for edges in top.incoming[node_id].values()
                    for e in edges
                }
                if len(opts - {None}) > 1:
                    self.error(
                        "scheduler_optimizer_mismatch",
                        f"{top.nodes[node_id].display}: "
                        "the chained schedulers drive different optimizers",
                        node_id,
                    )
        settings = by_role.get("settings", [])
        if not settings:
            self.error(
                "no_training_settings",
                "the graph has no Training node; defaults are used "
                "(10 epochs, batch 64, 20 % validation)",
                severity="warning",
            )
        for extra in settings[1:]:
            self.error(
                "multiple_training",
                f"{top.nodes[extra].display}: only one Training node per graph",
                extra,
            )
        return data[0] if data else None

    @staticmethod
    def scheduler_optimizer(top: Scope, sched: str) -> str | None:
        edges = top.incoming.get(sched, {}).get("optimizer")
        if edges:
            return edges[0].source
        for port_edges in top.incoming.get(sched, {}).values():
            for e in port_edges:
                found = _Analyzer.scheduler_optimizer(top, e.source)
                if found:
                    return found
        return None

    def has_node_errors(self, scope: Scope, node_id: str) -> bool:
        return self.failed.get((scope.block, node_id), 0) > 0

    def resolved_plain(self, scope: Scope, node_id: str) -> dict[str, Any]:
        return self.with_defaults(scope.specs[node_id], scope.params[node_id])

    def resolve_settings(self, top: Scope, data: DataInfo | None) -> dict[str, Any]:
        node = next((n for n, s in top.specs.items() if s.role == "settings"), None)
        spec = CATALOG["Training"]
        settings = self.with_defaults(spec, top.params[node] if node else {})
        if data is not None and data.samples:
            n_train, n_val = split_counts(data.samples, settings["val_split"])
            settings["train_samples"], settings["val_samples"] = n_train, n_val
            settings["steps_per_epoch"] = steps_per_epoch(
                n_train, settings["batch_size"], settings["grad_accumulation"]
            )
        return settings

    # --- inference ---------------------------------------------------------------------------

    def infer_scope(
        self, scope: Scope, block_inputs: Mapping[str, TensorInfo] | None, data: DataInfo | None
    ) -> ScopeResult:
        result = ScopeResult(scope, {})
        for node_id in scope.order:
            spec = scope.specs[node_id]
            node = scope.nodes[node_id]
            if self.has_node_errors(scope, node_id):
                continue
            user = scope.params[node_id]
            inputs: dict[str, list[TensorInfo]] = {}
            complete = True
            for port in scope.in_ports[node_id]:
                infos = []
                for e in scope.incoming[node_id].get(port.name, []):
                    src = result.nodes.get(e.source)
                    info = src.outputs.get(e.source_port) if src else None
                    if info is None and port.kind == "tensor":
                        complete = False
                    elif info is not None:
                        infos.append(info)
                if infos:
                    inputs[port.name] = infos
            if not complete:
                continue  # an upstream node failed; its error is already reported
            if spec.role == "data":
                if data is None:
                    continue
                params = self.with_defaults(spec, user)
                r = NodeResult(node, spec, params)
                r.outputs = {
                    "x": TensorInfo((B, *data.x_shape), data.x_dtype),
                    "y": TensorInfo((B, *data.y_shape), data.y_dtype),
                }
                result.nodes[node_id] = r
            elif spec.role == "block_io":
                r = NodeResult(node, spec, {}, inputs=inputs)
                if spec.type == "Input":
                    if block_inputs is None or node_id not in block_inputs:
                        continue
                    r.outputs = {"out": block_inputs[node_id]}
                elif "in" in inputs:
                    result.outputs[node_id] = inputs["in"][0]
                result.nodes[node_id] = r
            elif spec.role == "block":
                r = self.infer_block(scope, node, spec, user, inputs, data)
                if r is not None:
                    result.nodes[node_id] = r
            elif spec.role in ("optimizer", "scheduler", "settings"):
                r = self.resolve_training_node(scope, node_id, spec, user)
                if r is not None:
                    result.nodes[node_id] = r
            else:
                r = self.infer_tensor_node(scope, node, spec, user, inputs)
                if r is not None:
                    result.nodes[node_id] = r
        return result

    def resolve_training_node(
        self, scope: Scope, node_id: str, spec: NodeSpec, user: dict
    ) -> NodeResult | None:
        params = self.with_defaults(spec, user)
        inferred = {}
        interval, offset = params.get("interval"), 0
        if spec.role == "scheduler":
            interval, offset = self.schedule_position(scope, node_id, params)
        ctx = InferContext({}, {**self.settings, "interval": interval, "offset": offset})
        for p in spec.params:
            if p.infer is not None and p.name not in user:
                value = p.infer(ctx)
                params[p.name] = value  # None: known only at run time (e.g. uploaded data size)
                if value is not None:
                    inferred[p.name] = value
        return NodeResult(scope.nodes[node_id], spec, params, inferred)

    def schedule_position(self, scope: Scope, node_id: str, params: dict) -> tuple[str, int]:
        """(interval, offset) of a scheduler: a stage of a SequentialLR steps at the chain's
        interval, and the `then` stage starts after the chain's milestone."""
        for e in scope.edges:
            if e.source != node_id or scope.specs[e.target].type != "SequentialLR":
                continue
            parent = self.with_defaults(scope.specs[e.target], scope.params[e.target])
            interval, offset = self.schedule_position(scope, e.target, parent)
            if "interval" in scope.params[node_id] and params["interval"] != interval:
                self.error(
                    "scheduler_interval_mismatch",
                    f"{scope.nodes[node_id].display}: "
                    f"steps every {params['interval']} but its chain "
                    f"{scope.nodes[e.target].display} steps every {interval}; set the "
                    "interval on the SequentialLR",
                    node_id,
                    "interval",
                    scope.block,
                )
            if e.target_port == "then":
                offset += parent["milestone"]
            return interval, offset
        return params["interval"], 0

    def check_rank_dtype(
        self, scope: Scope, node: Node, spec: NodeSpec, inputs: dict[str, list[TensorInfo]]
    ) -> bool:
        ok = True
        for port in scope.in_ports[node.id]:
            for edge, info in zip(
                scope.incoming[node.id].get(port.name, []), inputs.get(port.name, []), strict=False
            ):
                src = _source_text(scope, edge)
                if port.ranks and info.rank not in port.ranks:
                    hint = f" — {spec.rank_hint}" if spec.rank_hint else ""
                    self.error(
                        "rank_mismatch",
                        f"{node.display}: {spec.type} expects a "
                        f"{port.layout_text()} input but gets {info} from {src}{hint}",
                        node.id,
                        port.name,
                        scope.block,
                    )
                    ok = False
                if port.dtype == "int" and info.is_float:
                    self.error(
                        "dtype_mismatch",
                        f"{node.display}: {spec.type} expects integer "
                        f"ids (int64) but gets {info.dtype} from {src}",
                        node.id,
                        port.name,
                        scope.block,
                    )
                    ok = False
                elif port.dtype is None and spec.role == "layer" and not info.is_float:
                    self.error(
                        "dtype_mismatch",
                        f"{node.display}: {spec.type} expects "
                        f"floating-point input but gets {info.dtype} {info} from {src} — "
                        "integer ids need an Embedding first",
                        node.id,
                        port.name,
                        scope.block,
                    )
                    ok = False
        return ok

    def resolve_inferred(
        self,
        scope: Scope,
        node: Node,
        spec: NodeSpec,
        user: dict,
        inputs: dict[str, list[TensorInfo]],
    ) -> tuple[dict, dict] | None:
        params = self.with_defaults(spec, user)
        inferred = {}
        concrete = {p: [i.concrete(1) for i in infos] for p, infos in inputs.items()}
        ctx = InferContext(concrete, self.settings)
        for p in spec.params:
            if p.infer is None:
                continue
            try:
                value = p.infer(ctx)
            except (IndexError, TypeError):
                value = None
            if value is None:
                if p.name in user:
                    continue
                self.error(
                    "cannot_infer",
                    f"{node.display}: cannot infer {p.name} from the input",
                    node.id,
                    p.name,
                    scope.block,
                )
                return None
            if p.name in user and user[p.name] != value:
                self.error(
                    "inferred_mismatch",
                    f"{node.display}: {p.name} is {user[p.name]} but "
                    f"the input gives {value} — remove it to have it inferred",
                    node.id,
                    p.name,
                    scope.block,
                )
                return None
            params[p.name] = value
            inferred[p.name] = value
        return params, inferred

    def infer_tensor_node(
        self,
        scope: Scope,
        node: Node,
        spec: NodeSpec,
        user: dict,
        inputs: dict[str, list[TensorInfo]],
    ) -> NodeResult | None:
        if not self.check_rank_dtype(scope, node, spec, inputs):
            return None
        resolved = self.resolve_inferred(scope, node, spec, user, inputs)
        if resolved is None:
            return None
        params, inferred = resolved
        factory = factory_key = None
        if spec.type in CUSTOM_TYPES:
            if not self.allow_custom_code:
                self.error(
                    "custom_code_disabled",
                    f"{node.display}: custom code is disabled on this server (start it with "
                    "--allow-custom-code to run it)",
                    node.id,
                    "code",
                    scope.block,
                )
                return None
            source = as_layer_params(spec.type, params)
            try:
                factory = custom_layer_factory(source)
            except CustomCodeError as exc:
                self.error(
                    "custom_code_error", f"{node.display}: {exc}", node.id, exc.field, scope.block
                )
                return None
            factory_key = (spec.type, params["code"], source.get("parameters"))
        counts = {port: len(infos) for port, infos in inputs.items()}
        names = input_names(counts)
        call = spec.call or _default_call(spec)
        expr = call(params, names, MODULE_VAR)
        try:
            shapes = infer_node(spec, params, inputs, expr, factory, factory_key)
        except NodeFailure as exc:
            self.report_failure(scope, node, spec, inputs, exc)
            return None
        outs = scope.out_ports[node.id]
        if len(shapes.outputs) != len(outs):
            self.error(
                "output_count",
                f"{node.display}: {spec.type} gives {len(shapes.outputs)} "
                f"outputs here, not {len(outs)}",
                node.id,
                None,
                scope.block,
            )
            return None
        if spec.role == "loss" and shapes.outputs[0].shape:
            self.error(
                "loss_not_scalar",
                f"{node.display}: the loss must be a single number but is {shapes.outputs[0]}",
                node.id,
                None,
                scope.block,
            )
            return None
        r = NodeResult(node, spec, params, inferred, inputs)
        r.outputs = {p.name: info for p, info in zip(outs, shapes.outputs, strict=True)}
        r.num_params = shapes.num_params
        r.trainable_params = shapes.num_params if node.trainable else 0
        r.flops = shapes.flops
        return r

    def report_failure(
        self,
        scope: Scope,
        node: Node,
        spec: NodeSpec,
        inputs: dict[str, list[TensorInfo]],
        exc: NodeFailure,
    ) -> None:
        if exc.stage == "batch":
            self.error(
                "batch_dependent",
                f"{node.display}: {spec.type} {exc} — it must not slice, "
                "split or reduce dim 0, the batch",
                node.id,
                None,
                scope.block,
            )
            return
        if exc.stage == "build":
            self.error(
                "build_failed",
                f"{node.display}: {spec.type} cannot be built with these parameters: {exc}",
                node.id,
                None,
                scope.block,
            )
            return
        parts = []
        for port in scope.in_ports[node.id]:
            for edge, info in zip(
                scope.incoming[node.id].get(port.name, []), inputs.get(port.name, []), strict=False
            ):
                parts.append(f"{info} from {_source_text(scope, edge)}")
        verb = "combine" if len(parts) > 1 else "take"
        self.error(
            "shape_mismatch",
            f"{node.display}: {spec.type} cannot {verb} "
            f"{' and '.join(parts) or 'its input'}: {exc}",
            node.id,
            None,
            scope.block,
        )

    def infer_block(
        self,
        scope: Scope,
        node: Node,
        spec: NodeSpec,
        user: dict,
        inputs: dict[str, list[TensorInfo]],
        data,
    ) -> NodeResult | None:
        params = self.with_defaults(spec, user)
        name = params["block"]
        inner = self.blocks.get(name)
        if inner is None or self.too_large:  # too large: graph_too_large is reported already
            return None
        if name in self.recursive or any(
            e.block == name and e.severity == "error" for e in self.errors
        ):
            self.error(
                "block_invalid",
                f"{node.display}: block {name} has errors (see its definition)",
                node.id,
                "block",
                scope.block,
            )
            return None
        r = NodeResult(node, spec, params, inputs=inputs)
        current = {port: infos[0] for port, infos in inputs.items()}
        for _ in range(params["repeat"]):
            instance = self.infer_instance(name, inner, current, data)
            if isinstance(instance, GraphError):
                self.error(
                    instance.code,
                    f"{node.display} (block {name}, {instance.message}",
                    node.id,
                    None,
                    scope.block,
                )
                return None
            r.instances.append(instance)
            r.num_params += sum(n.num_params for n in instance.nodes.values())
            r.trainable_params += sum(n.trainable_params for n in instance.nodes.values())
            r.flops += sum(n.flops for n in instance.nodes.values())
            outs = instance.outputs
            if len(outs) == 1 and len(current) == 1:
                current = {next(iter(current)): next(iter(outs.values()))}
        if not node.trainable:
            r.trainable_params = 0
        r.outputs = dict(r.instances[-1].outputs)
        return r

    def infer_instance(
        self, name: str, inner: Scope, inputs: dict[str, TensorInfo], data
    ) -> ScopeResult | GraphError:
        key = (name, tuple(sorted(inputs.items())))
        if key in self.memo:
            return self.memo[key]
        before = len(self.errors)
        instance = self.infer_scope(inner, inputs, data)
        new = self.errors[before:]
        del self.errors[before:]
        for e in new:  # instance errors are re-reported on the Block node, not kept inside
            if e.severity == "error":
                self.failed[(e.block, e.node)] -= 1
        failure = next((e for e in new if e.severity == "error"), None)
        if failure is not None:
            inner_node = inner.nodes.get(failure.node)
            label = inner_node.display if inner_node else failure.node
            message = failure.message
            if inner_node and message.startswith(f"{label}: "):
                message = message[len(label) + 2 :]
            result: ScopeResult | GraphError = GraphError(failure.code, f"{label}): {message}")
        else:
            missing = [
                n
                for n in inner.nodes
                if inner.specs[n].type == "Output" and n not in instance.outputs
            ]
            if missing:
                result = GraphError("block_output_missing", f"{missing[0]}): output not computed")
            else:
                result = instance
                self.instances[name].append(instance)
        self.memo[key] = result
        return result

    # --- semantic checks over the whole graph ------------------------------------------------

    def check_losses(self, top: Scope, result: ScopeResult, data: DataInfo | None) -> None:
        for node_id, spec in top.specs.items():
            r = result.nodes.get(node_id)
            if spec.role != "loss" or r is None or "input" not in r.inputs:
                continue
            pred = r.inputs["input"][0]
            target_edges = top.incoming[node_id].get("target", [])
            target = r.inputs.get("target", [None])[0]
            from_labels = (
                data is not None
                and target_edges
                and top.specs[target_edges[0].source].role == "data"
                and target_edges[0].source_port == "y"
            )
            if spec.type in ("CrossEntropyLoss", "NLLLoss") and from_labels and data.num_classes:
                classes = pred.shape[1] if pred.rank >= 2 else None
                if isinstance(classes, int) and classes < data.num_classes:
                    self.error(
                        "class_count",
                        f"{r.label}: the model gives {classes} class scores "
                        f"{pred} but the dataset has {data.num_classes} classes — set the "
                        f"last layer's size to {data.num_classes}",
                        node_id,
                        "input",
                    )
                elif isinstance(classes, int) and classes > data.num_classes:
                    self.error(
                        "class_count",
                        f"{r.label}: the model gives {classes} class scores "
                        f"but the dataset has only {data.num_classes} classes",
                        node_id,
                        "input",
                        severity="warning",
                    )
            if (
                spec.type
                in (
                    "MSELoss",
                    "L1Loss",
                    "SmoothL1Loss",
                    "HuberLoss",
                    "BCELoss",
                    "BCEWithLogitsLoss",
                )
                and target is not None
                and pred.shape != target.shape
            ):
                self.error(
                    "shape_mismatch",
                    f"{r.label}: {spec.type} compares input {pred} with "
                    f"target {target}; they must have the same shape (torch would "
                    "broadcast them silently and train the wrong thing)",
                    node_id,
                    "target",
                )

    def check_trainable(self, top: Scope, result: ScopeResult) -> None:
        if any(e.severity == "error" for e in self.errors):
            return  # totals are incomplete while other problems stand
        optimizer = next((n for n, s in top.specs.items() if s.role == "optimizer"), None)
        trainable = sum(
            r.trainable_params for r in result.nodes.values() if r.spec.role in MODEL_ROLES
        )
        if optimizer is not None and trainable == 0:
            self.error(
                "nothing_to_train",
                f"{top.nodes[optimizer].display}: the model has no "
                "trainable parameters (every layer is frozen or has no weights)",
                optimizer,
                "loss",
            )

    def check_unused(self, top: Scope) -> None:
        preds: dict[str, list[str]] = defaultdict(list)
        for e in top.edges:
            preds[e.target].append(e.source)
        useful: set[str] = set()
        stack = [n for n, s in top.specs.items() if s.role in ("loss", "optimizer", "scheduler")]
        while stack:
            n = stack.pop()
            if n in useful:
                continue
            useful.add(n)
            stack.extend(preds[n])
        for node_id, spec in top.specs.items():
            if spec.role in MODEL_ROLES and node_id not in useful:
                self.error(
                    "unused_node",
                    f"{top.nodes[node_id].display}: its output reaches no "
                    "loss, so it is not part of the trained model",
                    node_id,
                    severity="warning",
                )


def _default_call(spec: NodeSpec):
    if spec.role in ("layer", "custom", "loss"):

        def call(params, ins, module):
            args = ", ".join(
                name for port in spec.input_ports(params) for name in ins.get(port.name, [])
            )
            return f"{module}({args})"

        return call
    raise AssertionError(f"{spec.type} has no forward expression")


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


__all__ = ["Analysis", "NodeResult", "Scope", "ScopeResult", "analyze", "validate"]
