"""Learned tensors and what feeds them to a batch: Parameter (an nn.Parameter of a given shape
and init, e.g. ViT's class token (1, 1, D) and position embedding (1, T, D)), Expand (a leading
size-1 dim to the batch of another input) and PositionIds (0..T-1, int64, for an Embedding
positional table).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import GraphError
from ..shapes import B, TensorInfo
from .registry import register
from .spec import REQUIRED, NodeSpec, Param, Port

INITS = ("zeros", "normal", "uniform", "trunc_normal")


def _num(v: float) -> str:
    return repr(float(v))


def _parameter_init(params: Mapping[str, Any], target: str) -> list[str]:
    """`self.cls_token = nn.Parameter(torch.zeros(1, 1, 64))`, then its nn.init call."""
    dims = ", ".join(str(d) for d in params["shape"])
    init = params["init"]
    if init == "zeros":
        return [f"{target} = nn.Parameter(torch.zeros({dims}))"]
    lines = [f"{target} = nn.Parameter(torch.empty({dims}))"]
    if init == "uniform":
        lines.append(f"nn.init.uniform_({target}, a={_num(params['a'])}, b={_num(params['b'])})")
    else:
        lines.append(f"nn.init.{init}_({target}, std={_num(params['std'])})")
    return lines


def _parameter_check(params: Mapping[str, Any], inputs) -> list[GraphError]:
    if params["init"] == "uniform" and not params["a"] < params["b"]:
        return [
            GraphError(
                "param_range",
                f"uniform init needs a < b, got a={params['a']:g} and b={params['b']:g}",
                field="b",
            )
        ]
    return []


register(
    NodeSpec(
        type="Parameter",
        category="layers",
        doc="A learned tensor of a given shape: class token (1, 1, D), position embedding "
        "(1, T, D). Held as an nn.Parameter attribute named after the node.",
        role="layer",
        params=(
            Param(
                "shape",
                "ints",
                REQUIRED,
                "The tensor's shape, e.g. [1, 1, 64]; a leading 1 broadcasts over the batch.",
                min=1,
            ),
            Param("init", "choice", "zeros", "Initial values (torch.nn.init).", choices=INITS),
            Param(
                "std",
                "float",
                0.02,
                "Standard deviation (normal, trunc_normal).",
                min=0,
                exclusive_min=True,
                visible_if={"init": ("normal", "trunc_normal")},
            ),
            Param("a", "float", -0.1, "Lower bound (uniform).", visible_if={"init": ("uniform",)}),
            Param("b", "float", 0.1, "Upper bound (uniform).", visible_if={"init": ("uniform",)}),
        ),
        inputs=(),
        call=lambda p, ins, m: m,
        init_code=_parameter_init,
        check=_parameter_check,
        batch_preserving=False,
        keywords=("nn.Parameter", "learned", "class token", "cls", "position embedding", "weight"),
    )
)


def _expand_call(p: Mapping[str, Any], ins: Mapping[str, list[str]], m: str) -> str:
    rest = "".join(", -1" for _ in range(p["dims"] - 1))
    return f"{ins['in'][0]}.expand({ins['like'][0]}.size(0){rest})"


def _expand_check(params: Mapping[str, Any], inputs) -> list[GraphError]:
    info: TensorInfo = inputs["in"][0]
    lead = info.shape[0] if info.shape else None
    if lead is None or lead == B or lead == 1:
        return []
    return [
        GraphError(
            "expand_not_one",
            f"Expand can only repeat a size-1 dim over the batch, but dim 0 of its input {info} "
            f"is {lead} — give the tensor a leading 1, e.g. shape {_with_leading_one(info)}",
            field="in",
        )
    ]


def _with_leading_one(info: TensorInfo) -> str:
    return "[" + ", ".join(str(d) for d in (1, *info.shape)) + "]"


register(
    NodeSpec(
        type="Expand",
        category="merges",
        doc="Repeats a leading size-1 dim to the batch of `like` without copying: the class "
        "token (1, 1, D) → (B, 1, D).",
        role="op",
        params=(
            Param(
                "dims",
                "int",
                min=1,
                infer=lambda ctx: len(ctx.shape("in")) if ctx.shape("in") else None,
                description="Dims of the input (inferred).",
            ),
        ),
        inputs=(
            Port("in", ranks=tuple(range(1, 9)), description="The tensor, dim 0 of size 1."),
            Port("like", description="Any tensor whose dim 0 is the batch."),
        ),
        call=_expand_call,
        check=_expand_check,
        batch_preserving=False,
        keywords=("expand", "broadcast", "repeat", "batch", "class token"),
    )
)


def _positions_call(p: Mapping[str, Any], ins: Mapping[str, list[str]], m: str) -> str:
    x = ins["in"][0]
    expr = f"torch.arange({x}.size({p['dim']}), device={x}.device)"
    return expr + ".unsqueeze(0)" if p["batch_dim"] else expr


register(
    NodeSpec(
        type="PositionIds",
        category="merges",
        doc="Positions 0..T-1 along a dim of its input (torch.arange, int64): the ids of an "
        "Embedding position table. (B, T) → (1, T).",
        role="op",
        params=(
            Param("dim", "int", 1, "The dim whose length T is counted (0 is the batch).", min=1),
            Param(
                "batch_dim",
                "bool",
                True,
                "Lead with a size-1 dim, (1, T), which broadcasts over the batch; off: (T,).",
            ),
        ),
        call=_positions_call,
        batch_preserving=False,
        keywords=("arange", "position", "positional", "range", "ids"),
    )
)
