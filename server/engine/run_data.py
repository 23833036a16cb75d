"""A run's data: the document's Dataset loaded (kept inside the server's data folder on a
server), split, normalized with statistics of the training split only, and whether it fits
on the device for the fast path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .run_document import RunFailed, dataset_params_with_defaults, prepare_document

RESIDENT_FRACTION = 0.4  # of free GPU memory that the fast path may fill with the dataset


def load_run_data(
    document: Any,
    overrides: Mapping[str, Any],
    *,
    base_dir: Path | None,
    data_root: Path | None,
    data_names: Mapping[str, str],
):
    """(the document as it runs, the data as loaded); a data error is a RunFailed naming the
    upload, never a server path."""
    from .data import DataError, file_shapes, load_data
    from .data.contain import contain_document, shown

    raw = prepare_document(document, overrides)
    data_params = dataset_params_with_defaults(raw)
    if data_params is None:
        raise RunFailed("invalid_graph", "the graph has no Dataset node")
    try:
        if data_root is not None:  # before any file is opened
            contain_document(raw, data_root)
        if data_params["source"] == "file":
            shapes = file_shapes(_with_val_split(raw, data_params), base_dir=base_dir)
            raw = prepare_document(raw, None, shapes)
            data_params = _with_val_split(raw, dataset_params_with_defaults(raw))
        loaded = load_data(data_params, base_dir=base_dir)
    except DataError as exc:
        reason = str(exc)
        if data_root is not None:  # the upload's name, never a server path
            reason = shown(reason, data_root, data_names)
        raise RunFailed("data_error", reason) from None
    return raw, loaded


def _with_val_split(raw: dict, data_params: dict) -> dict:
    """A text file is split by position, inside its reader (server/engine/data/text.py), and a
    CSV text column's tokenizer learns from the training rows only, so the readers need the
    Training node's val_split and seed (as split_seed)."""
    training = next((n for n in raw["nodes"] if n["type"] == "Training"), None)
    params = (training or {}).get("params", {})
    out = dict(data_params)
    if params.get("val_split") is not None:
        out["val_split"] = params["val_split"]
    if params.get("seed") is not None:
        out["split_seed"] = params["seed"]
    return out


@dataclass
class Splits:
    """The training and validation splits as the model sees them."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    normalizer: Any  # Normalizer
    target_scaler: Any  # TargetScaler, for float regression targets; else None


def split_and_scale(loaded, val_split: float, seed: int) -> Splits:
    """Split, then normalize inputs (and float regression targets) with the training split's
    statistics, so nothing of the validation split leaks into training."""
    from .data import Normalizer, TargetScaler, split

    (x_tr, y_tr), (x_va, y_va) = split(loaded, val_split, seed)
    normalizer = Normalizer.fit(x_tr)
    x_tr, x_va = normalizer.apply(x_tr), normalizer.apply(x_va)
    target_scaler = None
    if loaded.task == "regression" and y_tr.is_floating_point():
        target_scaler = TargetScaler.fit(y_tr)
        y_tr, y_va = target_scaler.apply(y_tr), target_scaler.apply(y_va)
    return Splits(x_tr, y_tr, x_va, y_va, normalizer, target_scaler)


def fits_on_device(device: torch.device, *tensors: torch.Tensor) -> bool:
    if device.type != "cuda":
        return True  # in-memory data is already resident in host memory
    free, _ = torch.cuda.mem_get_info(device)
    need = sum(t.element_size() * t.nelement() for t in tensors)
    return need <= RESIDENT_FRACTION * free
