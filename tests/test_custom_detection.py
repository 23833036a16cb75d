"""has_custom_code: what decides that user code is involved (no CUDA graph capture, analysis and
model loading outside the web process) sees custom nodes inside blocks too."""

from __future__ import annotations

from graph_compiler.custom import has_custom_code
from tests.helpers import chain, mlp


def test_custom_nodes_are_found_at_top_level_and_inside_blocks():
    assert not has_custom_code(mlp())
    top = chain("digits", [("cl", "CustomLayer", {"code": "return x", "parameters": []})])
    assert has_custom_code(top)
    nested = mlp()
    nested["blocks"] = {
        "B": {"nodes": [{"id": "l", "type": "CustomLoss", "params": {}}], "edges": []}
    }
    assert has_custom_code(nested)


def test_malformed_documents_are_not_an_error():
    assert not has_custom_code({})
    assert not has_custom_code({"nodes": ["x", 3, None], "blocks": {"B": "nope"}})
