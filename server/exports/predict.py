"""One prediction with a run's model: a validation sample (by index or at random) or raw input
values that the run's normalization is applied to. CPU, eval mode, torch.inference_mode."""

from __future__ import annotations

import math
import secrets
from pathlib import Path
from typing import Any

import torch

from ..errors import ApiError
from .artifacts import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, RunModel


def head(rm: RunModel) -> tuple[str, int]:
    """(kind, output index) of the prediction the response leads with: the first loss term on the
    targets y decides (classification / regression), else one on the inputs x (reconstruction),
    else the first output as it is."""
    return head_of(rm.losses)


def head_of(losses: list) -> tuple[str, int]:
    """head() from the run's loss terms (LossWiring) alone."""
    for kinds, kind in ((CLASSIFICATION_LOSSES, "classification"), (REGRESSION_LOSSES, None)):
        for term in losses:
            if term.type not in kinds or ("data", "y") not in term.sources:
                continue
            out = next(ref for src, ref in term.sources if src == "output")
            return kind or "regression", out
    for term in losses:
        if ("data", "x") in term.sources:
            outs = [ref for src, ref in term.sources if src == "output"]
            if outs:
                return "reconstruction", outs[0]
    return "raw", 0


def _sample_from_body(rm: RunModel, body: dict, datasets_root: Path) -> dict[str, Any]:
    # `is not`: index 0 is a sample (0 == False), and "random": false means not chosen
    chosen = [
        k
        for k in ("index", "input", "random")
        if body.get(k) is not None and body.get(k) is not False
    ]
    if len(chosen) != 1:
        raise ApiError(
            400,
            "bad_predict_request",
            'give exactly one of "index" (a validation sample), "input" (raw values) or '
            '"random": true',
        )
    mode = chosen[0]
    if mode == "input":
        if "y" in rm.interface.inputs:
            raise ApiError(
                400,
                "needs_targets",
                "this model also reads the targets y: predict a validation sample by index",
            )
        return {"mode": mode, "x": _parse_input(rm, body["input"]), "y": None, "index": None}
    if mode == "random" and body["random"] is not True:
        raise ApiError(400, "bad_random", '"random" must be true')
    x_va, y_va = rm.validation(datasets_root)
    n = len(x_va)
    if n == 0:
        raise ApiError(409, "no_validation", "the run has no validation samples")
    if mode == "random":
        index = secrets.randbelow(n)
    else:
        index = body["index"]
        if isinstance(index, bool) or not isinstance(index, int):
            raise ApiError(400, "bad_index", '"index" must be an integer')
        if not 0 <= index < n:
            raise ApiError(
                400,
                "index_out_of_range",
                f"index {index} is out of range: the validation split has {n} samples (0..{n - 1})",
                {"samples": n},
            )
    return {"mode": mode, "x": x_va[index], "y": y_va[index], "index": index}


def _shape_of(value: Any) -> list[int] | None:
    """The shape of a rectangular nested list (None when ragged or not a list of numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return []
    if not isinstance(value, list):
        return None
    if not value:
        return [0]
    shapes = [_shape_of(v) for v in value]
    first = shapes[0]
    if first is None or any(s != first for s in shapes):
        return None
    return [len(value), *first]


def _parse_input(rm: RunModel, value: Any) -> torch.Tensor:
    expected = list(rm.x_shape)
    try:
        got = _shape_of(value)
    except RecursionError:
        got = None
    if got is None:
        raise ApiError(
            400,
            "bad_input",
            f'"input" must be a nested list of numbers of shape {expected} (one sample)',
            {"expected": expected},
        )
    if got != expected:
        raise ApiError(
            400,
            "bad_input_shape",
            f"input shape {got} does not match the model's per-sample input shape {expected}",
            {"expected": expected, "got": got},
        )
    x = torch.tensor(value, dtype=torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ApiError(400, "bad_input", '"input" must hold finite numbers')
    if rm.x_dtype == torch.int64:
        if not bool((x == x.round()).all()):
            raise ApiError(400, "bad_input", "this model reads integer token ids")
        return x.to(torch.int64)
    return x.to(torch.float32)


def _tolist(t: torch.Tensor) -> Any:
    value = t.detach().cpu().tolist()
    return json_safe(value)


def json_safe(value: Any) -> Any:
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN / Infinity
    return value


def predict(rm: RunModel, body: dict, datasets_root: Path) -> dict[str, Any]:
    sample = _sample_from_body(rm, body, datasets_root)
    normalizer, scaler = rm.normalizer(), rm.target_scaler()
    x_raw = sample["x"][None]
    batch = {"x": normalizer.apply(x_raw)}
    if "y" in rm.interface.inputs:
        y = sample["y"][None]
        batch["y"] = scaler.apply(y) if scaler is not None and y.is_floating_point() else y
    outputs = rm.forward(batch)
    kind, index = head(rm)
    main = outputs[index][0].float()
    result: dict[str, Any] = {
        "mode": sample["mode"],
        "task": kind,
        "outputs": [_tolist(o[0]) for o in outputs],
        "output_names": [f"{node}.{port}" for node, port in rm.interface.outputs],
    }
    if sample["index"] is not None:
        result["index"] = sample["index"]
        result["input"] = _tolist(sample["x"])  # the raw sample, to show or edit and resend
    class_names = rm.files.preprocess.get("class_names")
    if kind == "classification":
        probs = torch.softmax(main, dim=0)
        pred = main.argmax(dim=0)
        result["prediction"] = _tolist(pred)
        result["probabilities"] = _tolist(probs)
        result["class_names"] = class_names
        if class_names and pred.dim() == 0 and 0 <= int(pred) < len(class_names):
            result["prediction_name"] = class_names[int(pred)]
    elif kind == "regression":
        values = main
        if scaler is not None:
            values = scaler.inverse(main[None])[0]
        result["prediction"] = _tolist(values)
    elif kind == "reconstruction":
        values = main
        if normalizer.mean is not None and main.shape == x_raw.shape[1:]:
            values = main * normalizer.std[0] + normalizer.mean[0]
        result["prediction"] = _tolist(values)
    else:
        result["prediction"] = _tolist(main)
    if sample["y"] is not None:
        true = sample["y"]
        result["true"] = _tolist(true)
        if (
            kind == "classification"
            and class_names
            and true.dim() == 0
            and not true.is_floating_point()
            and 0 <= int(true) < len(class_names)
        ):
            result["true_name"] = class_names[int(true)]
    return result
