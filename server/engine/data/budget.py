"""A bound on what a reader may allocate, checked against the sizes a file declares before
anything is allocated.

A few kilobytes can declare gigabytes: a CSV whose text columns one-hot encode into thousands
of features, an IDX header promising 2^32 values, a handful of images resized to 4096 × 4096.
Each reader works out the size of what it is about to build (rows × features after encoding,
the IDX dims, images × channels × pixels, all as float32) and calls `check` first. The server
sets the bound while it reads an upload (server/storage/datasets.py, `Limits.decoded_bytes`);
elsewhere (training, headless `torchloom train`) there is none unless a caller sets one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from .errors import DataError

_LIMIT: ContextVar[int | None] = ContextVar("torchloom_decoded_bytes", default=None)


class DataTooLarge(DataError):
    """What the file declares would take more memory than the bound allows."""


@contextlib.contextmanager
def limit(max_bytes: int | None) -> Iterator[None]:
    """Readers in this context refuse to build more than `max_bytes` (None: no bound)."""
    token = _LIMIT.set(max_bytes)
    try:
        yield
    finally:
        _LIMIT.reset(token)


def check(where: str, what: str, nbytes: int) -> None:
    """Raise DataTooLarge when `nbytes` (what `what` would take) is over the bound."""
    bound = _LIMIT.get()
    if bound is not None and nbytes > bound:
        raise DataTooLarge(
            f"{where}: {what} would take {_size(nbytes)} in memory; the limit is "
            f"{_size(bound)} (use fewer rows, features, categories or a smaller image_size)"
        )


def current() -> int | None:
    return _LIMIT.get()


def _size(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"
