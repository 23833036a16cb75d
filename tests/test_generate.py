"""Generation from a language model (server/engine/generate.py, sampling.py): greedy is the
argmax chain, a seed fixes the sample, top_k=1 is greedy, the context is cropped to the block
size, slices resume exactly, and bad prompts and settings are clear errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from server.engine.data.tokenizer import Tokenizer
from server.engine.generate import (
    Generation,
    GenerationError,
    Progress,
    SampleSettings,
    generate,
    prompt_ids,
)

TEXT = "abcdefgh ijkl\n"


class TinyLM(nn.Module):
    """Embedding → mix of the whole context (so that cropping changes the logits) → head."""

    def __init__(self, vocab: int, width: int = 8):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, width)
        self.head = nn.Linear(width, vocab)
        self.seen: list[int] = []  # the context lengths it was called with

    def forward(self, ids):
        self.seen.append(ids.shape[1])
        h = self.embed(ids).cumsum(dim=1)
        return self.head(torch.tanh(h)) * 3


@pytest.fixture
def tok():
    return Tokenizer.train("char", TEXT)


@pytest.fixture
def lm(tok):
    return TinyLM(tok.vocab_size)


def _text(lm, tok, prompt="abc", block=16, **settings):
    return "".join(generate(lm, tok, prompt, SampleSettings(**settings), block))


def test_greedy_is_the_argmax_chain(lm, tok):
    ids = tok.encode("abc")
    with torch.no_grad():
        for _ in range(12):
            ids.append(int(lm(torch.tensor([ids[-16:]]))[0, -1].argmax()))
    expected = tok.decode(ids[3:])
    assert _text(lm, tok, max_new_tokens=12, temperature=0) == expected


def test_a_seed_fixes_the_sample_and_another_seed_changes_it(lm, tok):
    a = _text(lm, tok, max_new_tokens=40, temperature=1.5, seed=7)
    assert a == _text(lm, tok, max_new_tokens=40, temperature=1.5, seed=7)
    assert len(a) == 40
    assert a != _text(lm, tok, max_new_tokens=40, temperature=1.5, seed=8)


def test_sampling_leaves_the_global_rng_alone(lm, tok):
    torch.manual_seed(3)
    before = torch.rand(1)
    torch.manual_seed(3)
    _text(lm, tok, max_new_tokens=5, temperature=1.0, seed=1)
    assert torch.equal(torch.rand(1), before)


def test_top_k_1_is_greedy(lm, tok):
    greedy = _text(lm, tok, max_new_tokens=20, temperature=0)
    assert _text(lm, tok, max_new_tokens=20, temperature=2.0, top_k=1, seed=5) == greedy


def test_top_k_keeps_only_the_k_most_likely(lm, tok):
    ids = tok.encode("abc")
    with torch.no_grad():
        top2 = set(lm(torch.tensor([ids]))[0, -1].topk(2).indices.tolist())
    for seed in range(20):
        first = _text(lm, tok, max_new_tokens=1, temperature=5.0, top_k=2, seed=seed)
        assert tok.encode(first)[0] in top2


def test_the_context_is_cropped_to_the_block_size(lm, tok):
    lm.seen.clear()
    _text(lm, tok, prompt="abcdef", block=4, max_new_tokens=6, temperature=0)
    assert lm.seen == [4] * 6
    lm.seen.clear()
    _text(lm, tok, prompt="ab", block=4, max_new_tokens=4, temperature=0)
    assert lm.seen == [2, 3, 4, 4]
    # the cropped chain differs from the uncropped one: the crop is real
    assert _text(lm, tok, prompt="abcdef", block=2, max_new_tokens=10, temperature=0) != _text(
        lm, tok, prompt="abcdef", block=64, max_new_tokens=10, temperature=0
    )


def test_slices_resume_exactly_where_they_stopped(lm, tok):
    settings = SampleSettings(max_new_tokens=30, temperature=1.0, seed=11)
    whole = "".join(generate(lm, tok, "ab", settings, 8))
    progress = Progress(prompt_ids(tok, "ab"))
    pieces = []
    while progress.generated < 30:
        g = Generation(lm, tok, settings, 8, progress)
        pieces += list(g.run(seconds=0))  # one token per slice
        progress = g.progress
        # what crosses the analysis process boundary is plain values, never a tensor (torch
        # pickles those through shared memory, which breaks the pool under gevent)
        assert all(isinstance(v, int | bytes | list) for v in dataclasses.astuple(progress)), (
            progress
        )
    assert "".join(pieces) == whole


def test_byte_tokens_inside_a_character_are_held_back():
    tok = Tokenizer.train("byte", "")

    class Fixed(nn.Module):  # always says the bytes of "é" (0xc3 0xa9), then "!"
        def forward(self, ids):
            step = ids.shape[1] - 1
            wanted = [0xC3, 0xA9, ord("!")][step % 3]
            logits = torch.zeros(1, ids.shape[1], tok.vocab_size)
            logits[0, -1, wanted] = 10.0
            return logits

    pieces = list(generate(Fixed(), tok, "x", SampleSettings(max_new_tokens=6, temperature=0), 8))
    assert pieces == ["é", "!", "é", "!"]


def test_prompt_errors_say_what_is_wrong(lm, tok):
    with pytest.raises(GenerationError, match="empty"):
        generate(lm, tok, "", SampleSettings(), 8)
    with pytest.raises(GenerationError, match=r"'Z' at position 2 is not in the vocabulary"):
        generate(lm, tok, "abZ", SampleSettings(), 8)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_new_tokens", 0),
        ("max_new_tokens", 10**6),
        ("temperature", -1.0),
        ("top_k", -2),
        ("seed", -1),
        ("seed", True),
    ],
)
def test_bad_settings_name_the_field(lm, tok, field, value):
    with pytest.raises(GenerationError, match=field):
        generate(lm, tok, "ab", SampleSettings(**{field: value}), 8)


def test_a_model_that_is_not_a_language_model_is_refused(tok):
    class Classifier(nn.Module):
        def forward(self, ids):
            return torch.zeros(ids.shape[0], 3)

    with pytest.raises(GenerationError, match=r"\(B, T, vocabulary\) logits"):
        list(generate(Classifier(), tok, "ab", SampleSettings(max_new_tokens=2), 8))


@pytest.mark.parametrize("kind", ["char", "byte", "bpe"])
def test_streamed_pieces_add_up_to_the_decoded_ids(kind):
    """Any id sequence (half characters and invalid bytes included): the pieces concatenate to
    the decoding of all the ids, though only the ids since the last full character are
    decoded again."""
    from server.engine.sampling import TextStream

    text = "naïve café — 東京 and ünïcödé, repeated: " * 8
    tok = Tokenizer.train(kind, text, vocab_size=300, specials=("<pad>",))
    rng = torch.Generator().manual_seed(0)
    for _ in range(5):
        ids = torch.randint(0, tok.vocab_size, (300,), generator=rng).tolist()
        stream = TextStream(tok)
        pieces = [stream.push(i) for i in ids] + [stream.flush()]
        assert "".join(pieces) == tok.decode(ids)
