"""Where the class scores lie for CrossEntropyLoss and NLLLoss: PyTorch wants them in dim 1
((B, C) or (B, C, d1, ...) against (B,) or (B, d1, ...) targets), but a sequence model's Linear
head gives them last: (B, T, V) logits against (B, T) next-token ids.

The loss node's `class_dim` param is inferred from the shapes: 1 where the input is already in
PyTorch's layout, -1 where the target is the input without its last dim. A loss with the classes
last is trained as `ClassesLast(loss)`, which moves them to dim 1 — the same class in the
engine and in the exported train.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from .errors import GraphError
from .shapes import TensorInfo

CLASS_LOSSES = ("CrossEntropyLoss", "NLLLoss")


class ClassesLast(nn.Module):
    """A classification loss for scores whose classes are in the LAST dim, e.g. (B, T, V)
    logits against (B, T) targets: one row of scores per position, or (reduction "none")
    the classes moved to dim 1, where PyTorch's losses expect them."""

    def __init__(self, loss: nn.Module):
        super().__init__()
        self.loss = loss

    def forward(self, input, target):
        if self.loss.reduction == "none":  # one loss per position: the target's shape
            return self.loss(input.movedim(-1, 1), target)
        # (N·T, C) rows against (N·T,) ids: the same mean (weighted, ignore_index) or sum as
        # over (N, C, T), without the moved scores' strided kernels (on the CPU, one thread,
        # forward + backward of (64, 256, 65) logits: 18 ms instead of 37 ms)
        return self.loss(input.reshape(-1, input.shape[-1]), target.reshape(-1))


def _fits(input_shape: Sequence, target_shape: Sequence, class_dim: int) -> bool:
    """Whether class-id targets of `target_shape` go with scores of `input_shape` whose classes
    are in `class_dim`."""
    if len(input_shape) < 2 or len(target_shape) != len(input_shape) - 1:
        return False
    rest = list(input_shape)
    del rest[class_dim]
    return list(target_shape) == rest


def infer_class_dim(input_shape: Sequence | None, target_shape: Sequence | None) -> int | None:
    """1 or -1 from the (concrete) shapes; None where both layouts fit different dims (e.g.
    (B, 16, 16) against (B, 16)) and the user must say which. Shapes that fit neither (or
    probability targets, shaped as the input) get 1: PyTorch's own layout, which the check
    below then judges."""
    if input_shape is None or target_shape is None or len(input_shape) < 3:
        return 1
    first, last = _fits(input_shape, target_shape, 1), _fits(input_shape, target_shape, -1)
    if first and last:
        return None
    return -1 if last else 1


def check_class_dim(params: Mapping[str, Any], inputs: Mapping[str, list]) -> list[GraphError]:
    """Class-id targets must be the input without its class dim; the message shows both
    layouts so that a wrong head size or a missing dim is easy to see."""
    pred: TensorInfo | None = (inputs.get("input") or [None])[0]
    target: TensorInfo | None = (inputs.get("target") or [None])[0]
    if pred is None or target is None or target.is_float or pred.rank < 2:
        return []
    class_dim = params.get("class_dim", 1)
    if _fits(pred.shape, target.shape, class_dim):
        return []
    where = "in dim 1" if class_dim == 1 else "last"
    wanted = [d for i, d in enumerate(pred.shape) if i != class_dim % pred.rank]
    return [
        GraphError(
            "shape_mismatch",
            f"the targets {target} do not fit the scores {pred} with the classes {where} "
            f"(expected targets {TensorInfo(tuple(wanted), target.dtype)}); class ids go with "
            "scores (B, C) → (B,), (B, C, d…) → (B, d…) (class_dim 1), or (B, T, C) → (B, T) "
            "(class_dim -1)",
            field="target",
        )
    ]
