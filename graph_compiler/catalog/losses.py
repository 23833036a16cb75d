"""Losses (category "losses"): inputs named as PyTorch names them; the output feeds an optimizer."""

from __future__ import annotations

from torch import nn

from ..loss_layout import check_class_dim, infer_class_dim
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


def _loss(
    cls, doc: str, *params: Param, inputs=PAIR, reduction: Param = REDUCTION, call=None, check=None
) -> None:
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
            call=call or (lambda p, ins, m: f"{m}({', '.join(ins[n][0] for n in names)})"),
            check=check,
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
# inferred from the shapes (graph_compiler/loss_layout.py): the engine and train.py move
# classes-last scores to dim 1 (ClassesLast), the forward expression here says the same
_CLASS_DIM = Param(
    "class_dim",
    "choice",
    description="Where the class scores are: 1 (PyTorch's (B, C, …) against (B, …)) or -1 "
    "(last: (B, T, V) logits against (B, T) token ids) — inferred from the shapes.",
    choices=(1, -1),
    infer=lambda ctx: infer_class_dim(ctx.shape("input"), ctx.shape("target")),
    torch_arg=False,
)


def _class_call(p, ins, m) -> str:
    scores = ins["input"][0]
    if p.get("class_dim") == -1:
        scores = f"{scores}.movedim(-1, 1)"
    return f"{m}({scores}, {ins['target'][0]})"


_loss(
    nn.CrossEntropyLoss,
    "Classification from logits (B, C) and class ids (B,) — includes the softmax. Sequences: "
    "(B, T, V) logits with (B, T) ids (class_dim -1).",
    _CLASS_WEIGHTS,
    Param("ignore_index", "int", -100, "Target id that contributes nothing (e.g. the pad id)."),
    Param(
        "label_smoothing",
        "float",
        0.0,
        "Mix of the target with the uniform distribution.",
        min=0,
        max=1,
    ),
    _CLASS_DIM,
    call=_class_call,
    check=check_class_dim,
)
_loss(
    nn.NLLLoss,
    "Negative log-likelihood of log-probabilities (after LogSoftmax) and class ids.",
    _CLASS_WEIGHTS,
    Param("ignore_index", "int", -100, "Target id that contributes nothing (e.g. the pad id)."),
    _CLASS_DIM,
    call=_class_call,
    check=check_class_dim,
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
