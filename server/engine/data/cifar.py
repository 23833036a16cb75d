"""CIFAR-10 binary batches: data_batch_1.bin … data_batch_5.bin (any subset) and optionally
test_batch.bin (the validation set), records of 1 label byte + 3072 pixel bytes (3 × 32 × 32,
channel-major); class names from batches.meta.txt. In a folder or a zip."""

from __future__ import annotations

import re

import numpy as np
import torch

from .container import Container, basename
from .errors import DataError

RECORD = 1 + 3 * 32 * 32
NUM_CLASSES = 10
_TRAIN = re.compile(r"^data_batch_(\d+)\.bin$")
_TEST = "test_batch.bin"
_META = "batches.meta.txt"


def find(c: Container) -> tuple[list[str], str | None, str | None]:
    """(train batch names in order, test batch name, meta name)."""
    train: dict[int, str] = {}
    test = meta = None
    for name in c.names:
        base = basename(name)
        m = _TRAIN.match(base)
        if m:
            train.setdefault(int(m.group(1)), name)
        elif base == _TEST:
            test = test or name
        elif base == _META:
            meta = meta or name
    return [train[k] for k in sorted(train)], test, meta


def looks_like(c: Container) -> bool:
    train, test, _ = find(c)
    return bool(train) or test is not None


def parse_batch(where: str, data: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    if not data:
        raise DataError(f"{where} is empty; expected {RECORD}-byte records (1 label + 3072 pixels)")
    if len(data) % RECORD:
        raise DataError(
            f"{where} is truncated: {len(data):,} bytes is not a whole number of {RECORD}-byte "
            f"records (1 label byte + 3072 pixel bytes); the last record has "
            f"{len(data) % RECORD} bytes"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0]
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if len(bad):
        i = int(bad[0])
        raise DataError(
            f"{where}: record {i} has label {int(labels[i])}; expected 0–{NUM_CLASSES - 1}"
        )
    x = torch.from_numpy(records[:, 1:].copy()).view(-1, 3, 32, 32).float().div_(255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def _read_all(c: Container, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [parse_batch(c.where(n), c.read(n)) for n in names]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def class_names(c: Container, meta: str | None) -> list[str]:
    default = [str(i) for i in range(NUM_CLASSES)]
    if meta is None:
        return default
    text = c.read(meta).decode("utf-8", errors="replace")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    return names[:NUM_CLASSES] if len(names) >= NUM_CLASSES else default


def read(c: Container, *, as_val: bool = False):
    """((x, y) train, (x, y) | None test, class names). As a validation source every batch,
    test_batch.bin included, goes into one set."""
    train, test, meta = find(c)
    if not train and (test is None or not as_val):
        raise DataError(
            f"{c.display}: no CIFAR-10 training batches; expected data_batch_1.bin … "
            "data_batch_5.bin (any of them) and optionally test_batch.bin"
        )
    names = class_names(c, meta)
    if as_val:
        return _read_all(c, [*train, *([test] if test else [])]), None, names
    return _read_all(c, train), (_read_all(c, [test]) if test else None), names
