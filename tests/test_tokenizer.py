"""The text tokenizers: round trips, special tokens, files, and the errors a user can cause."""

from __future__ import annotations

import json

import pytest

from server.engine.data.tokenizer import Tokenizer, TokenizerError, decode_utf8

TEXT = "the cat sat on the mat. the dog sat on the log. " * 8 + "naïve café — ok\n"


@pytest.mark.parametrize("kind", ["char", "byte", "bpe"])
def test_round_trip_and_file(kind, tmp_path):
    tok = Tokenizer.train(kind, TEXT, vocab_size=300, specials=("<pad>",))
    ids = tok.encode("the dog sat — naïve")
    assert tok.decode(ids) == "the dog sat — naïve"
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.pad_id == 0 and 0 not in ids
    tok.save(tmp_path / "tokenizer.json")
    again = Tokenizer.load(tmp_path / "tokenizer.json")
    assert again.encode("the dog sat — naïve") == ids
    assert again.vocab_size == tok.vocab_size


def test_char_vocabulary_is_the_training_text_characters():
    tok = Tokenizer.train("char", "abca", specials=("<pad>",))
    assert tok.vocab_size == 4
    assert tok.encode("cab") == [3, 1, 2]
    assert [tok.token_text(i) for i in range(4)] == ["<pad>", "a", "b", "c"]


def test_bpe_merges_frequent_pairs():
    tok = Tokenizer.train("bpe", TEXT, vocab_size=300)
    assert len(tok.encode("the cat sat on the mat.")) < len("the cat sat on the mat.")


def test_decode_drops_specials():
    tok = Tokenizer.train("byte", "", specials=("<pad>", "<unk>"))
    assert tok.decode([0, *tok.encode("hi"), 1]) == "hi"


def test_unknown_character_is_named():
    tok = Tokenizer.train("char", "abc")
    with pytest.raises(TokenizerError, match=r"'z' at position 1"):
        tok.encode("az")
    assert Tokenizer.train("char", "abc", specials=("<unk>",)).encode("az") == [1, 0]


def test_ids_outside_the_vocabulary_are_refused():
    tok = Tokenizer.train("char", "abc")
    with pytest.raises(TokenizerError, match=r"token id 7 at position 1 .*0\.\.2"):
        tok.decode([0, 7])


@pytest.mark.parametrize(
    ("kind", "text", "vocab", "message"),
    [
        ("char", "", None, "empty text"),
        ("bpe", "tiny", 300, "at least 16"),
        ("bpe", TEXT, 100, "vocab_size must be between 257"),
        ("bpe", TEXT, None, "got None"),
        ("words", TEXT, None, "unknown tokenizer"),
    ],
)
def test_untrainable_tokenizers_say_why(kind, text, vocab, message):
    with pytest.raises(TokenizerError, match=message):
        Tokenizer.train(kind, text, vocab_size=vocab)


def test_not_utf8_names_the_byte_offset():
    with pytest.raises(TokenizerError, match=r"notes\.txt .*0xff at offset 4"):
        decode_utf8(b"abcd\xff rest", "notes.txt")
    assert decode_utf8("café".encode(), "x.txt") == "café"


def test_a_file_that_is_not_a_tokenizer_is_refused(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"kind": "char"}))
    with pytest.raises(TokenizerError, match="not a torchloom tokenizer"):
        Tokenizer.load(path)
    path.write_text("{")
    with pytest.raises(TokenizerError, match=r"cannot read the tokenizer tokenizer\.json"):
        Tokenizer.load(path)
    bad = Tokenizer.train("char", "ab").to_json() | {"chars": ["ab"]}
    with pytest.raises(TokenizerError, match="single characters"):
        Tokenizer.from_json(bad)
