"""Weights carried into an imported graph: the original state_dict under the generated module's
key names (`layer1.0.conv1.weight` → `layer1_0_conv1.weight`), complete or refused."""

from __future__ import annotations

import torch

from ..analysis import Scope
from ..build import CompiledGraph
from ..codegen import _Generator
from ..weights import compare, node_owners
from .graph import ImportedGraph, ImportFailed


def carry_weights(
    compiled: CompiledGraph | None,
    graph: ImportedGraph,
    state: dict[str, torch.Tensor],
    scope: Scope | None = None,
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(the state_dict for the compiled model, the original keys left behind). Without a
    compiled graph (opaque nodes stop shape inference) the keys follow the generated module's
    names for `scope` unchecked: they are checked when the rewritten graph loads them."""
    attributes = compiled.attributes if compiled else _Generator.node_names(scope)
    carried: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for node in graph.nodes:
        if node.module_path is None:
            continue
        attr = attributes[node.id]
        prefix = node.module_path + "."
        for key, value in state.items():
            if key == node.module_path:  # a Parameter node: the tensor itself
                carried[attr] = value.detach().clone().contiguous()
                used.add(key)
            elif key.startswith(prefix):
                carried[f"{attr}.{key[len(prefix) :]}"] = value.detach().clone().contiguous()
                used.add(key)
    if compiled is None:
        return carried, [k for k in state if k not in used]
    expected = compiled.instantiate(device="meta").state_dict()
    report = compare(expected, carried, node_owners(compiled.attributes))
    if not report.exact:
        raise ImportFailed("the weights do not map onto the imported graph: " + report.summary())
    return carried, [k for k in state if k not in used]
