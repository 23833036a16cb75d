"""The exported model.onnx names its dynamic batch axis `batch` (not torch's symbol, e.g.
`s77`), also for a token model's (B, T) int64 input, and on the outputs as well."""

from __future__ import annotations

import onnx
import torch

from server.exports.onnx_export import write_onnx


def _dim_names(value_infos) -> dict[str, list[str | int]]:
    return {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in value_infos
    }


class _Tokens(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(50, 8)
        self.head = torch.nn.Linear(8, 50)

    def forward(self, x):
        return self.head(self.emb(x))


def test_image_model_batch_axis_is_named_batch(tmp_path):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)).eval()
    path = tmp_path / "m.onnx"
    write_onnx(model, (torch.randn(4, 3, 4),), ["x"], ["out"], path)
    graph = onnx.load(str(path)).graph
    assert _dim_names(graph.input) == {"x": ["batch", 3, 4]}
    assert _dim_names(graph.output) == {"out": ["batch", 3]}


def test_token_model_batch_axis_is_named_batch(tmp_path):
    path = tmp_path / "m.onnx"
    write_onnx(_Tokens().eval(), (torch.zeros(2, 6, dtype=torch.int64),), ["x"], ["out"], path)
    graph = onnx.load(str(path)).graph
    assert _dim_names(graph.input) == {"x": ["batch", 6]}
    assert _dim_names(graph.output) == {"out": ["batch", 6, 50]}
    symbols = {d.dim_param for v in graph.value_info for d in v.type.tensor_type.shape.dim}
    assert symbols <= {"", "batch"}  # no torch symbol (s77) left inside either


def test_a_second_dynamic_input_axis_is_named_seq():
    from onnx import TensorProto, helper

    from server.exports.onnx_axes import rename_dynamic_axes

    x = helper.make_tensor_value_info("x", TensorProto.INT64, ["s77", "s12"])
    mid = helper.make_tensor_value_info("mid", TensorProto.FLOAT, ["s77", "s12*2"])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["s77", "s12", 5])
    graph = helper.make_graph([], "g", [x], [out], value_info=[mid])
    model = helper.make_model(graph)
    assert rename_dynamic_axes(model) == {"s77": "batch", "s12": "seq"}
    assert _dim_names(model.graph.input) == {"x": ["batch", "seq"]}
    assert _dim_names(model.graph.value_info) == {"mid": ["batch", "seq*2"]}
    assert _dim_names(model.graph.output) == {"out": ["batch", "seq", 5]}
