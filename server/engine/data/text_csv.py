"""CSV with a text column (`text_column`) → padded token ids for text classification.

The text column is tokenized (char / byte / bpe, with "<pad>" as id 0 and, for characters,
"<unk>" for characters the training file does not hold), each row cut at max_length tokens
and padded with the pad id to the longest row: x (N, T) int64. The label column is
target_column (default: the last column other than the text). Other columns are not used.

A validation file (val_path) is read with the training file's tokenizer, classes and T.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import budget, tabular
from .errors import DataError
from .loaded import Loaded
from .split import split_order
from .text import default_val_split, train_tokenizer
from .tokenizer import Tokenizer, TokenizerError

PAD, UNK = "<pad>", "<unk>"


@dataclass
class TextSchema:
    tokenizer: Tokenizer
    classes: list[str]
    length: int  # T: the padded length of the training file


def _column(t, name: str) -> int:
    lower = [h.lower() for h in t.header]
    if name.strip().lower() in lower:
        return lower.index(name.strip().lower())
    raise DataError(
        f"{t.display}: no column named {name!r} (text_column); the columns are "
        + ", ".join(repr(h) for h in t.header)
    )


def _label_column(t, text_j: int, target_column: str) -> int:
    if target_column.strip():
        j = tabular._target_index(t, target_column)
    else:  # the last column that is not the text
        j = max(k for k in range(len(t.header)) if k != text_j)
    if j == text_j:
        raise DataError(
            f"{t.display}: target_column and text_column are both {t.header[j]!r}; expected "
            "a label column besides the text"
        )
    return j


def _training_rows(n: int, p: Mapping[str, Any]) -> list[int]:
    """The rows the run trains on: all of them when a validation file is given, else those
    split() keeps for training (the same seeded order), so that the tokenizer never learns
    from validation text."""
    if p.get("val_path") or p.get("val_dataset_id"):
        return list(range(n))
    val_split = float(p.get("val_split", default_val_split()))
    train, _ = split_order(n, val_split, int(p.get("split_seed") or 0))
    return sorted(train.tolist())


def _encode(t, tok: Tokenizer, texts: list[str], max_length: int) -> tuple[list[list[int]], int]:
    """Each row's ids cut at max_length, and how many rows were cut."""
    out, cut = [], 0
    for i, text in enumerate(texts):
        try:
            ids = tok.encode(text)
        except TokenizerError as e:
            raise DataError(f"{t.display} row {t.lines[i]}: {e}") from None
        cut += len(ids) > max_length
        out.append(ids[:max_length])
    return out, cut


def read(path: Path, p: Mapping[str, Any], ref: Any) -> tuple[Loaded, TextSchema]:
    if p.get("task") not in (None, "classification"):
        raise DataError(
            f"{path.name}: task: a text column gives class labels; expected task "
            f"classification, found {p.get('task')!r}"
        )
    t = tabular._read_table(path)
    text_j = _column(t, str(p.get("text_column")))
    label_j = _label_column(t, text_j, str(p.get("target_column") or ""))
    for i, row in enumerate(t.rows):
        if tabular._is_missing(row[label_j]):
            raise DataError(
                f"{t.display} row {t.lines[i]}: the label {t.header[label_j]!r} is missing; "
                "expected a class in every row"
            )
    texts = t.column(text_j)
    max_length = int(p.get("max_length") or 256)
    if ref is None or ref is True:
        kind = str(p.get("tokenizer") or "char")
        specials = (PAD, UNK) if kind == "char" else (PAD,)
        joined = "\n".join(texts[i] for i in _training_rows(len(texts), p))
        if not joined.strip():
            raise DataError(
                f"{t.display}: column {t.header[text_j]!r} (text_column) is empty in every row; "
                "expected text to train a tokenizer on"
            )
        tok = train_tokenizer(t.display, p, joined, specials)
        classes, _ = tabular._class_key(t.column(label_j))
        if len(classes) < 2:
            raise DataError(
                f"{t.display}: label {t.header[label_j]!r} has one value ({classes[0]!r}); "
                "classification needs at least 2 classes"
            )
        ids, cut = _encode(t, tok, texts, max_length)
        schema = TextSchema(tok, classes, max(1, max(len(r) for r in ids)))
    else:
        schema = ref
        ids, cut = _encode(t, schema.tokenizer, texts, schema.length)
    n, length, pad = len(ids), schema.length, schema.tokenizer.pad_id
    budget.check(t.display, f"{n:,} rows × {length:,} tokens", 8 * n * length)
    x = torch.full((n, length), pad, dtype=torch.int64)
    for i, row in enumerate(ids):
        x[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
    label_schema = tabular.Schema([], t.header[label_j], "classification", schema.classes, "", "")
    y = tabular._targets(t, label_j, label_schema)
    description = (
        f"{t.display}: {n} rows, text {t.header[text_j]!r} as {schema.tokenizer.kind} tokens "
        f"({schema.tokenizer.vocab_size} in the vocabulary, padded to {length}"
        + (f", {cut} rows cut to {length}" if cut else "")
        + f"), label {t.header[label_j]!r} with {len(schema.classes)} classes"
    )
    loaded = Loaded(
        x=x,
        y=y,
        task="classification",
        num_classes=len(schema.classes),
        class_names=list(schema.classes),
        feature_names=None,
        description=description,
        tokenizer=schema.tokenizer,
        vocab_size=schema.tokenizer.vocab_size,
    )
    return loaded, schema
