"""Parameter checks: each node's user values against its catalog entry (unknown names, values,
required ones), and the defaults every later pass resolves them with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..catalog import REQUIRED, NodeSpec
from ..document import Node
from .context import AnalysisContext, suggest
from .result import Scope


def check_params(ctx: AnalysisContext, node: Node, spec: NodeSpec, block) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in node.params.items():
        p = spec.param(name)
        if p is None:
            options = [q.name for q in spec.params]
            ctx.error(
                "param_unknown",
                f"{node.display}: {spec.type} has no parameter {name!r}{suggest(name, options)}",
                node.id,
                name,
                block,
            )
            continue
        norm, problem = p.check(value)
        if problem:
            code, text = problem
            ctx.error(code, f"{node.display}: {name} {text}", node.id, name, block)
            continue
        out[name] = norm
    for p in spec.params:
        if p.required and p.name not in out and p.name not in node.params:
            ctx.error(
                "param_required",
                f"{node.display}: {spec.type} needs {p.name} ({p.description.rstrip('.')})",
                node.id,
                p.name,
                block,
            )
    return out


def with_defaults(spec: NodeSpec, user: Mapping[str, Any]) -> dict[str, Any]:
    # defaults go through the same normalization as user values (JSON → hashable tuples)
    merged = {p.name: p.check(p.default)[0] for p in spec.params if p.default is not REQUIRED}
    merged.update(user)
    return merged


def resolved_plain(scope: Scope, node_id: str) -> dict[str, Any]:
    return with_defaults(scope.specs[node_id], scope.params[node_id])
