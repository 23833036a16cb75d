"""`torchloom import-module file.py:Class`: an nn.Module traced with torch.fx, as a graph.

Trusted local code only: the file is imported and the class instantiated (the CLI's job; the
server never calls this). The model is traced symbolically, run once on an example input to
learn every shape, and each traced node becomes a catalog node: modules by their class
(lookup.py), functions and methods by name, and the structural ops (add, cat, view/reshape,
flatten, indexing, ...) by the merge nodes. What has no catalog equivalent is kept as an opaque
node that names it.

The rooms, in the order they run: module_loading.py (the file and class, --args), fx_tracing.py
(trace and shapes), fx_converter.py (fx nodes → graph nodes, dispatching to fx_modules.py,
fx_functions.py, fx_patterns.py (expand, arange, scaled_dot_product_attention), fx_masks.py
(causal masks) and the opaque fallback fx_opaque.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .fx_converter import Converter
from .fx_tracing import trace
from .graph import ImportedGraph
from .module_inputs import ExampleInput, as_inputs
from .module_loading import instantiate, load_class

__all__ = ["ExampleInput", "import_module", "instantiate", "load_class", "trace"]


def import_module(
    model: nn.Module,
    inputs: Sequence[int] | Sequence[ExampleInput],
    name: str | None = None,
) -> tuple[ImportedGraph, dict[str, torch.Tensor]]:
    """(the graph, the model's state_dict under its original keys). `inputs`: one shape (a
    float32 input) or the example inputs (module_inputs.py), forward's first one the graph's x."""
    given = as_inputs(inputs)
    was_training = model.training
    model.eval()
    try:
        gm = trace(model, given)
        graph = ImportedGraph(name or type(model).__name__, given[0].shape, given[0].dtype)
        Converter(gm, graph).run()
    finally:
        model.train(was_training)
    graph.notes.insert(0, f"Imported from {type(model).__module__}.{type(model).__qualname__}.")
    return graph, dict(model.state_dict())
