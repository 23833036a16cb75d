"""What analysis hands to its callers: the checked scopes, each node's inferred result, and the
whole `Analysis` (errors first, then what could be inferred)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..catalog import NodeSpec, Port
from ..datasets import DataInfo
from ..document import Edge, GraphDocument, Node
from ..errors import GraphError
from ..shapes import TensorInfo

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
