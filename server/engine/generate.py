"""Generation: a sampled continuation of a prompt from a language model, as text pieces.

The model reads one (B, T) int64 tensor of token ids and returns (B, T, V) logits (or a tuple
holding them at `output`); the continuation is drawn by sampling.py (the code code.zip's
sample.py runs too), under torch.no_grad with the model in eval mode, deterministic for a seed.

    for piece in generate(model, tokenizer, "To be", SampleSettings(seed=1), block_size=64):
        print(piece, end="")

A Generation can also be run in slices (`run(seconds)`), its Progress handed to a new
Generation that continues it exactly: the server samples in an analysis process a slice at a
time and streams each slice's pieces while it can still be stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from .data.tokenizer import Tokenizer, TokenizerError
from .sampling import GenerationError, Sampler, SampleSettings, TextStream, sample_ids

__all__ = [
    "Generation",
    "GenerationError",
    "Progress",
    "SampleSettings",
    "generate",
    "prompt_ids",
]


def prompt_ids(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """The prompt's ids; GenerationError for an empty prompt (nothing to continue from: the
    tokenizers have no start token) or characters outside the vocabulary (named by the
    tokenizer)."""
    if not isinstance(prompt, str) or not prompt:
        raise GenerationError("the prompt is empty: give at least one character to continue")
    try:
        ids = tokenizer.encode(prompt)
    except TokenizerError as exc:
        raise GenerationError(f"the prompt cannot be encoded: {exc}") from None
    if not ids:
        raise GenerationError("the prompt encodes to no tokens: give some text to continue")
    return ids


@dataclass
class Progress:
    """How far a generation got: every id so far (prompt first), how many were generated, how
    much text was given out, and the sampler's random state. Plain values only: a tensor here
    would leave the analysis process through torch's shared-memory pickling, whose
    file-descriptor handover broke the pool under the gevent server (a playground generation
    failed after its first slice)."""

    ids: list[int]
    generated: int = 0
    emitted: int = 0
    rng: bytes | None = None  # the generator's get_state(), as bytes
    new_ids: list[int] = field(default_factory=list)


class Generation:
    def __init__(
        self,
        model: nn.Module,
        tokenizer: Tokenizer,
        settings: SampleSettings,
        block_size: int,
        progress: Progress,
        output: int = 0,
    ):
        if block_size < 1:
            raise GenerationError(f"block size must be at least 1 (got {block_size})")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = settings.checked()
        self.block_size = block_size
        self.output = output
        self.progress = progress
        rng = (
            None
            if progress.rng is None
            else torch.frombuffer(bytearray(progress.rng), dtype=torch.uint8)
        )
        self._sampler = Sampler(self.settings, rng)
        self._stream = TextStream(tokenizer, progress.emitted, progress.new_ids)

    @classmethod
    def start(cls, model, tokenizer, prompt: str, settings, block_size: int, output: int = 0):
        progress = Progress(prompt_ids(tokenizer, prompt))
        return cls(model, tokenizer, settings, block_size, progress, output)

    @property
    def done(self) -> bool:
        return self.progress.generated >= self.settings.max_new_tokens

    def _logits(self, context: torch.Tensor) -> torch.Tensor:
        out = self.model(context)
        if isinstance(out, tuple | list):
            out = out[self.output]
        if out.dim() != 3 or out.shape[:2] != context.shape:
            raise GenerationError(
                f"a language model maps (B, T) token ids to (B, T, vocabulary) logits; this one "
                f"gave {tuple(out.shape)} for {tuple(context.shape)}"
            )
        return out[0, -1]

    def run(self, seconds: float | None = None) -> Iterator[str]:
        """Text pieces (never empty) until the end, or until `seconds` have passed; the
        progress then says where to continue."""
        p = self.progress
        deadline = None if seconds is None else time.monotonic() + seconds
        remaining = self.settings.max_new_tokens - p.generated
        for token in sample_ids(self._logits, p.ids, self._sampler, self.block_size, remaining):
            p.generated += 1
            piece = self._stream.push(token)
            self._save()
            if piece:
                yield piece
            if deadline is not None and time.monotonic() >= deadline:
                break
        if self.done:
            piece = self._stream.flush()
            self._save()
            if piece:
                yield piece

    def _save(self) -> None:
        p = self.progress
        p.emitted, p.new_ids = self._stream.emitted, self._stream.ids
        p.rng = self._sampler.state.numpy().tobytes()


def generate(
    model: nn.Module,
    tokenizer: Tokenizer,
    prompt: str,
    settings: SampleSettings,
    block_size: int,
    output: int = 0,
) -> Iterator[str]:
    """The continuation of `prompt`, a piece of text per sampled token (a piece is held back
    while it ends inside a character); GenerationError for a prompt or settings it cannot use."""
    return Generation.start(model, tokenizer, prompt, settings, block_size, output).run()
