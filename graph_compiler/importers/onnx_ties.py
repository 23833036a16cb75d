"""Weight tying brought back: a Linear whose weight is an Embedding's table (GPT's head,
`self.head.weight = self.tok_emb.weight`) is imported with `tie_weight` naming that Embedding.

An ONNX file cannot say that two tensors were one parameter: torch's exporter writes the shared
tensor once for the Gather and, for the head, either that same initializer or a constant folded
from it (its transpose). Both are recognised by value: the head's weight, in torch's (out, in)
layout, bitwise equal to the table. Two separately learned tensors are not bitwise equal in
practice; were they, the tied graph still computes the same outputs, and counts the tensor once
as the exported model (which held it once) did. The Linear keeps its weight in the state too:
the tied module's state_dict names the shared tensor under both nodes.
"""

from __future__ import annotations

import torch

from .graph import ImportedGraph


def tie_heads(graph: ImportedGraph, state: dict[str, torch.Tensor]) -> None:
    tables = [
        (node.id, state[f"{node.id}.weight"])
        for node in graph.nodes
        if node.type == "Embedding" and f"{node.id}.weight" in state
    ]
    for node in graph.nodes:
        weight = state.get(f"{node.id}.weight")
        if node.type != "Linear" or weight is None or "tie_weight" in node.params:
            continue
        tied = next(
            (
                name
                for name, table in tables
                if table.shape == weight.shape and torch.equal(table, weight)
            ),
            None,
        )
        if tied is not None:
            node.params["tie_weight"] = tied
            graph.notes.append(f"{node.id}: its weight is {tied}'s table, tied again (tie_weight)")
