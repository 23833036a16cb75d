"""Importers: existing models into graph documents (CLI only, never reachable from the web).

`import-module` traces a PyTorch nn.Module with torch.fx; `import-onnx` reads an ONNX graph. Both
map what they find onto catalog nodes (the catalog is the one source of node types and their
params), keep what has no catalog equivalent as clearly marked opaque nodes, lay the graph out
and can carry the weights, renamed to the generated module's keys.
"""

from __future__ import annotations

from .graph import ImportedGraph, ImportFailed, to_document
from .onnx_model import import_onnx
from .torch_module import import_module
from .weights import carry_weights

__all__ = [
    "ImportFailed",
    "ImportedGraph",
    "carry_weights",
    "import_module",
    "import_onnx",
    "to_document",
]
