"""Tokenizers for text data: characters, bytes, or BPE trained with the `tokenizers` library.

Self-contained (the standard library, plus `tokenizers` for BPE only) because it is copied
verbatim into a run's code.zip, where sample.py uses it with nothing of torchloom installed.

    tok = Tokenizer.train("char", text, specials=("<pad>",))
    ids = tok.encode("hello")          # list[int]
    tok.decode(ids)                    # "hello"
    tok.save(path); Tokenizer.load(path)

Special tokens (e.g. "<pad>", "<unk>") take the first ids, in the order given, for every kind.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

KINDS = ("char", "byte", "bpe")
FORMAT = "torchloom-tokenizer/1"
MIN_BPE_CHARS = 16  # below this BPE has nothing to learn from
MAX_VOCAB = 1_000_000


class TokenizerError(ValueError):
    """A tokenizer that cannot be trained, loaded, or used on the given text; the message says
    which and why."""


class Tokenizer:
    def __init__(
        self,
        kind: str,
        specials: Sequence[str] = (),
        chars: Sequence[str] = (),
        bpe_json: str | None = None,
    ):
        if kind not in KINDS:
            raise TokenizerError(f"unknown tokenizer {kind!r}; expected one of {', '.join(KINDS)}")
        self.kind = kind
        self.specials = tuple(specials)
        self.chars = tuple(chars)
        self._bpe_json = bpe_json
        self._bpe = None
        self._char_ids = {c: i + len(self.specials) for i, c in enumerate(self.chars)}
        if kind == "bpe":
            if bpe_json is None:
                raise TokenizerError("a BPE tokenizer needs its trained model")
            self._bpe = _bpe_from_json(bpe_json)

    # -- training ---------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        kind: str,
        text: str,
        vocab_size: int | None = None,
        specials: Sequence[str] = (),
    ) -> Tokenizer:
        """Learn the vocabulary from `text` (the training split only). `vocab_size` is used by
        BPE (the total, specials included); char and byte vocabularies are what they are."""
        specials = tuple(dict.fromkeys(specials))
        if kind == "char":
            if not text:
                raise TokenizerError("cannot build a character vocabulary from empty text")
            chars = sorted(set(text) - set(specials))
            return cls("char", specials, chars)
        if kind == "byte":
            return cls("byte", specials)
        if kind == "bpe":
            return cls("bpe", specials, bpe_json=_train_bpe(text, vocab_size, specials))
        raise TokenizerError(f"unknown tokenizer {kind!r}; expected one of {', '.join(KINDS)}")

    # -- use --------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        if self.kind == "char":
            return len(self.specials) + len(self.chars)
        if self.kind == "byte":
            return len(self.specials) + 256
        return int(self._bpe.get_vocab_size(with_added_tokens=True))

    def special_id(self, token: str) -> int | None:
        """The id of a special token such as "<pad>", or None when there is none."""
        if token not in self.specials:
            return None
        if self.kind == "bpe":
            return self._bpe.token_to_id(token)
        return self.specials.index(token)

    @property
    def pad_id(self) -> int | None:
        return self.special_id("<pad>")

    def encode(self, text: str) -> list[int]:
        if self.kind == "char":
            unk = self.special_id("<unk>")
            ids = []
            for pos, c in enumerate(text):
                i = self._char_ids.get(c, unk)
                if i is None:
                    raise TokenizerError(
                        f"character {c!r} at position {pos} is not in the vocabulary "
                        f"({len(self.chars)} characters learned from the training text)"
                    )
                ids.append(i)
            return ids
        if self.kind == "byte":
            offset = len(self.specials)
            return [b + offset for b in text.encode("utf-8")]
        return list(self._bpe.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Iterable[int]) -> str:
        """Text for ids; special tokens are dropped, ids out of range raise."""
        ids = [int(i) for i in ids]
        for pos, i in enumerate(ids):
            if not 0 <= i < self.vocab_size:
                raise TokenizerError(
                    f"token id {i} at position {pos} is outside the vocabulary "
                    f"(0..{self.vocab_size - 1})"
                )
        n = len(self.specials)
        if self.kind == "char":
            return "".join(self.chars[i - n] for i in ids if i >= n)
        if self.kind == "byte":
            return bytes(i - n for i in ids if i >= n).decode("utf-8", errors="replace")
        return self._bpe.decode(ids, skip_special_tokens=True)

    def token_text(self, i: int) -> str:
        """One token as text, for previews (special tokens as themselves)."""
        n = len(self.specials)
        if i < n and self.kind != "bpe":
            return self.specials[i]
        if self.kind == "char":
            return self.chars[i - n]
        if self.kind == "byte":
            return bytes([i - n]).decode("utf-8", errors="replace")
        token = self._bpe.id_to_token(i)
        if token in self.specials:
            return token
        return self._bpe.decode([i], skip_special_tokens=False)

    # -- files ------------------------------------------------------------------------------

    def to_json(self) -> dict:
        out: dict = {"format": FORMAT, "kind": self.kind, "specials": list(self.specials)}
        if self.kind == "char":
            out["chars"] = list(self.chars)
        if self.kind == "bpe":
            out["bpe"] = self._bpe_json
        out["vocab_size"] = self.vocab_size
        return out

    @classmethod
    def from_json(cls, data: dict) -> Tokenizer:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TokenizerError(f"not a torchloom tokenizer (expected format {FORMAT!r})")
        kind = data.get("kind")
        specials = data.get("specials") or []
        chars = data.get("chars") or []
        if not all(isinstance(s, str) for s in [*specials, *chars]):
            raise TokenizerError("tokenizer specials and characters must be strings")
        if kind == "char" and any(len(c) != 1 for c in chars):
            raise TokenizerError("a character tokenizer's vocabulary holds single characters")
        return cls(kind, specials, chars, data.get("bpe"))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise TokenizerError(f"cannot read the tokenizer {Path(path).name}: {e}") from None
        return cls.from_json(data)


def decode_utf8(data: bytes, name: str) -> str:
    """Text of a file's bytes; a file that is not UTF-8 is refused naming the byte offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TokenizerError(
            f"{name} is not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start} "
            "cannot be decoded (save the file as UTF-8)"
        ) from None


