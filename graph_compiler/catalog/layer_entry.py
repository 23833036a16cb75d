"""How a layer entry is declared: sizes inferred from the input (like Lazy modules), required
sizes, the bias flag, the input layouts by rank, and `layer()`, which registers an nn.Module
class as a node of category "layers". The layer families (dense.py, conv.py, ...) use these.
"""

from __future__ import annotations

from .registry import register
from .spec import REQUIRED, InferContext, NodeSpec, Param, Port


def inferred(name: str, dim: int, what: str, port: str = "in") -> Param:
    """A size read off the input shape (like a Lazy module), never typed by the user."""

    def infer(ctx: InferContext) -> int | None:
        shape = ctx.shape(port)
        return shape[dim] if shape is not None and len(shape) > abs(dim) - (dim < 0) else None

    return Param(
        name, "int", min=1, infer=infer, positional=True, description=f"{what} (inferred)."
    )


def size(name: str, description: str, default=REQUIRED, positional: bool = True) -> Param:
    """A size the user sets (>= 1)."""
    return Param(name, "int", default, description, min=1, positional=positional)


BIAS = Param("bias", "bool", True, "Learn an additive bias.")


LAYOUTS = {2: "(B, features)", 3: "(B, C, L)", 4: "(B, C, H, W)", 5: "(B, C, D, H, W)"}


def layout(ranks) -> str:
    return " or ".join(f"{r}-D {LAYOUTS[r]}" for r in ranks) if ranks else ""


def layer(type_: str, cls, doc: str, params, *, ranks=None, hint="", **kw) -> None:
    """Registers `cls` as a layer node; one input port "in" of the given ranks unless `inputs`."""
    inputs = kw.pop("inputs", None) or (Port("in", ranks=ranks, layout=layout(ranks)),)
    register(
        NodeSpec(
            type=type_,
            category="layers",
            doc=doc,
            role="layer",
            torch_class=cls,
            params=tuple(params),
            inputs=inputs,
            rank_hint=hint,
            **kw,
        )
    )


FLATTEN_HINT = "add a Flatten before it"


def last_dim(ctx: InferContext) -> int | None:
    """The input's last dimension: the width LayerNorm and the Transformer layers infer."""
    shape = ctx.shape()
    return shape[-1] if shape else None
