"""`torchloom import-onnx` on the ops of causal attention and learned tensors: a causal
TransformerEncoderLayer export re-imports as the layer with causal=True; a class token expanded to
the batch, a position embedding added to activations and a Range of the input's length become
Parameter / Expand / Add / PositionIds nodes; a ViT-style torchloom export re-imports with the
same outputs and parameter count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from graph_compiler import build_module, compile_graph
from graph_compiler.cli import main

ort = pytest.importorskip("onnxruntime")

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def export(model: torch.nn.Module, x: torch.Tensor, path: Path) -> Path:
    """The model through the server's own exporter (torch.export with a dynamic batch)."""
    from server.exports.onnx_export import _export

    _export(None, model, {"x": x}, ["x"], ["logits"], path)
    return path


def reimport(path: Path, tmp_path: Path) -> tuple[dict, torch.nn.Module, dict]:
    """(the imported document, its module with the carried weights, the weights)."""
    out = tmp_path / "graph.json"
    assert main(["import-onnx", str(path), "-o", str(out)]) == 0
    document = json.loads(out.read_text())
    weights = load_file(str(tmp_path / "graph.safetensors"))
    rebuilt = compile_graph(document).instantiate()
    rebuilt.load_state_dict(weights)
    return document, rebuilt.eval(), weights


def runtime(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.numpy()})[0]


def test_causal_encoder_layer_reimports_as_the_causal_layer(tmp_path):
    from tests.test_attention import ENCODER, T, _doc

    model = build_module(_doc(ENCODER, {"in": "emb"}), seed=0).eval()
    x = torch.randn(4, T, 1)
    path = export(model, x, tmp_path / "causal.onnx")
    document, rebuilt, weights = reimport(path, tmp_path)
    (layer,) = [n for n in document["nodes"] if n["type"] == "TransformerEncoderLayer"]
    assert layer["params"]["causal"] is True
    with torch.no_grad():
        want, got = model(x), rebuilt(x)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got.numpy(), runtime(path, x), rtol=0, atol=1e-5)
    assert sum(t.numel() for t in weights.values()) == sum(p.numel() for p in model.parameters())
