"""Sampling a continuation from a language model, one token at a time.

Self-contained (torch and the standard library only) because it is copied verbatim into a run's
code.zip, where sample.py uses it: the engine (`torchloom generate`, the playground) and the
exported sample.py draw the same tokens for the same seed because they run this same code.

    stream = TextStream(tokenizer, prompt_ids)
    for token_id in sample_ids(logits_of, prompt_ids, settings, block_size):
        piece = stream.push(token_id)   # text to show now ("" while a character is incomplete)
    stream.flush()                      # what is left at the end

`logits_of` maps a (1, T) int64 tensor of ids to the (V,) logits of the next token. The sampler
keeps its random state in a torch.Generator seeded from `settings.seed`; the state can be saved
(`Sampler.state`) and a new Sampler resumed from it, drawing exactly what the first would have:
the server generates in short slices in another process and resumes between them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

MAX_NEW_TOKENS = 10_000


class GenerationError(ValueError):
    """Settings or a prompt that cannot be sampled from; the message says which and why."""


@dataclass(frozen=True)
class SampleSettings:
    max_new_tokens: int = 200
    temperature: float = 1.0  # 0: greedy (the most likely token every time)
    top_k: int | None = None  # None or 0: the whole vocabulary
    seed: int = 0

    def checked(self) -> SampleSettings:
        """The settings, or GenerationError naming the field that is out of range."""
        n, t, k, seed = self.max_new_tokens, self.temperature, self.top_k, self.seed
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_NEW_TOKENS:
            raise GenerationError(f"max_new_tokens must be an integer from 1 to {MAX_NEW_TOKENS}")
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= 100:
            raise GenerationError("temperature must be a number from 0 (greedy) to 100")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
            raise GenerationError("top_k must be a whole number (0 or empty: no limit)")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise GenerationError("seed must be an integer from 0 to 2^63 - 1")
        return self


class Sampler:
    """Draws next-token ids from logits: greedy at temperature 0, else softmax(logits / t) over
    the top_k most likely tokens, with its own generator (never the global RNG)."""

    def __init__(self, settings: SampleSettings, state: torch.Tensor | None = None):
        self.settings = settings.checked()
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(settings.seed)
        if state is not None:
            self.generator.set_state(state)

    @property
    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def draw(self, logits: torch.Tensor) -> int:
        logits = logits.detach().float().cpu()
        s = self.settings
        if s.temperature == 0:
            return int(torch.argmax(logits))
        logits = logits / s.temperature
        if s.top_k:
            k = min(s.top_k, logits.numel())
            kth = torch.topk(logits, k).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generator))


def sample_ids(
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    ids: list[int],
    sampler: Sampler,
    block_size: int,
    count: int,
) -> Iterator[int]:
    """`count` new ids after `ids` (extended in place), each from the last `block_size` ids: the
    model saw sequences of that length in training and its position table holds no more."""
    if not ids:
        raise GenerationError("the prompt is empty: give at least one token to continue from")
    for _ in range(count):
        context = torch.tensor([ids[-block_size:]], dtype=torch.int64)
        with torch.no_grad():
            token = sampler.draw(logits_of(context))
        ids.append(token)
        yield token


class TextStream:
    """Turns generated ids into text pieces whose concatenation is the decoded continuation. A
    byte-level token can end inside a multi-byte character: its text is held back until the
    character is complete (or the stream ends).

    Only the ids since the last complete character are decoded again: decoding is
    concatenative at character boundaries (char, byte and byte-level BPE tokenizers), so a long
    generation costs linear, not quadratic, time."""

    def __init__(self, tokenizer, emitted: int = 0, ids: list[int] | None = None):
        self.tokenizer = tokenizer
        self.ids: list[int] = list(ids or [])  # since the last complete character
        self.emitted = emitted  # characters of their text already given out

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):  # maybe half a character: wait for the rest
            return ""
        piece = self._take(text)
        self.ids, self.emitted = [], 0  # a character boundary: start afresh
        return piece

    def flush(self) -> str:
        return self._take(self.tokenizer.decode(self.ids))

    def _take(self, text: str) -> str:
        piece = text[self.emitted :]
        self.emitted = max(self.emitted, len(text))
        return piece
