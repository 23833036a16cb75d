"""Losses (category "losses"): inputs named as PyTorch names them; the output feeds an optimizer."""

from __future__ import annotations

from torch import nn

from .registry import register
from .spec import NodeSpec, Param, Port

LOSS_WEIGHT = Param(
    "loss_weight",
    "float",
    1.0,
    "Weight of this loss in the total when several losses feed one optimizer (multi-task).",
    min=0,
    torch_arg=False,
)
REDUCTION = Param(
    "reduction", "choice", "mean", "How per-sample losses are combined.", choices=("mean", "sum")
)
PAIR = (Port("input", description="Model output."), Port("target", description="Ground truth."))
OUT = (Port("loss", kind="loss"),)


def _loss(cls, doc: str, *params: Param, inputs=PAIR, reduction: Param = REDUCTION) -> None:
    names = [p.name for p in inputs]
    register(
        NodeSpec(
            type=cls.__name__,
            category="losses",
            doc=doc,
            role="loss",
            torch_class=cls,
            params=(*params, reduction, LOSS_WEIGHT),
            inputs=inputs,
            outputs=OUT,
            call=lambda p, ins, m: f"{m}({', '.join(ins[n][0] for n in names)})",
            keywords=("loss", "objective", "criterion"),
        )
    )


_CLASS_WEIGHTS = Param(
    "weight",
    "floats",
    None,
    "Per-class weights (length = classes).",
    min=0,
    nullable=True,
    as_tensor=True,
)
_loss(
    nn.CrossEntropyLoss,
    "Classification from logits (B, C) and class ids (B,) — includes the softmax.",
    _CLASS_WEIGHTS,
    Param("ignore_index", "int", -100, "Target id that contributes nothing."),
    Param(
        "label_smoothing",
        "float",
        0.0,
        "Mix of the target with the uniform distribution.",
        min=0,
        max=1,
    ),
)
_loss(
    nn.NLLLoss,
    "Negative log-likelihood of log-probabilities (after LogSoftmax) and class ids.",
    _CLASS_WEIGHTS,
    Param("ignore_index", "int", -100, "Target id that contributes nothing."),
)
_loss(nn.MSELoss, "Mean squared error (regression, reconstruction).")
_loss(nn.L1Loss, "Mean absolute error.")
_loss(
    nn.SmoothL1Loss,
    "L1 loss that is quadratic below beta.",
    Param("beta", "float", 1.0, "Switch point between quadratic and linear.", min=0),
)
_loss(
    nn.HuberLoss,
    "Huber loss: quadratic below delta, linear above.",
    Param("delta", "float", 1.0, "Switch point.", min=0, exclusive_min=True),
)
_loss(nn.BCELoss, "Binary cross-entropy of probabilities (after Sigmoid) and 0/1 targets.")
_loss(
    nn.BCEWithLogitsLoss,
    "Binary cross-entropy from logits (includes the sigmoid; numerically safer than BCELoss).",
    Param(
        "pos_weight",
        "floats",
        None,
        "Weight of positive examples, per output.",
        min=0,
        nullable=True,
        as_tensor=True,
    ),
)
_loss(
    nn.KLDivLoss,
    "Kullback-Leibler divergence; input are log-probabilities.",
    Param("log_target", "bool", False, "Target given as log-probabilities."),
    reduction=Param(
        "reduction",
        "choice",
        "batchmean",
        "How per-sample losses are combined (batchmean is the true KL divergence).",
        choices=("batchmean", "mean", "sum"),
    ),
)
_loss(
    nn.CosineEmbeddingLoss,
    "Similarity loss for pairs (input1, input2) with target 1 (similar) or −1 (dissimilar).",
    Param("margin", "float", 0.0, "Margin for dissimilar pairs.", min=-1, max=1),
    inputs=(Port("input1"), Port("input2"), Port("target")),
)
