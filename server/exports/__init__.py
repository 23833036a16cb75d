"""Exports of a finished (or stopped) run: its weights (state_dict.pt, model.safetensors), its
code (code.zip with a standalone train.py), ONNX (checked and compared with onnxruntime), and
predictions with the trained model. The HTTP side is server/api/exports.py."""

from __future__ import annotations

from .artifacts import ModelCache, RunFiles, RunModel, load_state_dict, run_files
from .onnx_export import export_onnx, public_report
from .package import build_zip
from .predict import predict

__all__ = [
    "ModelCache",
    "RunFiles",
    "RunModel",
    "build_zip",
    "export_onnx",
    "load_state_dict",
    "predict",
    "public_report",
    "run_files",
]
