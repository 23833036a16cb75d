"""Array files: NPZ (arrays x and y), NPY (one 2-D table, target in one column) and
safetensors (tensors x and y).

NPZ and safetensors may instead hold x_train/y_train with x_val/y_val or x_test/y_test (as
keras' mnist.npz does): the second pair becomes the validation set.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import DataError


@dataclass
class Arrays:
    x: np.ndarray
    y: np.ndarray
    val: tuple[np.ndarray, np.ndarray] | None
    names: tuple[str, str]  # the keys x and y came from, for messages


def _pick(display: str, keys: list[str]) -> tuple[tuple[str, str], tuple[str, str] | None]:
    """(x key, y key) and the validation pair's keys, matched case-insensitively."""
    lower = {k.lower(): k for k in keys}
    if "x" in lower and "y" in lower:
        return (lower["x"], lower["y"]), None
    if "x_train" in lower and "y_train" in lower:
        for suffix in ("val", "valid", "test"):
            if f"x_{suffix}" in lower and f"y_{suffix}" in lower:
                return (lower["x_train"], lower["y_train"]), (
                    lower[f"x_{suffix}"],
                    lower[f"y_{suffix}"],
                )
        return (lower["x_train"], lower["y_train"]), None
    found = ", ".join(repr(k) for k in keys) or "none"
    raise DataError(
        f"{display}: expected arrays named 'x' and 'y' (or 'x_train' and 'y_train'); "
        f"found keys: {found}"
    )


def read_npz(path: Path) -> Arrays:
    display = path.name
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{display} is not a readable .npz file ({e})") from e
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{display} is a single .npy array, not an .npz archive of x and y")
    with npz:
        (kx, ky), val_keys = _pick(display, list(npz.files))

        def get(key: str) -> np.ndarray:
            try:
                return npz[key]
            except (OSError, ValueError, zipfile.BadZipFile, EOFError, MemoryError) as e:
                raise DataError(f"{display} key {key!r} cannot be read ({e!r})") from e

        val = (get(val_keys[0]), get(val_keys[1])) if val_keys else None
        return Arrays(get(kx), get(ky), val, (kx, ky))


def read_npy(path: Path, target_column: str) -> Arrays:
    display = path.name
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, MemoryError) as e:
        raise DataError(f"{display} is not a readable .npy file ({e})") from e
    if not isinstance(a, np.ndarray):
        raise DataError(f"{display} is an .npz archive; set format to npz")
    if a.ndim != 2 or a.shape[1] < 2:
        raise DataError(
            f"{display}: expected one 2-D array (samples × columns, at least 2 columns: "
            f"features and the target), found shape {tuple(a.shape)}"
        )
    cols = a.shape[1]
    text = target_column.strip()
    if not text:
        col = cols - 1
    else:
        try:
            col = int(text)
        except ValueError:
            raise DataError(
                f"{display}: target_column {target_column!r} must be a column index "
                f"(0 to {cols - 1}, or negative from the end) for .npy files"
            ) from None
        if not -cols <= col < cols:
            raise DataError(
                f"{display}: target_column {col} is out of range; the array has {cols} columns"
            )
        col %= cols
    x = np.delete(a, col, axis=1)
    return Arrays(x, a[:, col], None, ("x", f"column {col}"))


def _numpy(t: torch.Tensor) -> np.ndarray:
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return t.numpy()


def read_safetensors(path: Path) -> Arrays:
    display = path.name
    try:
        from safetensors.torch import load_file
    except ImportError as e:  # pragma: no cover - depends on the install
        raise DataError(
            f"{display}: reading safetensors needs the safetensors package "
            "(pip install safetensors)"
        ) from e
    try:
        tensors: Mapping[str, torch.Tensor] = load_file(str(path))
    except Exception as e:  # safetensors raises its own SafetensorError and OSError
        raise DataError(f"{display} is not a readable safetensors file ({e})") from e
    (kx, ky), val_keys = _pick(display, list(tensors))
    val = (_numpy(tensors[val_keys[0]]), _numpy(tensors[val_keys[1]])) if val_keys else None
    return Arrays(_numpy(tensors[kx]), _numpy(tensors[ky]), val, (kx, ky))
