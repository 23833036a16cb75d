"""Data shipped in the repository (server/engine/data/shipped/), read through the same paths
as uploads: "reviews" is a CSV text column tokenized like an uploaded one (text_csv.py).

scripts/make_reviews.py writes reviews.csv and says what the task is.
"""

from __future__ import annotations

from pathlib import Path

from graph_compiler.datasets import BUILTINS

from . import text_csv
from .loaded import Loaded

FOLDER = Path(__file__).resolve().parent / "shipped"
# the Dataset params each source is read with, as an upload of the file would be
_SOURCES = {
    "reviews": (
        "reviews.csv",
        {"text_column": "text", "target_column": "label", "tokenizer": "char", "max_length": 128},
    ),
}
NAMES = frozenset(_SOURCES)


def load(name: str) -> Loaded:
    filename, params = _SOURCES[name]
    loaded, _ = text_csv.read(FOLDER / filename, params, None)
    loaded.description = f"{BUILTINS[name].description} — {loaded.description}"
    return loaded
