"""Weights carried into an imported graph: the original state_dict under the generated module's
key names (`layer1.0.conv1.weight` → `layer1_0_conv1.weight`), complete or refused."""

from __future__ import annotations

import torch

from ..build import CompiledGraph
from ..weights import compare, node_owners
from .graph import ImportedGraph, ImportFailed


def carry_weights(
    compiled: CompiledGraph, graph: ImportedGraph, state: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(the state_dict for the compiled model, the original keys left behind)."""
    carried: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for node in graph.nodes:
        if node.module_path is None:
            continue
        attr = compiled.attributes[node.id]
        prefix = node.module_path + "."
        for key, value in state.items():
            if key == node.module_path:  # a Parameter node: the tensor is the attribute itself
                carried[attr] = value.detach().clone().contiguous()
                used.add(key)
            elif key.startswith(prefix):
                carried[f"{attr}.{key[len(prefix) :]}"] = value.detach().clone().contiguous()
                used.add(key)
    expected = compiled.instantiate(device="meta").state_dict()
    report = compare(expected, carried, node_owners(compiled.attributes))
    if not report.exact:
        raise ImportFailed("the weights do not map onto the imported graph: " + report.summary())
    return carried, [k for k in state if k not in used]
