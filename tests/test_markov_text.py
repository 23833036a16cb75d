"""The markov_text source: a seeded order-2 Markov chain whose exact entropy gives a language
model's loss a floor, and the tokenizer a run keeps beside its weights."""

import math

import numpy as np
import pytest
import torch

from graph_compiler.datasets import MARKOV_TEXT_VOCAB, describe
from server.engine.data import load_data
from server.engine.data.markov_text import ALPHABET, MAX_NEXT, chain
from server.engine.data.tokenizer import Tokenizer
from server.engine.run_folder import TOKENIZER_FILE, write_static_files

PARAMS = {"source": "markov_text", "samples": 200, "seq_len": 24, "data_seed": 3}


def test_describe_matches_what_is_loaded():
    info = describe(PARAMS)
    loaded = load_data(PARAMS)
    assert MARKOV_TEXT_VOCAB == len(ALPHABET) == loaded.vocab_size == info.vocab_size
    assert (info.x_shape, info.y_shape, info.x_dtype, info.y_dtype) == (
        (24,),
        (24,),
        "int64",
        "int64",
    )
    assert info.task == loaded.task == "language_model"
    assert loaded.x.shape == loaded.y.shape == (200, 24)
    assert loaded.x.dtype == loaded.y.dtype == torch.int64
    assert int(loaded.x.min()) >= 0 and int(loaded.x.max()) < loaded.vocab_size
    # y is x shifted by one: the next character at every position
    assert torch.equal(loaded.x[:, 1:], loaded.y[:, :-1])
    assert "entropy rate" in loaded.description and "loss floor" in loaded.description


def test_seeded_and_deterministic():
    a, b = load_data(PARAMS), load_data(PARAMS)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    other = load_data({**PARAMS, "data_seed": 4})
    assert not torch.equal(a.x, other.x)
    assert not np.array_equal(chain(3).probs, chain(4).probs)


def test_transitions_are_sparse_and_windows_follow_them():
    source = chain(3)
    allowed = (source.probs > 0).sum(axis=2)
    assert allowed.max() <= MAX_NEXT and allowed.min() >= 2
    assert np.allclose(source.probs.sum(axis=2), 1.0)
    loaded = load_data(PARAMS)
    ids = torch.cat([loaded.x, loaded.y[:, -1:]], dim=1).numpy()
    assert np.isfinite(source.log_prob(ids)).all()  # every trigram is possible
    # a trigram the source never makes is scored impossible
    a, b = 0, 0
    c = int(np.flatnonzero(source.probs[a, b] == 0)[0])
    impossible = np.array([[a, b, c]])
    assert np.isneginf(source.log_prob(impossible)[0, 1])


def test_stationary_distribution_is_stationary():
    source = chain(3)
    pi = source.stationary
    assert pi.sum() == pytest.approx(1.0) and (pi >= 0).all()
    # one step of the chain: P(b, c) = sum_a pi(a, b) P(c | a, b)
    after = np.einsum("ab,abc->bc", pi, source.probs)
    assert np.abs(after - pi).max() < 1e-10


def test_floor_matches_a_monte_carlo_estimate():
    """The exact floor against the mean negative log-likelihood of the true chain on fresh
    windows (the best any model can do)."""
    source = chain(3)
    block = 24
    floor = source.window_floor(block)
    ids = source.sample(np.random.default_rng(123), 20_000, block + 1)
    nll = -source.log_prob(ids)
    assert nll.mean() == pytest.approx(floor, abs=0.02)
    # positions after the first reach the entropy rate; the first its own, higher floor
    assert nll[:, 1:].mean() == pytest.approx(source.entropy_rate(), abs=0.02)
    assert nll[:, 0].mean() == pytest.approx(source.first_entropy(), abs=0.05)
    assert source.entropy_rate() < floor < source.unigram_entropy() < math.log(len(ALPHABET))


def test_tokenizer_decodes_the_ids():
    loaded = load_data(PARAMS)
    tok = loaded.tokenizer
    assert tok.vocab_size == loaded.vocab_size
    text = tok.decode(loaded.x[0].tolist())
    assert len(text) == 24 and set(text) <= set(ALPHABET)
    assert tok.encode(text) == loaded.x[0].tolist()


def test_run_folder_keeps_the_tokenizer(tmp_path):
    class _NoNorm:
        def state_dict(self):
            return {}

    common = dict(
        source="# model\n",
        document={"nodes": []},
        normalizer=_NoNorm(),
        target_scaler=None,
        class_names=None,
        task="language_model",
        device=torch.device("cpu"),
    )
    write_static_files(tmp_path / "with", tokenizer=load_data(PARAMS).tokenizer, **common)
    saved = Tokenizer.load(tmp_path / "with" / TOKENIZER_FILE)
    assert saved.decode(saved.encode("abc .")) == "abc ."
    assert saved.vocab_size == len(ALPHABET)
    write_static_files(tmp_path / "without", **common)
    assert not (tmp_path / "without" / TOKENIZER_FILE).exists()
