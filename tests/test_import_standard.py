"""The repository's standard definitions (tests/import_models.py, written as torchvision and
the reference implementations write them; no torchvision): MobileNetV2, a U-Net, ViT-Tiny with
class token and position embedding, an LSTM text classifier on int64 tokens and
nn.TransformerEncoder import with identical parameter counts and outputs, weights carried, and
their ONNX exports re-import within 1e-5."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from graph_compiler import analyze, compile_graph
from graph_compiler.cli import main
from graph_compiler.importers.module_inputs import example, parse_inputs
from tests import import_models

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

MODELS = Path(import_models.__file__)
FIGURES: dict[str, dict] = {}


def run_cli(*argv: str) -> int:
    return main(["import-module", *argv])


STANDARD = {  # the repository's standard definitions: --input-shape, args, parameter count
    "MobileNetV2": ("2,3,64,64", None, 3_504_872),  # torchvision's count at 1000 classes
    "UNet": ("2,3,32,32", {"base": 8}, 486_562),
    "ViTTiny": ("2,3,16,16", None, 27_946),
    "LSTMTextClassifier": ("3,20:int64", None, 4_907),
    "PlainTransformerEncoder": ("2,6,32", None, 17_088),
    "ScalarArithmetic": ("2,8", None, 99),  # Scale nodes: torch writes Mul / Add / Sub / Neg
}


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_standard_definitions_import_and_their_onnx_exports_reimport(name, tmp_path, capsys):
    """import-module: the same parameter count and outputs (≤ 1e-6), weights carried; the
    imported graph's model exported to ONNX the way runs are (write_onnx) re-imports with
    import-onnx within 1e-5, the same parameter count again."""
    from server.exports.onnx_export import write_onnx

    spec, args, count = STANDARD[name]
    torch.manual_seed(0)
    original = getattr(import_models, name)(**(args or {}))
    for m in original.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    original.eval()
    assert sum(p.numel() for p in original.parameters()) == count
    torch.save(original.state_dict(), tmp_path / "original.pt")
    argv = [f"{MODELS}:{name}", "--input-shape", spec, "--weights", str(tmp_path / "original.pt")]
    argv += ["-o", str(tmp_path / "graph.json"), "--json"] + (
        ["--args", json.dumps(args)] if args else []
    )
    assert run_cli(*argv) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["opaque"] == [] and summary["params"] == count

    def rebuilt(graph: Path, weights: Path) -> torch.nn.Module:
        document = json.loads(graph.read_text())
        model_only = not any(n["type"] == "Adam" for n in document["nodes"])
        model = compile_graph(analyze(document, model_only=model_only)).instantiate()
        model.load_state_dict(load_file(str(weights)))
        return model.eval()

    imported = rebuilt(tmp_path / "graph.json", tmp_path / "graph.safetensors")
    assert sum(p.numel() for p in imported.parameters()) == count
    (given,) = parse_inputs([spec])
    x = example(original, given)
    with torch.no_grad():
        expected, got = original(x), imported(x)
    module_diff = float((got - expected).abs().max())
    assert module_diff <= 1e-6, module_diff

    onnx_path = tmp_path / f"{name}.onnx"
    write_onnx(imported, (x,), ["x"], ["out"], onnx_path)
    out = tmp_path / "reimported.json"
    code = main(["import-onnx", str(onnx_path), "-o", str(out), "--json"])
    assert code == 0, capsys.readouterr()
    again = rebuilt(out, tmp_path / "reimported.safetensors")
    # write_onnx keeps each eval-mode batch norm (server/exports/onnx_optimize.py): the same
    # parameters, running statistics included
    reimported = sum(p.numel() for p in again.parameters())
    assert reimported == count
    assert _buffers(again) == _buffers(imported)
    assert json.loads(capsys.readouterr().out)["params"] == reimported
    with torch.no_grad():
        onnx_diff = float((again(x) - expected).abs().max())
    assert onnx_diff <= 1e-5, onnx_diff
    FIGURES[name] = {
        "params": count,
        "params_reimported": reimported,
        "max_abs_diff": module_diff,
        "max_abs_diff_onnx": onnx_diff,
        "opaque": len(summary["opaque"]),
    }


def _buffers(model: torch.nn.Module) -> list[tuple[tuple[int, ...], float]]:
    """Each float buffer's shape and sum (batch norms' running statistics), in order."""
    return [
        (tuple(b.shape), round(float(b.sum()), 4)) for b in model.buffers() if b.is_floating_point()
    ]


def test_the_standard_definitions_have_the_reference_sizes():
    """The small configs the round trips use are the reference architectures: at their published
    sizes they have the published parameter counts (built only, never run)."""
    vit = import_models.ViTTiny(image=224, patch=16, dim=192, depth=12, heads=3, num_classes=1000)
    assert sum(p.numel() for p in vit.parameters()) == 5_717_416  # timm vit_tiny_patch16_224
    mobilenet = import_models.MobileNetV2()
    assert sum(p.numel() for p in mobilenet.parameters()) == 3_504_872  # torchvision
