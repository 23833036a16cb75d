"""Activations (category "activations"): parameter-free or nearly so, shape-preserving."""

from __future__ import annotations

from torch import nn

from .registry import register
from .spec import InferContext, NodeSpec, Param


def _activation(cls, doc: str, *params: Param, **kw) -> None:
    register(
        NodeSpec(
            type=cls.__name__,
            category="activations",
            doc=doc,
            role="layer",
            torch_class=cls,
            params=params,
            keywords=("activation", "nonlinearity", *kw.pop("keywords", ())),
            **kw,
        )
    )


def _glu_halves(params, ctx: InferContext) -> tuple[str, str] | None:
    """GLU splits `dim` into two halves: the dim must exist and have an even size."""
    shape, dim = ctx.shape(), params["dim"]
    if shape is None:
        return None
    if not -len(shape) <= dim < len(shape):
        return "dim", f"cannot split dim {dim} of a {len(shape)}-D input"
    if shape[dim] % 2:
        return "dim", (
            f"splits dim {dim} into two halves, but the input's size there is {shape[dim]} (odd)"
        )
    return None


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
_activation(nn.Hardsigmoid, "relu6(x + 3) / 6: a piecewise-linear sigmoid (MobileNetV3).")
_activation(
    nn.Hardtanh,
    "x clamped to [min_val, max_val].",
    Param("min_val", "float", -1.0, "Lower bound."),
    Param("max_val", "float", 1.0, "Upper bound."),
)
_activation(
    nn.GLU,
    "Gated linear unit: a · sigmoid(b), a and b the two halves of dim (the size halves).",
    Param("dim", "int", -1, "Dimension split in two halves (its size must be even)."),
    input_check=_glu_halves,
    keywords=("gate", "gated"),
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
