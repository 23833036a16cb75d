"""`markov_text`: a synthetic corpus with a known entropy rate, for language models.

A seeded order-2 Markov chain over a small alphabet: every context (the last two characters)
allows only a few next characters (2 to 4), with random probabilities. Sparse transitions make
"every generated trigram has non-zero source probability" a meaningful check of a sampler, and
the chain's exact entropy gives a language model's validation loss a floor to be measured
against.

Each sample is an independent window of T + 1 characters whose first two are drawn from the
chain's stationary distribution, so every window is a stretch of the stationary process: x is
the first T ids, y the next T. A model predicting position t sees t + 1 characters; from the
second position on it knows the whole context and can do no better than the entropy rate h;
at the first it knows one character only, so its floor there is H(X1 | X0) >= h.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import torch

from .loaded import Loaded
from .tokenizer import Tokenizer

# sorted, so that the char tokenizer's ids (its characters in this order) are the chain's
ALPHABET = " ,.abcdefghiklmnoprstu"
ORDER = 2
MIN_NEXT, MAX_NEXT = 2, 4  # next characters allowed per context
_POWER_STEPS = 20_000
_POWER_TOL = 1e-14


@dataclass(frozen=True)
class MarkovText:
    """The chain: `probs[a, b, c]` = P(next = c | previous two = a, b); `stationary[a, b]` =
    the stationary probability of the pair (a, b)."""

    probs: np.ndarray  # (S, S, S) float64, rows sum to 1, at most MAX_NEXT non-zeros per row
    stationary: np.ndarray  # (S, S) float64, sums to 1

    @property
    def size(self) -> int:
        return len(ALPHABET)

    def entropy_rate(self) -> float:
        """h = H(X_t | X_{t-2}, X_{t-1}) of the stationary chain, in nats per character."""
        return float((self.stationary * _row_entropy(self.probs)).sum())

    def first_entropy(self) -> float:
        """H(X1 | X0) under the stationary pair distribution: the floor at a window's first
        position, where the model has seen one character."""
        first = self.stationary.sum(axis=1, keepdims=True)
        cond = np.divide(
            self.stationary, first, out=np.zeros_like(self.stationary), where=first > 0
        )
        return float((first[:, 0] * _row_entropy(cond)).sum())

    def window_floor(self, block_size: int) -> float:
        """The least possible mean cross-entropy per position (nats) over a window of
        `block_size` next-token predictions: the first has one character of context, the
        others the full order-2 context."""
        t = int(block_size)
        return (self.first_entropy() + (t - 1) * self.entropy_rate()) / t

    def unigram_entropy(self) -> float:
        """H(X): what a model that ignores the context can reach at best."""
        p = self.stationary.sum(axis=0)
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    def sample(self, rng: np.random.Generator, n: int, length: int) -> np.ndarray:
        """(n, length) int64 ids: n independent stretches of the stationary chain."""
        s = self.size
        out = np.empty((n, length), dtype=np.int64)
        start = rng.choice(s * s, size=n, p=self.stationary.ravel())
        out[:, 0], out[:, 1] = start // s, start % s
        cdf = np.cumsum(self.probs, axis=2)
        for t in range(ORDER, length):
            rows = cdf[out[:, t - 2], out[:, t - 1]]  # (n, S)
            u = rng.random(n)[:, None] * rows[:, -1:]
            out[:, t] = np.minimum((rows <= u).sum(axis=1), s - 1)
        return out

    def log_prob(self, ids: np.ndarray) -> np.ndarray:
        """(n, length - 1) log P(ids[:, t + 1] | what comes before, within the window), the
        first from the stationary pair, the rest from the chain; -inf where the source never
        produces that character."""
        first = self.stationary.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            head = np.log(self.stationary[ids[:, 0], ids[:, 1]] / first[ids[:, 0]])
            rest = np.log(self.probs[ids[:, :-2], ids[:, 1:-1], ids[:, 2:]])
        return np.concatenate([head[:, None], rest], axis=1)

    def tokenizer(self) -> Tokenizer:
        return Tokenizer("char", (), tuple(ALPHABET))


def _row_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each distribution along the last axis."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=-1)


@cache
def chain(seed: int) -> MarkovText:
    """The chain for a data seed (cached: the stationary distribution takes a moment)."""
    rng = np.random.default_rng([seed, 0x6D61726B])  # own stream: not the window sampler's
    s = len(ALPHABET)
    probs = np.zeros((s, s, s))
    for a in range(s):
        for b in range(s):
            k = int(rng.integers(MIN_NEXT, MAX_NEXT + 1))
            allowed = rng.choice(s, size=k, replace=False)
            probs[a, b, allowed] = rng.dirichlet(np.ones(k))
    return MarkovText(probs, _stationary(probs))


def _stationary(probs: np.ndarray) -> np.ndarray:
    """A stationary distribution over pairs: power iteration of the lazy chain (P + I) / 2
    from the uniform distribution. The lazy chain has the same stationary distributions and is
    aperiodic, so this converges even where the sparse chain is periodic; where it has several
    closed classes the limit is a mixture of them, which is still stationary — and the entropy
    formulas above hold for any stationary start."""
    s = probs.shape[0]
    # pair (a, b) -> pair (b, c) with probability probs[a, b, c]
    step = np.zeros((s * s, s * s))
    pairs = np.arange(s * s)
    a, b = pairs // s, pairs % s
    for c in range(s):
        step[pairs, b * s + c] = probs[a, b, c]
    lazy = (step + np.eye(s * s)) / 2
    pi = np.full(s * s, 1.0 / (s * s))
    for _ in range(_POWER_STEPS):
        nxt = pi @ lazy
        if np.abs(nxt - pi).sum() < _POWER_TOL:
            pi = nxt
            break
        pi = nxt
    return (pi / pi.sum()).reshape(s, s)


def load(p: Mapping[str, Any], description: str) -> Loaded:
    n, block, seed = int(p["samples"]), int(p["seq_len"]), int(p["data_seed"])
    source = chain(seed)
    ids = source.sample(np.random.default_rng(seed), n, block + 1)
    floor = source.window_floor(block)
    described = (
        f"{description}; entropy rate {source.entropy_rate():.4f} nats/char, loss floor "
        f"{floor:.4f} for windows of {block}"
    )
    return Loaded(
        x=torch.from_numpy(np.ascontiguousarray(ids[:, :-1])),
        y=torch.from_numpy(np.ascontiguousarray(ids[:, 1:])),
        task="language_model",
        num_classes=source.size,
        class_names=None,
        feature_names=None,
        description=described,
        tokenizer=source.tokenizer(),
        vocab_size=source.size,
    )
