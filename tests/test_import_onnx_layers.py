"""import-onnx of the layers added for issue 13: torch's exports of 3-D convolutions and pools,
HardSigmoid and a global max pool re-import as catalog nodes, equal to onnxruntime's outputs."""

from __future__ import annotations

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
