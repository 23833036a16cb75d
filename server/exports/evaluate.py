"""A run's model over its whole validation split, for the playground: a confusion matrix for a
classifier, predicted against true values for a regressor. CPU, eval mode, inference mode."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..engine.regression_metrics import RegressionMetrics
from ..errors import ApiError
from .artifacts import RunModel
from .predict import head, json_safe

CHUNK = 1024  # samples per forward: bounded memory whatever the validation size
MAX_POINTS = 2000  # scatter points returned for a regressor (evenly spaced over the split)


def evaluate(rm: RunModel, datasets_root: Path) -> dict[str, Any]:
    kind, index = head(rm)
    if kind not in ("classification", "regression"):
        raise ApiError(
            409,
            "no_evaluation",
            f"the run's model is a {kind} model: only classifiers and regressors are evaluated "
            "over the validation split",
        )
    x_va, y_va = rm.validation(datasets_root)
    n = len(x_va)
    if n == 0:
        raise ApiError(409, "no_validation", "the run has no validation samples")
    predictions = torch.cat([_predict(rm, x_va, y_va, i, index) for i in range(0, n, CHUNK)])
    if kind == "classification":
        return _classification(rm, predictions, y_va)
    return _regression(rm, predictions, y_va)


def _predict(rm: RunModel, x_va, y_va, start: int, index: int) -> torch.Tensor:
    normalizer, scaler = rm.normalizer(), rm.target_scaler()
    batch = {"x": normalizer.apply(x_va[start : start + CHUNK])}
    if "y" in rm.interface.inputs:
        y = y_va[start : start + CHUNK]
        batch["y"] = scaler.apply(y) if scaler is not None and y.is_floating_point() else y
    out = rm.forward(batch)[index].float()
    return out


def _classification(rm: RunModel, logits: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    if logits.dim() != 2 or y.dim() != 1 or y.is_floating_point():
        raise ApiError(
            409,
            "no_evaluation",
            "a confusion matrix needs one class score vector and one class index per sample "
            f"(the model gives {list(logits.shape[1:])} per sample)",
        )
    classes = logits.shape[1]
    predicted = logits.argmax(dim=1)
    truth = y.long()
    matrix = torch.zeros(classes, classes, dtype=torch.long)
    valid = (truth >= 0) & (truth < classes)
    matrix.index_put_(
        (truth[valid], predicted[valid]), torch.ones_like(truth[valid]), accumulate=True
    )
    names = rm.files.preprocess.get("class_names") or [str(i) for i in range(classes)]
    correct = matrix.diag()
    support = matrix.sum(dim=1)
    return {
        "task": "classification",
        "samples": len(truth),
        "class_names": list(names)[:classes],
        "confusion": matrix.tolist(),  # rows: true class, columns: predicted class
        "accuracy": float(correct.sum()) / max(1, int(support.sum())),
        "per_class_recall": [
            (float(c) / int(s)) if int(s) else None for c, s in zip(correct, support, strict=True)
        ],
    }


def _regression(rm: RunModel, out: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    scaler = rm.target_scaler()
    predicted = scaler.inverse(out) if scaler is not None else out
    truth = y.float().reshape(len(y), -1)
    predicted = predicted.reshape(len(predicted), -1)
    if truth.shape != predicted.shape:
        raise ApiError(
            409,
            "no_evaluation",
            f"targets {list(truth.shape[1:])} and predictions {list(predicted.shape[1:])} per "
            "sample differ",
        )
    figures = RegressionMetrics()  # the engine's code: the run's val_r2 and this one agree
    figures.update(predicted, truth)
    scores = figures.compute()
    step = max(1, math.ceil(len(truth) / MAX_POINTS))
    picked = torch.arange(0, len(truth), step)
    return {
        "task": "regression",
        "samples": len(truth),
        "mae": _finite(scores["mae"]),
        "rmse": _finite(scores["rmse"]),
        "r2": _finite(scores.get("r2")),  # None below two samples
        # the first target column: what the scatter plots (indices into the validation split)
        "points": {
            "index": picked.tolist(),
            "true": json_safe(truth[picked, 0].tolist()),
            "predicted": json_safe(predicted[picked, 0].tolist()),
        },
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None  # JSON has no NaN
