"""import-onnx of the layers added for issue 13: torch's exports of 3-D convolutions and pools,
HardSigmoid and a global max pool re-import as catalog nodes, equal to onnxruntime's outputs."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from tests.test_import_onnx import _compare_with_runtime

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


class Volumes(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose3d(2, 3, 2, stride=2)
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool3d(2)
        self.avg = nn.AvgPool3d(2, stride=1, padding=1)
        self.gmax = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(4, 3)

    def forward(self, x):  # (B, 2, 2, 3, 3) → up (B, 3, 4, 6, 6) → avg (B, 4, 3, 4, 4)
        h = self.avg(self.pool(F.hardsigmoid(self.conv(self.up(x)))))
        h = self.gmax(h.flatten(2, 3))  # (B, 4, 12, 4) → (B, 4, 1, 1)
        return self.head(h.flatten(1))


def test_3d_layers_hardsigmoid_and_global_max_pool(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(4, 2, 2, 3, 3)
    program = torch.export.export(
        Volumes().eval(), (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
        strict=False,
    )  # fmt: skip
    path = tmp_path / "volumes.onnx"
    torch.onnx.export(program, (x,), str(path), dynamo=True, input_names=["x"], verbose=False)
    types, diff = _compare_with_runtime(path, tmp_path, x.numpy())
    assert diff <= 1e-5, diff
    wanted = {"ConvTranspose3d", "Conv3d", "MaxPool3d", "AvgPool3d", "Hardsigmoid"}
    assert wanted | {"AdaptiveMaxPool2d"} <= set(types)
    weights = load_file(str(tmp_path / "graph.safetensors"))
    assert sum(t.numel() for t in weights.values()) == sum(
        p.numel() for p in Volumes().parameters()
    )


class Gates(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 16)
        self.glu = nn.GLU()
        self.head = nn.Linear(5, 2)

    def forward(self, x):  # (B, 6) → GLU (B, 8) → split 3 + 5 → (B, 5)
        a, b = torch.split(self.glu(self.fc(x)), [3, 5], dim=1)
        return self.head(b * torch.sigmoid(torch.cat([a, a[:, :2]], dim=1)))


def test_glu_and_split_become_split_nodes(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(4, 6)
    program = torch.export.export(
        Gates().eval(), (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
        strict=False,
    )  # fmt: skip
    path = tmp_path / "gates.onnx"
    torch.onnx.export(program, (x,), str(path), dynamo=True, input_names=["x"], verbose=False)
    types, diff = _compare_with_runtime(path, tmp_path, x.numpy())
    assert diff <= 1e-5, diff
    assert types.count("Split") == 2 and "CustomLayer" not in types


class Norms(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 8)
        self.affine = nn.RMSNorm(8, eps=1e-3)
        self.plain = nn.RMSNorm(8, elementwise_affine=False)  # eps None: float32's epsilon
        self.head = nn.Linear(8, 3)

    def forward(self, x):  # (B, 5, 6): norms over the last dim of a sequence, then its mean
        h = self.affine(self.fc(x))
        return self.head(self.plain(h * h).mean(dim=1))


def test_torch_rms_norm_becomes_one_rms_norm_node(tmp_path):
    torch.manual_seed(0)
    model = Norms().eval()
    with torch.no_grad():
        model.affine.weight.uniform_(0.5, 1.5)
    x = torch.randn(4, 5, 6)
    program = torch.export.export(
        model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), strict=False
    )
    path = tmp_path / "norms.onnx"
    torch.onnx.export(program, (x,), str(path), dynamo=True, input_names=["x"], verbose=False)
    types, diff = _compare_with_runtime(path, tmp_path, x.numpy())
    assert diff <= 1e-5, diff
    assert types.count("RMSNorm") == 2 and "CustomLayer" not in types
    document = json.loads((tmp_path / "graph.json").read_text())
    norms = [n["params"] for n in document["nodes"] if n["type"] == "RMSNorm"]
    assert norms == [{"eps": 1e-3}, {"elementwise_affine": False}]
    weights = load_file(str(tmp_path / "graph.safetensors"))
    assert sum(t.numel() for t in weights.values()) == sum(p.numel() for p in model.parameters())
