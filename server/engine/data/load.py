"""load_data and file_shapes: the entry points that pick built-in, generated or file data."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graph_compiler.datasets import FILE

from . import builtin, files, shipped, synthetic
from .errors import DataError
from .loaded import Loaded
from .params import with_defaults


def load_data(params: Mapping[str, Any], *, base_dir: Path | None = None) -> Loaded:
    """Read the data a Dataset node describes (its params; missing ones take their defaults).
    File paths are relative to `base_dir` unless absolute."""
    p = with_defaults(params)
    source = p["source"]
    if source in builtin.NAMES:
        return builtin.load(source)
    if source in synthetic.NAMES:
        return synthetic.load(source, p)
    if source in shipped.NAMES:
        return shipped.load(source)
    if source == FILE:
        return files.load(p, base_dir)
    known = ", ".join([*sorted(builtin.NAMES | synthetic.NAMES | shipped.NAMES), FILE])
    raise DataError(f"unknown data source {source!r}; expected one of {known}")


def file_shapes(params: Mapping[str, Any], *, base_dir: Path | None = None) -> dict[str, Any]:
    """What the compiler needs to know about a file source, read from the file itself:
    {"x_shape": [...], "x_dtype": "float32" | "int64", "vocab_size": int | None (token ids),
    "pad_id": int | None, "task": ..., "num_classes": int | None (None for regression),
    "y_dim": int}. Merge into the Dataset node's params, skipping None values."""
    p = dict(with_defaults(params))
    if p["source"] != FILE:
        raise DataError(f"file_shapes is for source {FILE!r}, not {p['source']!r}")
    return shapes_of(files.load(p, base_dir))


def shapes_of(loaded: Loaded) -> dict[str, Any]:
    """file_shapes' answer for data already read (the upload flow reads it once)."""
    return {
        "x_shape": list(loaded.x_shape),
        "x_dtype": "float32" if loaded.x.is_floating_point() else "int64",
        "vocab_size": loaded.vocab_size,
        "pad_id": loaded.tokenizer.pad_id if loaded.tokenizer is not None else None,
        "task": loaded.task,
        "num_classes": loaded.num_classes if loaded.task == "classification" else None,
        "y_dim": loaded.y_dim if loaded.task == "regression" else 1,
    }
