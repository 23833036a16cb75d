"""gzip members, decompressed with a size bound."""

from __future__ import annotations

import gzip
import io
import zlib

from .container import MAX_TOTAL_BYTES
from .errors import DataError


def gunzip(where: str, data: bytes, limit: int = MAX_TOTAL_BYTES) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            out = f.read(limit + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{where} is not a valid gzip file ({e})") from e
    if len(out) > limit:
        raise DataError(f"{where} unpacks to more than {limit:,} bytes; expected at most that")
    return out


def gunzip_head(where: str, data: bytes, size: int) -> bytes:
    """The first `size` bytes of a gzip member (fewer if it is shorter), nothing more."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            return f.read(size)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{where} is not a valid gzip file ({e})") from e
