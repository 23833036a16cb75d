"""Checks shared by the file formats: matching lengths, class ids, regression targets, finite x.

`where` is how a message names the data, e.g. "data.npz" or "data.npz key 'y'".
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import DataError


def check_lengths(where: str, x_len: int, y_len: int) -> None:
    if x_len != y_len:
        raise DataError(f"{where}: x has {x_len} samples but y has {y_len}")
    if x_len == 0:
        raise DataError(f"{where}: x and y have no samples")


def features(where: str, x: np.ndarray) -> torch.Tensor:
    """x as float32 (N, ...); booleans and integers become floats. Rejects NaN/inf."""
    if x.ndim < 1:
        raise DataError(f"{where}: x must have one row per sample, found a scalar")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: x must hold numbers, found dtype {x.dtype}")
    if x.ndim == 1:
        x = x[:, None]
    out = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    check_finite(where, "x", out)
    return out


# Integer x of these dtypes are token ids (kept int64 for an Embedding); 8-bit integers and
# booleans are pixels and flags, read as float features like before.
_ID_DTYPES = ("int16", "int32", "int64", "uint16", "uint32", "uint64")


def holds_token_ids(x: np.ndarray) -> bool:
    return x.dtype.name in _ID_DTYPES


def token_ids(where: str, x: np.ndarray) -> torch.Tensor:
    """Integer x as int64 token ids (N, ...); ids must be ≥ 0 (an Embedding row)."""
    if x.ndim < 1:
        raise DataError(f"{where}: x must have one row per sample, found a scalar")
    if x.dtype.kind not in "iu":
        raise DataError(f"{where}: x_dtype int64 needs integer token ids, found dtype {x.dtype}")
    if x.size and x.min() < 0:
        flat = int(np.argmin(x.reshape(len(x), -1).min(axis=1)))
        raise DataError(
            f"{where}: x[{flat}] holds the negative id {int(x.min())}; integer x are token ids "
            "and must be ≥ 0 (store float features as float32)"
        )
    if x.dtype == np.uint64 and x.size and int(x.max()) > np.iinfo(np.int64).max:
        raise DataError(f"{where}: x holds ids beyond int64")
    if x.ndim == 1:
        x = x[:, None]
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))


def check_finite(where: str, name: str, t: torch.Tensor) -> None:
    if not t.is_floating_point():
        return
    bad = ~torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1)
    if bad.any():
        i = int(bad.nonzero()[0, 0])
        raise DataError(
            f"{where}: {name}[{i}] contains NaN or infinity ({int(bad.sum())} samples do); "
            "expected finite numbers"
        )


def class_ids(where: str, y: np.ndarray) -> torch.Tensor:
    """Classification targets → (N,) int64 class ids ≥ 0; (N, 1) is accepted."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"{where}: classification y must be one class id per sample, shape (N,), "
            f"found shape {tuple(y.shape)}"
        )
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    elif y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{where}: y[{i}] = {y[i].item()!r} is not a whole number; classification "
                "targets must be integer class ids ≥ 0 (set task to regression for continuous "
                "targets)"
            )
    elif y.dtype.kind not in "iu":
        raise DataError(
            f"{where}: classification y must hold integer class ids, found dtype {y.dtype}"
        )
    if len(y) and y.min() < 0:
        i = int(np.argmin(y))
        raise DataError(
            f"{where}: y[{i}] = {y[i].item()!r} is negative; classification targets must be "
            "class ids ≥ 0"
        )
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))


def regression_targets(where: str, y: np.ndarray) -> torch.Tensor:
    """Regression targets → (N, k) float32."""
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise DataError(
            f"{where}: regression y must be (N,) or (N, k), found shape {tuple(y.shape)}"
        )
    if y.dtype.kind not in "biuf":
        raise DataError(f"{where}: regression y must hold numbers, found dtype {y.dtype}")
    out = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
    check_finite(where, "y", out)
    return out


def count_classes(where: str, *ys: torch.Tensor) -> int:
    n = max(int(y.max()) + 1 for y in ys if y.numel())
    if n < 2:
        raise DataError(
            f"{where}: every target is class 0; classification needs at least 2 classes"
        )
    return n
