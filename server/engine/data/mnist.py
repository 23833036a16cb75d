"""MNIST-style IDX files (MNIST, Fashion-MNIST, ...): train-images-idx3-ubyte and
train-labels-idx1-ubyte, optionally t10k-* (the validation set), plain or .gz, in a folder or
a zip."""

from __future__ import annotations

import re
import struct

import numpy as np
import torch

from . import budget
from .compressed import gunzip, gunzip_head
from .container import Container, basename
from .errors import DataError

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_FILE = re.compile(r"^(train|t10k)-(images|labels)[-.]idx([13])-ubyte(\.gz)?$")


def find(c: Container) -> dict[tuple[str, str], str]:
    """{(split, kind): name} for the IDX files in the container."""
    found: dict[tuple[str, str], str] = {}
    for name in c.names:
        m = _FILE.match(basename(name))
        if m and (m.group(2) == "images") == (m.group(3) == "3"):
            found.setdefault((m.group(1), m.group(2)), name)
    return found


def looks_like(c: Container) -> bool:
    return ("train", "images") in find(c) or ("t10k", "images") in find(c)


def _header(where: str, head: bytes, magic: int) -> tuple[int, tuple[int, ...]]:
    """(header length, shape) of an IDX file of unsigned bytes: the magic number, then one
    big-endian uint32 size per dimension."""
    dims = 3 if magic == IMAGES_MAGIC else 1
    header = 4 + 4 * dims
    if len(head) < header:
        raise DataError(
            f"{where} is truncated: {len(head)} bytes, shorter than its {header}-byte header"
        )
    (found,) = struct.unpack(">I", head[:4])
    if found != magic:
        raise DataError(
            f"{where}: bad magic number {found} (0x{found:08x}); expected {magic} "
            f"(an IDX {'image' if dims == 3 else 'label'} file of unsigned bytes)"
        )
    return header, struct.unpack(f">{dims}I", head[4:header])


def parse_idx(where: str, data: bytes, magic: int) -> np.ndarray:
    """One IDX file of unsigned bytes: the header, then the values."""
    header, shape = _header(where, data, magic)
    size = int(np.prod(shape))
    if len(data) < header + size:
        raise DataError(
            f"{where} is truncated: the header promises {' × '.join(map(str, shape))} values "
            f"({header + size:,} bytes), the file has {len(data):,} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, count=size, offset=header).reshape(shape)


def declared(where: str, head: bytes, magic: int) -> int:
    """The size in bytes an IDX header declares (header included); checks the magic number
    and, for images, what the decoded float32 tensor would take against the budget."""
    header, shape = _header(where, head, magic)
    size = int(np.prod(shape, dtype=np.float64))
    # images become float32 (N, 1, H, W), next to the uint8 values and a copy of them
    per_value = 4 + 2 if magic == IMAGES_MAGIC else 8 + 1
    budget.check(where, f"the header's {' × '.join(map(str, shape))} values", size * per_value)
    return header + size


def _read(c: Container, name: str, magic: int) -> np.ndarray:
    data = c.read(name)
    where = c.where(name)
    if name.endswith(".gz"):  # the header first: never unpack more than it declares
        need = declared(where, gunzip_head(where, data, 4 + 4 * 3), magic)
        data = gunzip(where, data, limit=need)
    else:
        declared(where, data[:16], magic)
    return parse_idx(where, data, magic)


def _pair(c: Container, files: dict, split: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    images, labels = files.get((split, "images")), files.get((split, "labels"))
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        have, missing = (images, "labels") if labels is None else (labels, "images")
        raise DataError(
            f"{c.display}: found {basename(have)} but no {split}-{missing} file; "
            f"expected {split}-images-idx3-ubyte and {split}-labels-idx1-ubyte together"
        )
    x = _read(c, images, IMAGES_MAGIC)
    y = _read(c, labels, LABELS_MAGIC)
    if len(x) != len(y):
        raise DataError(
            f"{c.where(images)} has {len(x)} images but {basename(labels)} has {len(y)} labels"
        )
    xt = torch.from_numpy(x.copy()).unsqueeze(1).float().div_(255.0)
    return xt, torch.from_numpy(y.astype(np.int64))


def read(c: Container, *, as_val: bool = False):
    """((x, y) train, (x, y) | None t10k). As a validation source, train and t10k files are
    concatenated into one set."""
    files = find(c)
    train, test = _pair(c, files, "train"), _pair(c, files, "t10k")
    if train is None and test is None:
        raise DataError(
            f"{c.display}: no MNIST files; expected train-images-idx3-ubyte and "
            "train-labels-idx1-ubyte (optionally t10k-*, plain or .gz)"
        )
    if as_val or train is None:
        if not as_val:
            raise DataError(
                f"{c.display}: only t10k files; expected train-images-idx3-ubyte and "
                "train-labels-idx1-ubyte for training"
            )
        parts = [p for p in (train, test) if p is not None]
        _same_size(c, parts)
        return (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])), None
    if test is not None:
        _same_size(c, [train, test])
    return train, test


def _same_size(c: Container, parts) -> None:
    shapes = {tuple(p[0].shape[1:]) for p in parts}
    if len(shapes) > 1:
        raise DataError(
            f"{c.display}: train and t10k images differ in size ({sorted(shapes)}); "
            "expected one size"
        )
