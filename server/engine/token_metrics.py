"""Per-epoch metrics of a language model's loss term: token accuracy and perplexity, over every
target token but those equal to the loss's ignore_index (the pad id). Accumulated on the device,
like TermMetrics, so that validation never waits for the host.

Copied verbatim into the exported train.py (inspect.getsource), which reports the same figures:
it uses only math and torch, and reads its settings from the loss module itself."""

from __future__ import annotations

import math

import torch


class TokenMetrics:
    """accuracy: the fraction of tokens whose highest score is the target; perplexity: exp of
    the mean cross-entropy per token (nats), without label smoothing or class weights — the
    model's own figure, comparable across runs."""

    def __init__(
        self, device: torch.device, class_dim: int, ignore_index: int, log_probs: bool = False
    ):
        self.device = device
        self.class_dim = class_dim  # where the scores' classes are: 1 or -1 ((B, T, V))
        self.ignore_index = ignore_index
        self.log_probs = log_probs  # NLLLoss: the scores are log-probabilities already
        self.reset()

    @classmethod
    def for_loss(cls, loss: torch.nn.Module, device: torch.device) -> TokenMetrics:
        """For a CrossEntropyLoss / NLLLoss module, or one wrapped in ClassesLast (its scores
        have their classes in the last dim)."""
        classes_last = type(loss).__name__ == "ClassesLast"
        inner = loss.loss if classes_last else loss
        log_probs = type(inner).__name__ == "NLLLoss"
        return cls(device, -1 if classes_last else 1, int(inner.ignore_index), log_probs)

    def reset(self) -> None:
        self.n, self.correct, self.nll = (
            torch.zeros((), dtype=torch.float64, device=self.device) for _ in range(3)
        )

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if target.is_floating_point() or pred.dim() != target.dim() + 1:
            return
        scores = pred.float().movedim(self.class_dim, -1).reshape(-1, pred.shape[self.class_dim])
        ids = target.reshape(-1)
        keep = ids != self.ignore_index
        if self.log_probs:
            nll = torch.nn.functional.nll_loss(
                scores, ids, ignore_index=self.ignore_index, reduction="sum"
            )
        else:
            nll = torch.nn.functional.cross_entropy(
                scores, ids, ignore_index=self.ignore_index, reduction="sum"
            )
        self.nll += nll.double()
        self.n += keep.sum()
        self.correct += ((scores.argmax(dim=1) == ids) & keep).sum()

    def compute(self) -> dict[str, float]:
        n = float(self.n)
        if n == 0:
            return {}
        mean = float(self.nll) / n
        return {
            "accuracy": float(self.correct) / n,
            "perplexity": math.exp(mean) if mean < 700 else math.inf,
        }
