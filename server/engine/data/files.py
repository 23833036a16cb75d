"""Source "file": find the file, pick its format, read it (and the validation file), and check
what came out against the task."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import arrays, cifar, images, mnist, tabular, targets, text, text_csv
from .container import open_container
from .errors import DataError
from .loaded import Loaded

_BY_SUFFIX = {
    ".csv": "csv",
    ".tsv": "csv",
    ".npz": "npz",
    ".npy": "npy",
    ".safetensors": "safetensors",
    ".zip": "image_zip",
    ".txt": "text",
}


def resolve(path: str, base_dir: Path | None, what: str = "path") -> Path:
    if not path.strip():
        raise DataError(
            f"no data file: the Dataset's {what} is empty; expected a file or folder "
            "(upload one, or set path)"
        )
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    if not p.exists():
        raise DataError(f"{path} not found ({what}: looked for {p})")
    return p


def detect(path: Path, fmt: str) -> str:
    """The format for `format` "auto": by extension, or by what a folder or zip holds."""
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if path.is_file() and suffix in _BY_SUFFIX and suffix != ".zip":
        return _BY_SUFFIX[suffix]
    if path.is_dir() or suffix == ".zip":
        with open_container(path) as c:
            if mnist.looks_like(c):
                return "mnist"
            if cifar.looks_like(c):
                return "cifar10"
            if images.looks_like(c):
                return "image_folder" if path.is_dir() else "image_zip"
        raise DataError(
            f"{path.name}: cannot tell the format; expected class sub-folders of images, MNIST "
            "IDX files (train-images-idx3-ubyte, …) or CIFAR-10 batches (data_batch_1.bin, …)"
        )
    raise DataError(
        f"{path.name}: cannot tell the format from the name; expected .csv, .tsv, .npz, .npy, "
        ".safetensors, .txt, .zip or a folder (or set format)"
    )


Reader = Callable[[Path, Mapping[str, Any], Any], tuple[Loaded, Any]]


def _arrays(read: Callable[[Path, Mapping[str, Any]], arrays.Arrays]) -> Reader:
    def reader(path: Path, p: Mapping[str, Any], ref: Any) -> tuple[Loaded, Any]:
        a = read(path, p)
        display = path.name
        task = str(p.get("task", "classification"))
        tokens = p.get("x_dtype") == "int64"
        x, y = _xy(display, a.x, a.y, a.names, task, tokens)
        val = None
        if a.val is not None:
            val = _xy(
                display, a.val[0], a.val[1], ("x (validation)", "y (validation)"), task, tokens
            )
            if val[0].dtype != x.dtype:
                raise DataError(
                    f"{display}: validation x is {val[0].dtype} but training x is {x.dtype}; "
                    "expected the same kind (token ids or float features)"
                )
        # token ids: load() settles vocab_size over the validation set too
        vocab = None if x.is_floating_point() else int(x.max()) + 1 if x.numel() else 0
        loaded = Loaded(
            x=x,
            y=y,
            task=task,
            num_classes=None,
            class_names=None,
            feature_names=None,
            description=f"{display}: {len(x)} samples of shape {tuple(x.shape[1:])}"
            + (" (int64 token ids)" if vocab is not None else ""),
            val=val,
            vocab_size=vocab,
        )
        return loaded, None

    return reader


def _xy(
    display: str,
    x: np.ndarray,
    y: np.ndarray,
    names: tuple[str, str],
    task: str,
    tokens: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    if x.ndim == 0 or y.ndim == 0:
        raise DataError(f"{display}: x and y must have one entry per sample, found a scalar")
    targets.check_lengths(display, len(x), len(y))
    where_y = f"{display} {names[1]}" if names[1] != "y" else display
    where_x = display if names[0] == "x" else f"{display} {names[0]}"
    if tokens or targets.holds_token_ids(x):
        xt = targets.token_ids(where_x, x)
    else:
        xt = targets.features(where_x, x)
    if task == "classification":
        return xt, targets.class_ids(where_y, y)
    return xt, targets.regression_targets(where_y, y)


def _csv(path: Path, p: Mapping[str, Any], ref: Any) -> tuple[Loaded, Any]:
    if str(p.get("text_column") or "").strip():
        return text_csv.read(path, p, ref)
    return tabular.read(path, p, ref)


def _classification_only(path: Path, p: Mapping[str, Any], what: str) -> None:
    if p.get("task", "classification") != "classification":
        raise DataError(
            f"{path.name}: {what} give class labels; expected task classification, found "
            f"{p.get('task')!r}"
        )


def _mnist(path: Path, p: Mapping[str, Any], ref: Any) -> tuple[Loaded, Any]:
    _classification_only(path, p, "MNIST files")
    with open_container(path) as c:
        (x, y), test = mnist.read(c, as_val=ref is not None)
    k = max(10, *(int(t.max()) + 1 for t in ([y] + ([test[1]] if test else []))))
    return Loaded(
        x=x,
        y=y,
        task="classification",
        num_classes=k,
        class_names=[str(i) for i in range(k)],
        feature_names=None,
        description=f"{path.name}: MNIST-style IDX, {len(x)} images of "
        f"{x.shape[2]}×{x.shape[3]}" + (f", {len(test[0])} t10k images" if test else ""),
        val=test,
    ), None


def _cifar(path: Path, p: Mapping[str, Any], ref: Any) -> tuple[Loaded, Any]:
    _classification_only(path, p, "CIFAR-10 batches")
    with open_container(path) as c:
        (x, y), test, names = cifar.read(c, as_val=ref is not None)
    return Loaded(
        x=x,
        y=y,
        task="classification",
        num_classes=cifar.NUM_CLASSES,
        class_names=names,
        feature_names=None,
        description=f"{path.name}: CIFAR-10 binary, {len(x)} images"
        + (f", {len(test[0])} test images" if test else ""),
        val=test,
    ), None


def _images(path: Path, p: Mapping[str, Any], ref: Any) -> tuple[Loaded, Any]:
    _classification_only(path, p, "image folders")
    mode = "L" if p.get("color") == "grayscale" else "RGB"
    with open_container(path) as c:
        lay = images.layout(c)
        entries = lay.train + (lay.val or []) if ref is not None else lay.train
        if ref is None:
            classes = images.class_list(c, lay.train)
            size = p.get("image_size")
            size = (
                (int(size[0]), int(size[1]))
                if size
                else images.first_size(c, lay.train[0][0], mode)
            )
        else:
            classes, size = ref
        x = torch.from_numpy(images.decode(c, entries, mode, size))
        y = torch.from_numpy(
            images.labels(c, entries, classes, "validation set" if ref else "data")
        )
        val = None
        if ref is None and lay.val:
            val = (
                torch.from_numpy(images.decode(c, lay.val, mode, size)),
                torch.from_numpy(images.labels(c, lay.val, classes, f"{lay.val_folder}/ folder")),
            )
    h, w = size
    description = (
        f"{path.name}: {len(x)} images in {len(classes)} classes, {x.shape[1]}×{h}×{w}"
        + (f", {len(val[0])} in {lay.val_folder}/" if val else "")
    )
    loaded = Loaded(
        x=x,
        y=y,
        task="classification",
        num_classes=len(classes),
        class_names=list(classes),
        feature_names=None,
        description=description,
        val=val,
    )
    return loaded, (classes, size)


READERS: dict[str, Reader] = {
    "csv": _csv,
    "npz": _arrays(lambda path, p: arrays.read_npz(path)),
    "npy": _arrays(lambda path, p: arrays.read_npy(path, str(p.get("target_column", "")))),
    "safetensors": _arrays(lambda path, p: arrays.read_safetensors(path)),
    "image_zip": _images,
    "image_folder": _images,
    "mnist": _mnist,
    "cifar10": _cifar,
    "text": text.read,
}


def load(p: Mapping[str, Any], base_dir: Path | None) -> Loaded:
    path = resolve(str(p.get("path") or ""), base_dir)
    fmt = detect(path, str(p.get("format") or "auto"))
    if fmt not in READERS:
        raise DataError(f"unknown file format {fmt!r}; expected one of {', '.join(READERS)}")
    read = READERS[fmt]
    if p.get("task") == "language_model" and fmt != "text":
        raise DataError(
            f"{path.name}: task language_model reads a text file (.txt, format text); "
            f"{fmt} files give task classification or regression"
        )
    val_path = str(p.get("val_path") or "").strip()
    shown = path.name
    try:
        loaded, ref = read(path, p, None)
        if val_path:
            vpath = resolve(val_path, base_dir, "val_path")
            shown = vpath.name
            vloaded, _ = read(vpath, p, ref if ref is not None else True)
            loaded.val = (vloaded.x, vloaded.y)
    except IsADirectoryError as e:
        raise DataError(f"{shown} is a folder; expected a {fmt} file") from e
    except PermissionError as e:
        raise DataError(f"{shown} cannot be read (permission denied)") from e
    if loaded.val is not None:
        _check_val(loaded, shown)
    if loaded.vocab_size is not None and loaded.tokenizer is None:
        _token_vocab(loaded, p.get("vocab_size"), path.name)
    if loaded.task == "classification":
        ys = [loaded.y] + ([loaded.val[1]] if loaded.val is not None else [])
        n = targets.count_classes(path.name, *ys)
        loaded.num_classes = max(loaded.num_classes or 0, n)
    return loaded


def _token_vocab(loaded: Loaded, declared: Any, display: str) -> None:
    """vocab_size of token-id x: the largest id + 1 (validation included), or a larger declared
    one (a vocabulary whose top ids the file happens not to use)."""
    xs = [loaded.x] + ([loaded.val[0]] if loaded.val is not None else [])
    found = max(int(t.max()) + 1 if t.numel() else 0 for t in xs)
    if declared is None:
        loaded.vocab_size = found
        return
    if int(declared) < found:
        raise DataError(
            f"{display}: x holds token id {found - 1} but vocab_size is {declared}; expected ids "
            f"below vocab_size (raise vocab_size to at least {found})"
        )
    loaded.vocab_size = int(declared)


def _check_val(loaded: Loaded, display: str) -> None:
    assert loaded.val is not None
    vx, vy = loaded.val
    if vx.dtype != loaded.x.dtype:
        raise DataError(
            f"{display}: validation x is {vx.dtype} but the training x is {loaded.x.dtype}; "
            "expected the same kind (token ids or float features)"
        )
    if tuple(vx.shape[1:]) != tuple(loaded.x.shape[1:]):
        raise DataError(
            f"{display}: validation samples have shape {tuple(vx.shape[1:])}; expected "
            f"{tuple(loaded.x.shape[1:])} as in the training data"
        )
    if tuple(vy.shape[1:]) != tuple(loaded.y.shape[1:]):
        raise DataError(
            f"{display}: validation targets have shape {tuple(vy.shape[1:])}; expected "
            f"{tuple(loaded.y.shape[1:])} as in the training data"
        )
