"""Predictions, evaluation and exports of a run, computed in an analysis process
(server/analysis_pool.py) under its time limit: building a run's model can take long and grow
large, and with custom code it executes the user's code, which never runs in the web process.
Runs without custom code go to the warm processes, where a small cache keeps their models
between requests; runs with custom code to a process retired after the task. A server that runs
no analysis processes (analysis_workers=0) loads runs without custom code in the web process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ApiError
from .artifacts import ModelCache, RunFiles

_models: ModelCache | None = None  # per analysis process: loaded models


def run_model_task(
    task: str, files: RunFiles, body: Any, datasets_root: Path, allow_custom_code: bool
) -> dict:
    """{"ok": result} or {"error": (status, code, message, details)}: an ApiError crosses the
    process boundary as plain values."""
    from ..engine.generate import GenerationError
    from . import build_zip, export_onnx, predict
    from .evaluate import evaluate
    from .language_model import generation_slice, language_model

    global _models
    try:
        if _models is None:
            _models = ModelCache(2)
        rm = _models.get(files, allow_custom_code=allow_custom_code)
        if task == "predict":
            return {"ok": predict(rm, body, datasets_root)}
        if task == "generate":
            return {"ok": generation_slice(language_model(rm), body)}
        if task == "evaluation":
            return {"ok": evaluate(rm, datasets_root)}
        if task == "code.zip":
            return {"ok": build_zip(files, rm.analysis, rm.interface, rm.class_name, datasets_root)}
        if task == "onnx":
            path, report = export_onnx(rm, datasets_root)
            return {"ok": (str(path), report)}
        raise ValueError(f"unknown task {task!r}")
    except ApiError as exc:
        return {"error": (exc.status, exc.code, exc.message, exc.details)}
    except GenerationError as exc:
        return {"error": (422, "generation_error", str(exc), None)}


def unwrap(result: dict) -> Any:
    if "error" in result:
        raise ApiError(*result["error"])
    return result["ok"]
