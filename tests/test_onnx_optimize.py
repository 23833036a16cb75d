"""write_onnx's clean-up (server/exports/onnx_optimize.py) is torch's own optimize() less the
batch-norm folding: eval batch norms stay BatchNormalization ops with their four tensors, every
other op is as torch's default export writes it, and onnxruntime still fuses the norms away."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from server.exports.onnx_export import write_onnx

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.norm = torch.nn.BatchNorm2d(8)
        self.up = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.norm2 = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        h = self.norm2(self.up(torch.relu(self.norm(self.conv(x)))))
        return self.fc(h.mean(dim=(2, 3)))


class SequenceNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(11, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.fc = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(torch.nn.functional.gelu(self.norm(self.embed(x))).mean(dim=1))


def torch_default(model, x, path) -> None:
    program = torch.export.export(
        model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), strict=False
    )
    torch.onnx.export(program, (x,), str(path), dynamo=True, input_names=["x"], verbose=False)


def ops(path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def test_batch_norms_are_kept_with_their_statistics(tmp_path):
    torch.manual_seed(0)
    model = ConvNet().eval()
    for norm in (model.norm, model.norm2):
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 1.5)
    x = torch.randn(4, 3, 6, 6)
    kept, folded = tmp_path / "kept.onnx", tmp_path / "folded.onnx"
    write_onnx(model, (x,), ["x"], ["out"], kept)
    torch_default(model, x, folded)
    assert ops(folded)["BatchNormalization"] == 0  # what torch's default optimizer does
    assert ops(kept)["BatchNormalization"] == 2
    assert ops(kept) - Counter({"BatchNormalization": 2}) == ops(folded)
    initializers = {
        t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(kept)).graph.initializer
    }
    means = [v for v in initializers.values() if v.shape == (8,)]
    assert any(np.allclose(v, model.norm.running_mean.numpy()) for v in means)
    session = ort.InferenceSession(str(kept), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(x).numpy()
    assert float(np.abs(session.run(None, {"x": x.numpy()})[0] - expected).max()) <= 1e-5


def test_onnxruntime_fuses_the_kept_batch_norms(tmp_path):
    x = torch.randn(2, 3, 6, 6)
    kept = tmp_path / "kept.onnx"
    write_onnx(ConvNet().eval(), (x,), ["x"], ["out"], kept)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(kept), options, providers=["CPUExecutionProvider"])
    assert ops(tmp_path / "optimized.onnx")["BatchNormalization"] == 0


def test_without_batch_norms_the_graph_is_torchs_default(tmp_path):
    x = torch.randint(0, 11, (4, 7))
    model = SequenceNet().eval()
    ours, default = tmp_path / "ours.onnx", tmp_path / "default.onnx"
    write_onnx(model, (x,), ["x"], ["out"], ours)
    torch_default(model, x, default)
    assert ops(ours) == ops(default)


def test_a_cached_export_of_the_old_format_is_not_served(tmp_path):
    """model.onnx files cached before batch norms were kept are exported again."""
    import json
    from types import SimpleNamespace

    from server.exports.onnx_export import EXPORT_FORMAT, cached_report, onnx_paths

    rm = SimpleNamespace(files=SimpleNamespace(folder=tmp_path, fingerprint="abc"))
    model_path, report_path = onnx_paths(tmp_path)
    model_path.parent.mkdir()
    model_path.write_bytes(b"onnx")
    report_path.write_text(json.dumps({"fingerprint": "abc", "opset": 18}))
    assert cached_report(rm) is None
    report_path.write_text(json.dumps({"fingerprint": "abc", "format": EXPORT_FORMAT}))
    assert cached_report(rm) == {"fingerprint": "abc", "format": EXPORT_FORMAT}


def test_an_optimizer_that_fails_falls_back_to_torchs(tmp_path, monkeypatch):
    """onnxscript's passes moved in some release: the export still works, batch norms folded."""
    from server.exports import onnx_export

    def broken(model):
        raise AttributeError("no such pass")

    monkeypatch.setattr(onnx_export, "optimize_keeping_batch_norm", broken)
    x = torch.randn(2, 3, 6, 6)
    write_onnx(ConvNet().eval(), (x,), ["x"], ["out"], tmp_path / "m.onnx")
    assert ops(tmp_path / "m.onnx")["BatchNormalization"] == 0 and ops(tmp_path / "m.onnx")["Conv"]
