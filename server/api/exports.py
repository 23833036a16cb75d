"""Exports and predictions of a finished or stopped run (weights available):

    GET  /api/runs/<id>/export/state_dict.pt      torch.save of the model's state_dict
    GET  /api/runs/<id>/export/model.safetensors  the same weights as safetensors
    GET  /api/runs/<id>/export/code.zip           model.py, graph.json, preprocess.json,
                                                  README.md, train.py (+ data.npz)
    GET  /api/runs/<id>/export/model.onnx         dynamic batch; X-Torchloom-Opset and
                                                  X-Torchloom-Onnx-Max-Abs-Diff headers
    GET  /api/runs/<id>/export/model.onnx.json    {opset, max_abs_diff, samples, input_names,
                                                  output_names, ...}
    POST /api/runs/<id>/predict                   {"index": n} | {"input": [...]} | {"random": true}
    GET  /api/runs/<id>/evaluation                confusion matrix (classifier) or predicted vs
                                                  true points, MAE/RMSE/R² (regressor)

Names are looked up in a fixed table (anything else is 404); files are read from the run's own
folder only. Weights are never unpickled: safetensors, or checkpoints read with
torch.load(weights_only=True).
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from flask import Blueprint, current_app, jsonify, send_file

from graph_compiler.custom import has_custom_code

from ..analysis_pool import AnalysisUnavailable
from ..errors import ApiError, not_found
from ..exports import (
    ModelCache,
    build_zip,
    export_onnx,
    load_state_dict,
    predict,
    public_report,
    run_files,
)
from ..exports.artifacts import RunFiles, RunModel
from ..exports.evaluate import evaluate
from ..exports.isolated import run_model_task, unwrap
from ..storage import runs as store
from .common import body_limit, config, json_body, services

bp = Blueprint("exports", __name__, url_prefix="/api")

EXPORTS = {
    "state_dict.pt": "application/octet-stream",
    "model.safetensors": "application/octet-stream",
    "code.zip": "application/zip",
    "model.onnx": "application/octet-stream",
    "model.onnx.json": "application/json",
}


def _files(run_id: str) -> RunFiles:
    run = store.get(services().db, run_id)
    if run is None:
        raise not_found("run", run_id)
    folder = services().data.run_dir(run_id)  # contained in the data dir's runs folder
    return run_files(run, folder)


def _model(files: RunFiles) -> RunModel:
    """The run's model, from this app's small LRU of loaded models."""
    cache = current_app.extensions.setdefault("torchloom_export_models", ModelCache(4))
    return cache.get(files, allow_custom_code=config().allow_custom_code)


def _datasets_root() -> Path:
    return services().data.root / "datasets"


def _download(data: bytes | Path, files: RunFiles, name: str, mimetype: str):
    body = io.BytesIO(data) if isinstance(data, bytes) else data
    response = send_file(
        body,
        mimetype=mimetype,
        as_attachment=True,
        download_name=files.download_name("-" + name),
        max_age=0,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/runs/<run_id>/export/<name>")
def export(run_id: str, name: str):
    mimetype = EXPORTS.get(name)
    if mimetype is None:
        raise ApiError(
            404,
            "unknown_export",
            f"no export named {name!r}; available: {', '.join(EXPORTS)}",
        )
    files = _files(run_id)
    if name == "model.safetensors":
        if files.weights_kind == "safetensors":
            return _download(files.weights, files, name, mimetype)
        from safetensors.torch import save

        from graph_compiler.weights import savable

        return _download(save(savable(load_state_dict(files))), files, name, mimetype)
    if name == "state_dict.pt":
        buffer = io.BytesIO()
        torch.save(load_state_dict(files), buffer)
        return _download(buffer.getvalue(), files, name, mimetype)
    if _isolated(files):  # built in an analysis process, not here
        if name == "code.zip":
            data = _in_analysis_process("code.zip", files)
            return _download(data, files, name, mimetype)
        raw_path, report = _in_analysis_process("onnx", files)
        path = Path(raw_path)
    else:
        rm = _model(files)
        if name == "code.zip":
            data = build_zip(files, rm.analysis, rm.interface, rm.class_name, _datasets_root())
            return _download(data, files, name, mimetype)
        path, report = export_onnx(rm, _datasets_root())
    if name == "model.onnx.json":
        return jsonify(public_report(report))
    response = _download(path, files, name, mimetype)
    response.headers["X-Torchloom-Opset"] = str(report["opset"])
    response.headers["X-Torchloom-Onnx-Max-Abs-Diff"] = repr(float(report["max_abs_diff"]))
    return response


@bp.post("/runs/<run_id>/predict")
@body_limit("predict")
def predict_route(run_id: str):
    files = _files(run_id)  # an unknown run is a 404 before the body is read
    body = json_body()
    if _isolated(files):
        return jsonify(_in_analysis_process("predict", files, body))
    return jsonify(predict(_model(files), body, _datasets_root()))


@bp.get("/runs/<run_id>/evaluation")
def evaluation_route(run_id: str):
    files = _files(run_id)
    if _isolated(files):
        return jsonify(_in_analysis_process("evaluation", files))
    return jsonify(evaluate(_model(files), _datasets_root()))


def _isolated(files: RunFiles) -> bool:
    """The run's model is built in an analysis process, under its time limit: always when the
    server runs them (custom code in one retired after it). Only a server that runs none
    (analysis_workers=0, so custom code is off) builds it here, bounded by the validation
    limits: build_run_model refuses a graph that no longer validates."""
    return services().analysis.workers > 0


def _in_analysis_process(task: str, files: RunFiles, body=None):
    allow = config().allow_custom_code
    try:
        result = services().analysis.run(
            run_model_task,
            task,
            files,
            body,
            _datasets_root(),
            allow,
            user_code=allow and has_custom_code(files.document),
        )
    except AnalysisUnavailable as exc:
        raise ApiError(503, "analysis_unavailable", f"{exc}; try again") from None
    return unwrap(result)
