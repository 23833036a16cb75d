"""How the model meets the data and the losses: which Dataset ports the forward takes, which
node outputs it returns (those the losses read, in document order; without a loss, those no
node reads) and which nodes it needs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .analysis import MODEL_ROLES, Analysis, Scope


@dataclass(frozen=True)
class ModelInterface:
    """How the model meets the data and the losses."""

    inputs: tuple[str, ...]  # Dataset ports the forward takes, e.g. ("x",)
    outputs: tuple[tuple[str, str], ...]  # (node id, port) returned by forward, in order
    nodes: tuple[str, ...]  # model nodes needed for the outputs, topological order


def model_interface(analysis: Analysis) -> ModelInterface:
    scope = analysis.top.scope
    outputs: list[tuple[str, str]] = []
    for node_id in scope.nodes:  # document order of losses → deterministic output order
        spec = scope.specs[node_id]
        if spec.role != "loss":
            continue
        for port in scope.in_ports[node_id]:
            for e in scope.incoming[node_id].get(port.name, []):
                if (
                    scope.specs[e.source].role in MODEL_ROLES
                    and (e.source, e.source_port) not in outputs
                ):
                    outputs.append((e.source, e.source_port))
    if not any(scope.specs[n].role == "loss" for n in scope.nodes):
        outputs = _sinks(scope)
    needed = _ancestors(scope, {n for n, _ in outputs})
    nodes = tuple(n for n in scope.order if n in needed and scope.specs[n].role in MODEL_ROLES)
    used_inputs = {
        e.source_port
        for e in scope.edges
        if e.target in needed and scope.specs[e.source].role == "data"
    }
    inputs = tuple(p for p in ("x", "y") if p in used_inputs)
    return ModelInterface(inputs, tuple(outputs), nodes)


def _sinks(scope: Scope) -> list[tuple[str, str]]:
    """Without a loss (a model-only graph, analyze(..., model_only=True)) the model returns
    the first output of every model node that no other node reads, in graph order."""
    read = {e.source for e in scope.edges}
    return [
        (n, scope.out_ports[n][0].name)
        for n in scope.order
        if scope.specs[n].role in MODEL_ROLES and n not in read and scope.out_ports[n]
    ]


def _ancestors(scope: Scope, targets: set[str]) -> set[str]:
    preds: dict[str, list[str]] = defaultdict(list)
    for e in scope.edges:
        preds[e.target].append(e.source)
    seen: set[str] = set()
    stack = list(targets)
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(preds[n])
    return seen
