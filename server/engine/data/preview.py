"""A JSON-ready summary of loaded data for the inspector: shapes, classes or target statistics,
and the first few samples (images shrunk to at most 28 × 28, long samples cut)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .loaded import Loaded

MAX_SIDE = 28
MAX_VALUES = 2048  # values per previewed sample
MAX_TOKENS = 256  # token texts shown per sample


def _round(v: float) -> float | None:
    if not math.isfinite(v):
        return None
    return float(f"{v:.5g}")


def _rounded(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_rounded(o) for o in obj]
    if isinstance(obj, float):
        return _round(obj)
    return obj


def _is_image(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_floating_point()


def _sample_x(x: torch.Tensor) -> tuple[Any, bool]:
    """One sample as nested lists: images shrunk to fit 28 × 28, others cut to MAX_VALUES."""
    if x.dim() == 3 and x.is_floating_point():  # (C, H, W)
        h, w = x.shape[-2:]
        factor = math.ceil(max(h, w) / MAX_SIDE)
        if factor > 1:
            size = (math.ceil(h / factor), math.ceil(w / factor))
            x = F.adaptive_avg_pool2d(x[None].float(), size)[0]
    cut = False
    if x.numel() > MAX_VALUES and x.dim() >= 1:
        per_row = max(1, x[0].numel()) if x.dim() > 1 else 1
        x = x[: max(1, MAX_VALUES // per_row)]
        cut = True
    return _rounded(x.tolist()), cut


def _samples(x: torch.Tensor, y: torch.Tensor, loaded: Loaded, n: int) -> list[dict]:
    out = []
    for i in range(min(n, x.shape[0])):
        xs, cut = _sample_x(x[i])
        item: dict[str, Any] = {"x": xs}
        if cut:
            item["x_truncated"] = True
        if loaded.tokenizer is not None:
            item.update(_token_text(loaded.tokenizer, x[i]))
        if loaded.task == "language_model":
            item["y"] = y[i].reshape(-1)[: len(item["x"])].tolist()
        elif loaded.task == "classification" and y[i].dim() == 2:  # a per-pixel class mask
            item["y"], item["label"] = _mask(y[i], loaded.class_names)
        elif loaded.task == "classification":
            k = int(y[i])
            item["y"] = k
            names = loaded.class_names
            item["label"] = names[k] if names and k < len(names) else str(k)
        else:
            item["y"] = _rounded(y[i].reshape(-1).tolist())
        out.append(item)
    return out


def _token_text(tokenizer: Any, ids: torch.Tensor) -> dict:
    """The decoded text of one sample and each shown token's text, next to its ids (padding
    dropped from the text, kept as "<pad>" among the tokens)."""
    shown = ids.reshape(-1)[:MAX_TOKENS].tolist()
    return {
        "text": tokenizer.decode(ids.reshape(-1).tolist()),
        "tokens": [tokenizer.token_text(i) for i in shown],
    }


def _mask(mask: torch.Tensor, names: list[str] | None) -> tuple[list, str]:
    """A segmentation target: the (H, W) class ids, every factor-th pixel where larger than
    28 × 28 (as its image is shrunk), and the names of the classes in it."""
    factor = math.ceil(max(mask.shape) / MAX_SIDE)
    present = [int(k) for k in torch.unique(mask).tolist()]
    label = ", ".join(names[k] if names and 0 <= k < len(names) else str(k) for k in present)
    return mask[::factor, ::factor].tolist(), label


def _class_counts(y: torch.Tensor, loaded: Loaded) -> list[dict]:
    k = loaded.num_classes or (int(y.max()) + 1 if y.numel() else 0)
    counts = torch.bincount(y.reshape(-1), minlength=k).tolist() if y.numel() else [0] * k
    names = loaded.class_names or []
    return [
        {"id": i, "name": names[i] if i < len(names) else str(i), "count": int(c)}
        for i, c in enumerate(counts)
    ]


def _target_stats(y: torch.Tensor) -> list[dict]:
    y2 = y.reshape(y.shape[0], -1).double()
    out = []
    for j in range(y2.shape[1]):
        col = y2[:, j]
        out.append(
            {
                "name": f"y[{j}]",
                "mean": _round(float(col.mean())),
                "std": _round(float(col.std(unbiased=False))),
                "min": _round(float(col.min())),
                "max": _round(float(col.max())),
            }
        )
    return out


def preview(loaded: Loaded, n: int = 5) -> dict:
    """{num_samples, x_shape (per sample), x_dtype, task, num_classes, description,
    feature_names, classes [{id, name, count}] (classification) or targets [{name, mean, std,
    min, max}] (regression), samples [{x, y, label?, text?, tokens?}] (text and tokens: the
    decoded sample and each token's text, for data with a tokenizer; then also vocab_size,
    tokenizer and pad_id), and with an explicit validation set
    num_val_samples, val_classes / val_targets and val_samples}."""
    x, y = loaded.x, loaded.y
    out: dict[str, Any] = {
        "num_samples": int(x.shape[0]),
        "x_shape": [int(d) for d in x.shape[1:]],
        "x_dtype": str(x.dtype).removeprefix("torch."),
        "task": loaded.task,
        "num_classes": loaded.num_classes,
        "description": loaded.description,
        "feature_names": loaded.feature_names,
        "is_image": _is_image(x),
    }
    if loaded.vocab_size is not None:
        out["vocab_size"] = loaded.vocab_size
    if loaded.tokenizer is not None:
        out["tokenizer"] = loaded.tokenizer.kind
        out["pad_id"] = loaded.tokenizer.pad_id
    if loaded.task == "classification":
        out["classes"] = _class_counts(y, loaded)
    elif loaded.task != "language_model":  # next-token ids have no statistics worth showing
        out["targets"] = _target_stats(y)
    out["samples"] = _samples(x, y, loaded, n)
    if loaded.val is not None:
        vx, vy = loaded.val
        out["num_val_samples"] = int(vx.shape[0])
        if loaded.task == "classification":
            out["val_classes"] = _class_counts(vy, loaded)
        elif vy.shape[0] and loaded.task != "language_model":
            out["val_targets"] = _target_stats(vy)
        out["val_samples"] = _samples(vx, vy, loaded, n)
    return out
