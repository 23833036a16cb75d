"""Format "text": a UTF-8 text file → next-token windows for language modeling.

The split is decided here, not by the usual random permutation (windows of one text overlap
in content, so shuffled windows would leak the validation text into training): the last
`val_split` fraction of the characters validates, the rest trains, and no window straddles
the cut. The tokenizer is trained on the training part only; a character tokenizer gets an
"<unk>" token for characters that only the validation part holds.

Windows are block_size + 1 tokens taken every block_size tokens: x = the first block_size,
y = the last block_size (the next token at every position).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from graph_compiler.catalog import CATALOG
from graph_compiler.training import split_counts

from . import budget
from .errors import DataError
from .loaded import Loaded
from .tokenizer import Tokenizer, TokenizerError, decode_utf8

UNK = "<unk>"


def default_val_split() -> float:
    """The Training node's default, for reads with no Training node (an upload's preview)."""
    return float(next(p.default for p in CATALOG["Training"].params if p.name == "val_split"))


def train_tokenizer(display: str, p: Mapping[str, Any], text: str, specials) -> Tokenizer:
    """The Dataset's tokenizer choice trained on `text`; a tokenizer that cannot be trained is
    a DataError naming the param."""
    kind = str(p.get("tokenizer") or "char")
    vocab = int(p.get("bpe_vocab_size") or 512) if kind == "bpe" else None
    try:
        return Tokenizer.train(kind, text, vocab_size=vocab, specials=specials)
    except TokenizerError as e:
        field = "bpe_vocab_size" if kind == "bpe" and "vocab_size must" in str(e) else "tokenizer"
        raise DataError(f"{display}: {field}: {e}") from None


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path.name} cannot be read ({e.strerror or e})") from e
    try:
        return decode_utf8(data, path.name)
    except TokenizerError as e:
        raise DataError(str(e)) from None


def _windows(ids: list[int], t: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids_t = torch.tensor(ids, dtype=torch.int64)
    n = (len(ids) - 1) // t
    x = ids_t[: n * t].reshape(n, t)
    y = ids_t[1 : n * t + 1].reshape(n, t)
    return x, y


def read(path: Path, p: Mapping[str, Any], ref: Any) -> tuple[Loaded, Any]:
    display = path.name
    if ref is not None:
        raise DataError(
            f"{display}: a text file is split by val_split (its last part validates); "
            "val_path is not used with text files"
        )
    # the Dataset's default task is classification; a text file only models language
    if p.get("task") == "regression":
        raise DataError(f"{display}: task: text files give task language_model, not regression")
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{display}: the text is empty; expected text to train a tokenizer on")
    budget.check(display, "the token windows", 2 * 8 * len(text.encode("utf-8")))
    val_split = float(p.get("val_split", default_val_split()))
    t = int(p.get("block_size") or 64)
    n_train, n_val = split_counts(len(text), val_split)
    train_text, val_text = text[:n_train], text[n_train:]
    kind = str(p.get("tokenizer") or "char")
    specials = (UNK,) if kind == "char" and n_val else ()
    tok = train_tokenizer(display, p, train_text, specials)
    train_ids = tok.encode(train_text)
    _check_block(display, t, len(train_ids), "the training part", val_split)
    x, y = _windows(train_ids, t)
    val = None
    if n_val:
        val_ids = tok.encode(val_text)
        _check_block(display, t, len(val_ids), "the validation part", val_split)
        val = _windows(val_ids, t)
    described = (
        f"{display}: {len(text):,} characters, {kind} tokenizer ({tok.vocab_size} tokens), "
        f"{len(x)} training windows of {t}" + (f", {len(val[0])} validation" if val else "")
    )
    loaded = Loaded(
        x=x,
        y=y,
        task="language_model",
        num_classes=None,
        class_names=None,
        feature_names=None,
        description=described,
        val=val,
        tokenizer=tok,
        vocab_size=tok.vocab_size,
    )
    return loaded, None


def _check_block(display: str, t: int, n: int, part: str, val_split: float) -> None:
    if n < t + 1:
        share = f" (the last {val_split:.0%} of the text)" if "validation" in part else ""
        raise DataError(
            f"{display}: block_size {t} is longer than {part}{share}, which has {n} tokens; "
            f"a window needs block_size + 1 = {t + 1} tokens (lower block_size"
            + (" or val_split)" if share else ", or use a longer text)")
        )
