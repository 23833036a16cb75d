"""Checks of an uploaded file that need no decoding (step 3 of an upload, see
server/storage/datasets.py): zip entry count, expanded size and per-entry compression ratio (zip
bombs), entry paths (zip-slip), gzip members bounded by streaming through them, .npy headers
against the bytes present, image headers against the pixel cap and the decoded size against the
budget. They run in the limited child that reads the upload (server/limited.py).
"""

from __future__ import annotations

import gzip
import io
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..engine.diskspace import format_bytes
from ..errors import ApiError
from .datasets import CHUNK, EXTENSIONS, Limits, bad_data


def precheck(path: Path, ext: str, fmt: str, options: Mapping[str, Any], limits: Limits) -> str:
    """Checks that need no decoding; returns the resolved format."""
    if ext in (".zip", ".npz") and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            _check_zip(path.name, zf, limits)
            if ext == ".npz":
                _check_npz_headers(path.name, zf)
            else:
                _check_gz_members(path.name, zf, limits)
    if ext == ".zip" and not zipfile.is_zipfile(path):
        raise bad_data(f"{path.name} is not a readable zip archive")
    if ext == ".npy":
        with open(path, "rb") as f:
            _check_npy_header(path.name, f, path.stat().st_size)
    if ext != ".zip":
        return EXTENSIONS[ext][0]
    from ..engine.data import DataError
    from ..engine.data.files import detect

    try:
        resolved = detect(path, fmt)
    except DataError as exc:
        raise bad_data(str(exc)) from None
    if resolved == "image_zip":
        _check_images(path, options, limits)
    return resolved


def _check_zip(display: str, zf: zipfile.ZipFile, limits: Limits) -> None:
    infos = zf.infolist()
    if len(infos) > limits.zip_entries:
        raise ApiError(
            413,
            "too_many_entries",
            f"{display} has {len(infos):,} entries; the limit is {limits.zip_entries:,}",
        )
    total = 0
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
            raise ApiError(
                400,
                "unsafe_archive",
                f"{display}: entry {name!r} has an absolute path or '..'; expected paths inside "
                "the archive (refusing to read it)",
            )
        total += info.file_size
        if total > limits.zip_expanded_bytes:
            raise ApiError(
                413,
                "too_large",
                f"{display} expands to more than {format_bytes(limits.zip_expanded_bytes)} "
                f"(at entry {name!r}); the limit is {format_bytes(limits.zip_expanded_bytes)}",
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.zip_ratio_min_bytes and ratio > limits.zip_ratio:
            raise ApiError(
                413,
                "compression_ratio",
                f"{display}: entry {name!r} expands {ratio:,.0f}-fold "
                f"({format_bytes(info.compress_size)} to {format_bytes(info.file_size)}); "
                f"the limit is "
                f"{limits.zip_ratio:g}-fold (a zip bomb?). Store such data uncompressed",
            )


def _check_gz_members(display: str, zf: zipfile.ZipFile, limits: Limits) -> None:
    """gzip files inside the zip (MNIST's *.gz) are decompressed by the engine: bound them by
    streaming through them once (nothing is kept)."""
    budget = limits.zip_expanded_bytes
    for info in zf.infolist():
        if not info.filename.lower().endswith(".gz") or info.is_dir():
            continue
        try:
            with zf.open(info) as raw, gzip.GzipFile(fileobj=raw) as gz:
                while True:
                    chunk = gz.read(CHUNK)
                    if not chunk:
                        break
                    budget -= len(chunk)
                    if budget < 0:
                        raise ApiError(
                            413,
                            "too_large",
                            f"{display}: the .gz entries expand to more than "
                            f"{format_bytes(limits.zip_expanded_bytes)} (at {info.filename!r})",
                        )
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile, RuntimeError) as exc:
            raise bad_data(
                f"{display} entry {info.filename!r} is not a valid gzip file ({exc})"
            ) from None


def _npy_header(fp: IO[bytes]) -> tuple[tuple[int, ...], np.dtype] | None:
    fmt = np.lib.format
    version = fmt.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = fmt.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, _, dtype = fmt.read_array_header_2_0(fp)
    else:
        return None  # the engine reads (or refuses) other versions
    return tuple(int(d) for d in shape), dtype


def _check_npy_header(where: str, fp: IO[bytes], total: int) -> None:
    """The header's shape × itemsize must fit in the bytes present: a 100-byte file cannot
    make the reader allocate terabytes. Object (pickled) arrays are refused outright."""
    try:
        got = _npy_header(fp)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise bad_data(f"{where} is not a readable .npy array ({exc})") from None
    if got is None:
        return
    shape, dtype = got
    if dtype.hasobject:
        raise bad_data(
            f"{where} holds Python objects (pickled data), which are never loaded; expected "
            "numeric arrays"
        )
    need = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    have = total - fp.tell()
    if need > have:
        raise bad_data(
            f"{where}: the header promises shape {shape} of {dtype} ({need:,} bytes) but only "
            f"{have:,} bytes follow; the file is truncated or damaged"
        )


def _check_npz_headers(display: str, zf: zipfile.ZipFile) -> None:
    for info in zf.infolist():
        if info.is_dir() or not info.filename.endswith(".npy"):
            continue
        where = f"{display} key {info.filename[:-4]!r}"
        try:
            with zf.open(info) as f:
                _check_npy_header(where, f, info.file_size)
        except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, zlib.error) as exc:
            raise bad_data(f"{where} cannot be read ({exc})") from None


def _check_images(path: Path, options: Mapping[str, Any], limits: Limits) -> None:
    """Every image's header against the pixel cap, and the decoded tensor against its bound,
    before anything is decoded."""
    from PIL import Image, UnidentifiedImageError

    from ..engine.data import DataError, images
    from ..engine.data.container import open_container

    channels = 1 if options.get("color") == "grayscale" else 3
    # Pillow refuses to open an image over 2 × MAX_IMAGE_PIXELS without telling its size: read
    # the real size from the header (opening decodes nothing) and apply our own cap. This runs
    # in the single-threaded reading child, so changing Pillow's global is safe.
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with open_container(path) as c:
            lay = images.layout(c)
            first = lay.train[0][0]
            first_size: tuple[int, int] | None = None
            for name in c.names:
                if not images.is_image(name):
                    continue
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        img = Image.open(io.BytesIO(c.read(name)))  # reads the header only
                        w, h = img.size
                except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                    raise bad_data(f"{c.where(name)} is not a readable image ({exc})") from None
                if w * h > limits.image_pixels:
                    raise ApiError(
                        413,
                        "image_too_large",
                        f"{c.where(name)} has {w}×{h} pixels; the limit is "
                        f"{limits.image_pixels:,} pixels per image",
                    )
                if name == first:
                    first_size = (h, w)
            size = options.get("image_size") or first_size or (1, 1)
            count = len(lay.train) + len(lay.val or [])
    except DataError as exc:
        raise bad_data(str(exc)) from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    decoded = count * channels * int(size[0]) * int(size[1]) * 4
    if decoded > limits.decoded_bytes:
        raise ApiError(
            413,
            "too_large",
            f"{path.name}: {count:,} images of {channels}×{size[0]}×{size[1]} take "
            f"{format_bytes(decoded)} decoded; the limit is "
            f"{format_bytes(limits.decoded_bytes)} (set a smaller image_size)",
        )
