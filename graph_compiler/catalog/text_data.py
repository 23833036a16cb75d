"""The Dataset node's params for token data: text files, text CSV columns and integer arrays.

Kept apart from catalog/data.py so the text sources read as one unit; data.py splices them in.
x_dtype, vocab_size and pad_id are filled in when the file is read (like x_shape), so the
compiler knows an edge is `B×T int64` and can check an Embedding against the vocabulary.
"""

from __future__ import annotations

from ..datasets import FILE
from .spec import Param

TOKENIZERS = ("char", "byte", "bpe")
_FILE = {"source": (FILE,)}

TEXT_PARAMS = (
    Param(
        "tokenizer",
        "choice",
        "char",
        "Text: how text becomes token ids (char, byte, or BPE trained on the training split).",
        choices=TOKENIZERS,
        visible_if=_FILE,
    ),
    Param(
        "bpe_vocab_size",
        "int",
        512,
        "Text, BPE tokenizer: vocabulary size to train (the 256 byte symbols and specials "
        "included).",
        min=2,
        max=1_000_000,
        visible_if=_FILE,
    ),
    Param(
        "block_size",
        "int",
        64,
        "Text file: tokens per training window (T); the target is the next token at every "
        "position.",
        min=1,
        max=1_000_000,
        visible_if=_FILE,
    ),
    Param(
        "text_column",
        "str",
        "",
        "CSV: a column of text to tokenize as the input (text classification); empty: none.",
        visible_if=_FILE,
    ),
    Param(
        "max_length",
        "int",
        256,
        "CSV text column: at most this many tokens per row (longer rows are cut); rows are "
        "padded with the pad id to the longest.",
        min=1,
        max=1_000_000,
        visible_if=_FILE,
    ),
)

TOKEN_PARAMS = (
    Param(
        "x_dtype",
        "choice",
        "float32",
        "Input dtype (filled in when the file is read): int64 for token ids.",
        choices=("float32", "int64"),
        visible_if=_FILE,
    ),
    Param(
        "vocab_size",
        "int",
        None,
        "Token ids: the vocabulary size, ids 0..vocab_size-1 (filled in when the file is "
        "read: the tokenizer's size, or the largest id + 1; set it to declare a larger one).",
        min=1,
        max=100_000_000,
        nullable=True,
        visible_if=_FILE,
    ),
    Param(
        "pad_id",
        "int",
        None,
        "Padded token batches: the id of <pad> (filled in when the file is read).",
        min=0,
        nullable=True,
        visible_if=_FILE,
    ),
)
