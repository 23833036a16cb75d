"""Activations (category "activations"): parameter-free or nearly so, shape-preserving."""

from __future__ import annotations

from torch import nn

from .registry import register
from .spec import NodeSpec, Param


def _activation(cls, doc: str, *params: Param) -> None:
    register(
        NodeSpec(
            type=cls.__name__,
            category="activations",
            doc=doc,
            role="layer",
            torch_class=cls,
            params=params,
            keywords=("activation", "nonlinearity"),
        )
    )


_activation(nn.ReLU, "max(0, x).")
_activation(
    nn.LeakyReLU,
    "x if x > 0 else negative_slope·x.",
    Param("negative_slope", "float", 0.01, "Slope for negative inputs.", min=0),
)
_activation(
    nn.PReLU,
    "LeakyReLU with a learned slope (one, or one per channel).",
    Param("num_parameters", "int", 1, "1, or the number of channels.", min=1),
    Param("init", "float", 0.25, "Initial slope.", min=0),
)
_activation(
    nn.ELU, "x if x > 0 else alpha·(exp(x) − 1).", Param("alpha", "float", 1.0, "Scale.", min=0)
)
_activation(
    nn.GELU,
    "Gaussian error linear unit.",
    Param(
        "approximate", "choice", "none", "Exact or tanh approximation.", choices=("none", "tanh")
    ),
)
_activation(nn.SiLU, "x·sigmoid(x) (swish).")
_activation(nn.Mish, "x·tanh(softplus(x)).")
_activation(nn.Sigmoid, "1 / (1 + exp(−x)).")
_activation(nn.Tanh, "Hyperbolic tangent.")
_activation(
    nn.Softplus,
    "log(1 + exp(beta·x)) / beta.",
    Param("beta", "float", 1.0, "Sharpness.", min=0, exclusive_min=True),
    Param("threshold", "float", 20.0, "Above this, the function is linear.", min=0),
)
_activation(nn.Hardswish, "x·relu6(x + 3) / 6.")
_activation(nn.ReLU6, "min(max(0, x), 6) (MobileNet).")
_activation(
    nn.Hardtanh,
    "x clamped to [min_val, max_val].",
    Param("min_val", "float", -1.0, "Lower bound."),
    Param("max_val", "float", 1.0, "Upper bound."),
)
_activation(
    nn.Softmax,
    "Normalizes to probabilities along dim (do not put it before CrossEntropyLoss).",
    Param("dim", "int", 1, "Dimension that sums to 1.", positional=False),
)
_activation(
    nn.LogSoftmax,
    "log(softmax(x)) along dim; pair with NLLLoss.",
    Param("dim", "int", 1, "Dimension to normalize."),
)