def _bpe_modules():
    try:
        import tokenizers
    except ImportError as e:  # pragma: no cover - depends on the install
        raise TokenizerError(
            "BPE tokenizers need the `tokenizers` package (pip install tokenizers)"
        ) from e
    return tokenizers


def _train_bpe(text: str, vocab_size: int | None, specials: tuple[str, ...]) -> str:
    t = _bpe_modules()
    alphabet = t.pre_tokenizers.ByteLevel.alphabet()
    smallest = len(alphabet) + len(specials) + 1
    if vocab_size is None or not smallest <= vocab_size <= MAX_VOCAB:
        raise TokenizerError(
            f"a byte-level BPE vocabulary holds the {len(alphabet)} byte symbols and the special "
            f"tokens, so vocab_size must be between {smallest} and {MAX_VOCAB} "
            f"(got {vocab_size})"
        )
    if len(text.strip()) < MIN_BPE_CHARS:
        raise TokenizerError(
            f"cannot train a BPE tokenizer on {len(text.strip())} characters of text "
            f"(at least {MIN_BPE_CHARS} needed; use the char or byte tokenizer for tiny text)"
        )
    tok = t.Tokenizer(t.models.BPE())
    tok.pre_tokenizer = t.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = t.decoders.ByteLevel()
    trainer = t.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(specials),
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tok.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
    return tok.to_str()


def _bpe_from_json(bpe_json: str):
    t = _bpe_modules()
    try:
        return t.Tokenizer.from_str(bpe_json)
    except Exception as e:  # tokenizers raises its own exception types
        raise TokenizerError(f"the BPE tokenizer cannot be loaded: {e}") from None
