"""Images in one sub-folder per class (a zip or a folder): decoded with Pillow, converted to
grayscale or RGB, resized to one size, float32 in [0, 1], x (N, C, H, W).

A single wrapping folder is looked through ("pets/cat/1.png"), and a top level of train/ and
val/ (or valid/, validation/, test/) folders gives an explicit validation set.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np

from . import budget
from .container import Container
from .errors import DataError

EXTENSIONS = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"
)  # fmt: skip
_TRAIN = "train"
_VAL = ("val", "valid", "validation", "test")


@dataclass
class Layout:
    train: list[tuple[str, str]]  # (name in the container, class folder)
    val: list[tuple[str, str]] | None
    val_folder: str | None = None


def is_image(name: str) -> bool:
    return name.lower().endswith(EXTENSIONS)


def looks_like(c: Container) -> bool:
    return any(is_image(n) and "/" in n for n in c.names)


def layout(c: Container) -> Layout:
    names = [n for n in c.names if is_image(n)]
    if not names:
        raise DataError(
            f"{c.display}: no images found; expected image files ({', '.join(EXTENSIONS)}) in "
            "one sub-folder per class, e.g. cat/1.png, dog/2.png"
        )
    parts = [n.split("/") for n in names]
    while all(len(p) >= 3 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]
    tops = {p[0] for p in parts}
    if all(len(p) >= 3 for p in parts) and _TRAIN in tops and tops <= {_TRAIN, *_VAL}:
        val_folder = next((v for v in _VAL if v in tops), None)
        train = [(n, p[1]) for n, p in zip(names, parts, strict=True) if p[0] == _TRAIN]
        val = [(n, p[1]) for n, p in zip(names, parts, strict=True) if p[0] == val_folder]
        return Layout(train, val or None, val_folder)
    for n, p in zip(names, parts, strict=True):
        if len(p) < 2:
            raise DataError(
                f"{c.where(n)} is not in a class folder; expected one sub-folder per class, "
                "e.g. cat/1.png, dog/2.png"
            )
    return Layout([(n, p[0]) for n, p in zip(names, parts, strict=True)], None)


def open_image(where: str, data: bytes, mode: str):
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # palette transparency, bomb warnings (limit below)
            img = Image.open(io.BytesIO(data))
            img.load()
            return img.convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise DataError(f"{where} is not a readable image ({e})") from e
    except Image.DecompressionBombError as e:
        raise DataError(f"{where} is too large to decode ({e})") from e


def decode(
    c: Container, entries: list[tuple[str, str]], mode: str, size: tuple[int, int]
) -> np.ndarray:
    """(N, C, H, W) float32 in [0, 1]; `size` is (H, W)."""
    from PIL import Image

    h, w = size
    channels = 1 if mode == "L" else 3
    # the decoded tensor, and (the largest temporary) one resized image as float32
    budget.check(
        c.display,
        f"{len(entries):,} images of {channels}×{h}×{w} (float32)",
        4 * channels * h * w * (len(entries) + 1),
    )
    out = np.empty((len(entries), channels, h, w), dtype=np.float32)
    for i, (name, _) in enumerate(entries):
        img = open_image(c.where(name), c.read(name), mode)
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        a = np.asarray(img, dtype=np.float32)
        out[i] = (a[None] if channels == 1 else a.transpose(2, 0, 1)) / 255.0
    return out


def first_size(c: Container, name: str, mode: str) -> tuple[int, int]:
    img = open_image(c.where(name), c.read(name), mode)
    return img.height, img.width


def labels(
    c: Container, entries: list[tuple[str, str]], classes: list[str], what: str
) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    out = np.empty(len(entries), dtype=np.int64)
    for i, (name, cls) in enumerate(entries):
        if cls not in index:
            raise DataError(
                f"{c.where(name)}: class folder {cls!r} of the {what} is not among the training "
                f"classes ({', '.join(classes)})"
            )
        out[i] = index[cls]
    return out


def class_list(c: Container, entries: list[tuple[str, str]]) -> list[str]:
    classes = sorted({cls for _, cls in entries})
    if len(classes) < 2:
        raise DataError(
            f"{c.display}: found only the class folder {classes[0]!r}; expected one sub-folder "
            "per class, at least 2"
        )
    return classes
