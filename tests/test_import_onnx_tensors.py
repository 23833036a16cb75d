"""`torchloom import-onnx` on the ops of causal attention and learned tensors: a causal
TransformerEncoderLayer export re-imports as the layer with causal=True; a class token expanded to
the batch, a position embedding added to activations and a Range of the input's length become
Parameter / Expand / Add / PositionIds nodes; a ViT-style torchloom export re-imports with the
same outputs and parameter count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
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


def _types(document: dict) -> list[str]:
    return [n["type"] for n in document["nodes"]]


@pytest.mark.parametrize("zero_cls", [False, True])
def test_vit_mini_export_reimports_with_its_learned_tensors(tmp_path, zero_cls):
    """tests/learned_tensors.py's ViT: class token expanded to the batch, position embedding
    added, encoder layer, class-token head. A zero class token (its default init) is still a
    Parameter, not an initial state."""
    from tests.learned_tensors import vit

    model = build_module(vit(), seed=0).eval()
    with torch.no_grad():
        model.cls_token.copy_(
            torch.zeros_like(model.cls_token) if zero_cls else torch.randn(1, 1, 16)
        )
        model.pos_embed.normal_()
    x = torch.randn(3, 1, 8, 8)
    path = export(model, x, tmp_path / "vit.onnx")
    document, rebuilt, weights = reimport(path, tmp_path)
    types = _types(document)
    assert types.count("Parameter") == 2 and "Expand" in types and "Add" in types
    assert "TransformerEncoderLayer" in types
    shapes = sorted(n["params"]["shape"] for n in document["nodes"] if n["type"] == "Parameter")
    assert shapes == [[1, 1, 16], [1, 5, 16]]
    assert sum(t.numel() for t in weights.values()) == sum(p.numel() for p in model.parameters())
    for batch in (x, torch.randn(1, 1, 8, 8)):
        with torch.no_grad():
            want, got = model(batch), rebuilt(batch)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        np.testing.assert_allclose(got.numpy(), runtime(path, batch), rtol=0, atol=1e-5)


def test_position_table_added_to_activations_is_a_parameter(tmp_path):
    """tests/learned_tensors.py's positions graph: the exporter folds PositionIds → Embedding
    into one (1, T, D) initializer added to the activations → Parameter + Add."""
    from tests.learned_tensors import positions

    model = build_module(positions(), seed=0).eval()
    x = torch.randn(4, 64)
    path = export(model, x, tmp_path / "positions.onnx")
    document, rebuilt, weights = reimport(path, tmp_path)
    (param,) = [n for n in document["nodes"] if n["type"] == "Parameter"]
    assert param["params"]["shape"] == [1, 64, 8]
    assert sum(t.numel() for t in weights.values()) == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=1e-5)


def _range_model(tmp_path: Path, unsqueeze: bool) -> Path:
    """x (B, 6, 4) + table[Range(0, Shape(x)[1], 1)] (Unsqueeze 0 or not), mean over time."""
    from onnx import TensorProto, helper, numpy_helper

    table = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    ids = "ids1" if unsqueeze else "ids"
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["length"], axis=0),
        helper.make_node("Range", ["zero", "length", "step"], ["ids"]),
        *([helper.make_node("Unsqueeze", ["ids", "axes0"], ["ids1"])] if unsqueeze else []),
        helper.make_node("Gather", ["table", ids], ["pos"], axis=0),
        helper.make_node("Add", ["x", "pos"], ["h"]),
        helper.make_node("ReduceMean", ["h", "axes1"], ["y"], keepdims=0),
    ]
    consts = {
        "one": np.array(1, np.int64),
        "zero": np.array(0, np.int64),
        "step": np.array(1, np.int64),
        "axes0": np.array([0], np.int64),
        "axes1": np.array([1], np.int64),
        "table": table,
    }
    graph = helper.make_graph(
        nodes,
        "positions",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 6, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 4])],
        [numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / "range.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("unsqueeze", [False, True])
def test_range_of_a_shape_dim_is_position_ids(tmp_path, unsqueeze):
    path = _range_model(tmp_path, unsqueeze)
    document, rebuilt, weights = reimport(path, tmp_path)
    (ids,) = [n for n in document["nodes"] if n["type"] == "PositionIds"]
    assert ids["params"].get("batch_dim", True) is unsqueeze
    assert "Embedding" in _types(document) and "Parameter" not in _types(document)
    assert sum(t.numel() for t in weights.values()) == 40
    x = torch.randn(3, 6, 4)
    with torch.no_grad():
        got = rebuilt(x).numpy()
    np.testing.assert_allclose(got, runtime(path, x), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("norm_first", "buffer"), [(False, False), (True, False), (False, True)])
def test_torch_causal_transformer_encoder_becomes_causal_layers(tmp_path, norm_first, buffer):
    """nn.TransformerEncoder called with the square subsequent mask (is_causal=True), exported
    by torch's dynamo exporter with a dynamic batch: one causal layer per layer. The mask made
    in forward is a Trilu of the shape; a mask buffer (is_causal unset) is a constant added to
    the scores."""
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(
        16, 4, 24, 0.1, "gelu", batch_first=True, norm_first=norm_first
    )
    encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.encoder = torch.nn.Linear(3, 16), encoder
            self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(6))

        def forward(self, x):
            h = self.embed(x)
            mask = self.mask if buffer else nn_mask(h.size(1))
            return self.encoder(h, mask=mask, is_causal=not buffer).mean(dim=1)

    nn_mask = torch.nn.Transformer.generate_square_subsequent_mask
    model = Net().eval()
    x = torch.randn(4, 6, 3)
    program = torch.export.export(
        model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), strict=False
    )
    path = tmp_path / "causal_encoder.onnx"
    torch.onnx.export(program, (x,), str(path), dynamo=True, input_names=["x"], verbose=False)
    trilu = sum(n.op_type == "Trilu" for n in onnx.load(str(path)).graph.node)
    assert trilu == (0 if buffer else 2)
    document, rebuilt, weights = reimport(path, tmp_path)
    layers = [n for n in document["nodes"] if n["type"] == "TransformerEncoderLayer"]
    assert len(layers) == 2 and all(n["params"]["causal"] is True for n in layers)
    assert all(n["params"].get("norm_first", False) is norm_first for n in layers)
    assert sum(t.numel() for t in weights.values()) == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=1e-5)


def test_vit_mini_run_exported_by_the_server_reimports(tmp_path):
    """The same ViT as a finished run, exported through the REST endpoint (model.onnx)."""
    from tests.learned_tensors import vit
    from tests.run_folders import fabricated_run
    from tests.server_app import AUTH, make_app

    def perturb(model: torch.nn.Module) -> None:
        with torch.no_grad():
            model.cls_token.normal_()
            model.pos_embed.normal_()

    app = make_app(tmp_path / "app")
    _, _, model = fabricated_run(app, "00000000000000c1", vit(), adjust=perturb)
    r = app.test_client().get("/api/runs/00000000000000c1/export/model.onnx", headers=AUTH)
    assert r.status_code == 200, r.get_json(silent=True)
    path = tmp_path / "vit_run.onnx"
    path.write_bytes(r.data)
    document, rebuilt, weights = reimport(path, tmp_path)
    assert _types(document).count("Parameter") == 2
    assert sum(t.numel() for t in weights.values()) == sum(p.numel() for p in model.parameters())
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model.eval()(x), rtol=0, atol=1e-5)
