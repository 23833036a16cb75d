"""What each data source yields, known without loading it: shapes, dtypes and the task.

The engine (a later module) loads the data; the compiler only needs the shapes to infer the
network. Keeping the table here lets both agree on one description of every built-in source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

# language_model: x (T,) int64 token ids, y (T,) int64 the next token at every position
Task = Literal["classification", "regression", "reconstruction", "language_model"]


@dataclass(frozen=True)
class DataInfo:
    x_shape: tuple[int, ...]  # per sample, batch excluded
    x_dtype: str  # "float32" or "int64"
    y_shape: tuple[int, ...]
    y_dtype: str
    task: Task
    num_classes: int | None
    samples: int | None
    description: str
    # token-id inputs (x_dtype int64): ids lie in 0..vocab_size-1 (an Embedding needs at least
    # this many rows); None for float inputs
    vocab_size: int | None = None
    # padded token batches (a tokenized CSV text column): the id of "<pad>", else None
    pad_id: int | None = None


@dataclass(frozen=True)
class BuiltinSource:
    name: str
    description: str
    synthetic: bool = False

    def info(self, p: Mapping[str, Any]) -> DataInfo:
        return _INFO[self.name](p)


def _classes(x_shape, n_classes, samples, desc) -> DataInfo:
    return DataInfo(
        tuple(x_shape), "float32", (), "int64", "classification", n_classes, samples, desc
    )


def _regression(x_shape, samples, desc, y_dim: int = 1) -> DataInfo:
    return DataInfo(
        tuple(x_shape), "float32", (y_dim,), "float32", "regression", None, samples, desc
    )


def _language_model(block_size: int, vocab: int, samples, desc) -> DataInfo:
    """Windows of `block_size` token ids; the target is the next id at every position."""
    return DataInfo(
        (block_size,),
        "int64",
        (block_size,),
        "int64",
        "language_model",
        vocab,
        samples,
        desc,
        vocab_size=vocab,
    )


# the markov_text alphabet's size (server/engine/data/markov_text.py ALPHABET; a test keeps
# the two equal)
MARKOV_TEXT_VOCAB = 22

_INFO = {
    "digits": lambda p: _classes((64,), 10, 1797, "sklearn digits, 8×8 images flattened to 64"),
    "digits_images": lambda p: _classes((1, 8, 8), 10, 1797, "sklearn digits as 1×8×8 images"),
    "iris": lambda p: _classes((4,), 3, 150, "sklearn iris flowers"),
    "wine": lambda p: _classes((13,), 3, 178, "sklearn wine recognition"),
    "breast_cancer": lambda p: _classes((30,), 2, 569, "sklearn breast cancer (binary)"),
    "diabetes": lambda p: _regression((10,), 442, "sklearn diabetes progression (regression)"),
    "moons": lambda p: _classes((2,), 2, p["samples"], "two interleaving half-moons"),
    "circles": lambda p: _classes((2,), 2, p["samples"], "two concentric circles"),
    "spirals": lambda p: _classes((2,), p["num_classes"], p["samples"], "interleaved spirals"),
    "sine_classify": lambda p: _classes(
        (p["seq_len"], 1), p["num_classes"], p["samples"], "noisy sines; class = frequency band"
    ),
    "sine_regress": lambda p: _regression(
        (p["seq_len"], 1), p["samples"], "noisy sines; predict the next value"
    ),
    "random_images": lambda p: _classes(
        tuple(p["image_shape"]), p["num_classes"], p["samples"], "random images (benchmarks)"
    ),
    # shipped CSV (server/engine/data/shipped/reviews.csv), its text column as characters:
    # T and the vocabulary are the file's (a test reads it and checks them)
    "reviews": lambda p: replace(
        _classes((66,), 2, 3000, "short reviews; the label is the last clause's sentiment"),
        x_dtype="int64",
        vocab_size=25,
        pad_id=0,
    ),
    "shapes_segmentation": lambda p: _segmentation(tuple(p["image_shape"]), p["samples"]),
    "markov_text": lambda p: _language_model(
        p["seq_len"],
        MARKOV_TEXT_VOCAB,
        p["samples"],
        "synthetic text from a seeded order-2 Markov chain (known entropy rate)",
    ),
}

# shapes_segmentation: per-pixel class 0 is the background, then one class per shape kind
SEGMENTATION_CLASSES = ("background", "disc", "square", "triangle")


def _segmentation(image_shape, samples) -> DataInfo:
    """Images of random shapes; y is the (H, W) mask of per-pixel class ids."""
    return DataInfo(
        image_shape,
        "float32",
        image_shape[1:],
        "int64",
        "classification",
        len(SEGMENTATION_CLASSES),
        samples,
        "random discs, squares and triangles with per-pixel masks (segmentation)",
    )


BUILTINS: dict[str, BuiltinSource] = {
    name: BuiltinSource(
        name,
        _INFO[name](
            {"samples": 0, "num_classes": 2, "seq_len": 1, "image_shape": (1, 1, 1)}
        ).description,
        synthetic=name
        in {
            "moons",
            "circles",
            "spirals",
            "sine_classify",
            "sine_regress",
            "random_images",
            "shapes_segmentation",
            "markov_text",
        },
    )
    for name in _INFO
}
FILE = "file"
FILE_FORMATS = (
    "auto",
    "csv",
    "npz",
    "npy",
    "safetensors",
    "image_zip",
    "image_folder",
    "mnist",
    "cifar10",
    "text",
)


def describe(params: Mapping[str, Any]) -> DataInfo:
    """Shapes for a Dataset node's params (already validated by the catalog)."""
    source = params["source"]
    if source == FILE:
        x_shape = tuple(params.get("x_shape") or ())
        task = params.get("task") or "classification"
        n = params.get("num_classes")
        if task == "classification":
            info = _classes(x_shape, n, None, "a data file")
        elif task == "language_model":
            # x and y are (T,) windows of ids, y is x shifted by one token; T is block_size,
            # known before the file is read again
            t = (int(params["block_size"]),) if params.get("block_size") else x_shape
            info = DataInfo(t, "int64", t, "int64", task, None, None, "a text file")
        else:
            y_dim = int(params.get("y_dim") or 1)
            info = _regression(x_shape, None, "a data file", y_dim=y_dim)
        if params.get("x_dtype") == "int64":
            vocab = params.get("vocab_size")
            info = replace(info, x_dtype="int64", vocab_size=vocab, pad_id=params.get("pad_id"))
        return info
    return BUILTINS[source].info(params)
