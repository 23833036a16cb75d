"""A causal TransformerEncoderLayer exports to ONNX through the server's own exporter
(torch.export with a dynamic batch, then the dynamo exporter): onnxruntime matches torch at the
whole batch and at batch 1, and the mask survived (the same weights unmasked give another output).
"""

from __future__ import annotations

import pytest
import torch

from graph_compiler import build_module
from tests.test_attention import ENCODER, T, _doc

pytest.importorskip("onnxruntime")


def test_causal_encoder_layer_exports_to_onnx(tmp_path):
    import onnxruntime as ort

    from server.exports.onnx_export import TOLERANCE, _check_and_compare, _export

    model = build_module(_doc(ENCODER, {"in": "emb"}), seed=0).eval()
    unmasked = build_module(_doc((ENCODER[0], {**ENCODER[1], "causal": False}), {"in": "emb"}))
    unmasked.load_state_dict(model.state_dict())
    unmasked.eval()
    x = torch.randn(4, T, 1)
    path = tmp_path / "model.onnx"
    _export(None, model, {"x": x}, ["x"], ["logits"], path)
    report = _check_and_compare(path, model, {"x": x}, ["x"], ["logits"])
    assert report["within_tolerance"] and report["max_abs_diff"] <= TOLERANCE, report
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(["logits"], {"x": x.numpy()})[0])
    with torch.no_grad():
        torch.testing.assert_close(got, model(x), rtol=0, atol=1e-5)
        assert (got - unmasked(x)).abs().max() > 1e-2
