"""Does keeping BatchNormalization in model.onnx (server/exports/onnx_optimize.py) cost inference
speed? The unet_segmentation example (10 batch norms) exported twice — as write_onnx does now
(batch norms kept) and with torch's default optimizer (folded into the convolutions) — then each
run in onnxruntime (CPU, all graph optimizations, as a user would load it): median latency of a
batch, plus what onnxruntime's optimized graph holds (it fuses Conv + BatchNormalization itself).

    .venv/bin/python bench/onnx_batchnorm.py [--batch 32] [--repeats 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graph_compiler import analyze, compile_graph  # noqa: E402
from server.exports.onnx_export import write_onnx  # noqa: E402


def folded_export(model, x, path: Path) -> None:
    """torch's default: optimize=True, which folds each eval batch norm into its convolution."""
    program = torch.export.export(
        model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), strict=False
    )
    torch.onnx.export(program, (x,), str(path), dynamo=True, input_names=["x"], verbose=False)


def latency(path: Path, x: np.ndarray, repeats: int, optimized: Path) -> tuple[float, dict]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # not the warning that the saved graph is host-specific
    options.optimized_model_filepath = str(optimized)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(5):
        session.run(None, {"x": x})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {"x": x})
        times.append(time.perf_counter() - start)
    ops: dict[str, int] = {}
    for node in onnx.load(str(optimized)).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return statistics.median(times) * 1000, ops


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    document = json.loads((ROOT / "examples" / "unet_segmentation.json").read_text())
    analysis = analyze(document)
    torch.manual_seed(0)
    model = compile_graph(analysis).instantiate().eval()
    x = torch.randn(args.batch, *analysis.data.x_shape)
    with tempfile.TemporaryDirectory() as tmp:
        kept, folded = Path(tmp) / "kept.onnx", Path(tmp) / "folded.onnx"
        write_onnx(model, (x,), ["x"], ["out"], kept)
        folded_export(model, x, folded)
        for name, path in (("batch norms kept", kept), ("folded (torch default)", folded)):
            count = sum(
                1 for n in onnx.load(str(path)).graph.node if n.op_type == "BatchNormalization"
            )
            ms, ops = latency(path, x.numpy(), args.repeats, Path(tmp) / f"{path.stem}.ort.onnx")
            print(
                f"{name:24s} file BatchNormalization: {count:2d}  median {ms:7.2f} ms/batch "
                f"of {args.batch}  after onnxruntime's optimizations: "
                f"BatchNormalization {ops.get('BatchNormalization', 0)}, "
                f"Conv {ops.get('Conv', 0) + ops.get('FusedConv', 0)}"
            )


if __name__ == "__main__":
    main()
