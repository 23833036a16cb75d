"""Merges and tensor ops (category "merges"): inline torch expressions in forward, no module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .registry import register
from .spec import REQUIRED, NodeSpec, Param, Port

SINGLE = (Port("in"),)


def _op(type_: str, doc: str, call, params=(), inputs=SINGLE, **kw) -> None:
    register(
        NodeSpec(
            type=type_,
            category="merges",
            doc=doc,
            role="op",
            params=tuple(params),
            inputs=inputs,
            call=call,
            **kw,
        )
    )


def _x(ins: Mapping[str, list[str]]) -> str:
    return ins["in"][0]


def _dims(value: Any) -> str:
    dims = tuple(value) if isinstance(value, list | tuple) else (value,)
    return str(dims[0]) if len(dims) == 1 else "(" + ", ".join(str(d) for d in dims) + ")"


MULTI = (Port("in", multi=True, min_edges=2, description="Two or more tensors (in edge order)."),)

_op(
    "Add",
    "Element-wise sum of its inputs (broadcasting); the residual connection.",
    lambda p, ins, m: " + ".join(ins["in"]),
    inputs=MULTI,
    keywords=("residual", "skip", "sum", "merge"),
)
_op(
    "Multiply",
    "Element-wise product of its inputs (broadcasting); gating.",
    lambda p, ins, m: " * ".join(ins["in"]),
    inputs=MULTI,
    keywords=("product", "gate", "merge"),
)
_op(
    "Concat",
    "Concatenates its inputs along dim, in edge order.",
    lambda p, ins, m: f"torch.cat([{', '.join(ins['in'])}], dim={p['dim']})",
    params=[Param("dim", "int", 1, "Dimension to join along (0 is the batch).")],
    inputs=MULTI,
    keywords=("cat", "merge", "join"),
)
_op(
    "MatMul",
    "Matrix product a @ b (batched).",
    lambda p, ins, m: f"{ins['a'][0]} @ {ins['b'][0]}",
    inputs=(Port("a"), Port("b")),
    batch_preserving=False,
    keywords=("matmul", "bmm", "dot"),
)
_op(
    "Mean",
    "Mean over the given dims.",
    lambda p, ins, m: (
        f"{_x(ins)}.mean(dim={_dims(p['dim'])}" + (", keepdim=True)" if p["keepdim"] else ")")
    ),
    params=[
        Param("dim", "ints", (1,), "Dims to reduce (0 is the batch)."),
        Param("keepdim", "bool", False, "Keep reduced dims with size 1."),
    ],
    batch_preserving=False,
    keywords=("average", "reduce", "pool"),
)
_op(
    "Sum",
    "Sum over the given dims.",
    lambda p, ins, m: (
        f"{_x(ins)}.sum(dim={_dims(p['dim'])}" + (", keepdim=True)" if p["keepdim"] else ")")
    ),
    params=[
        Param("dim", "ints", (1,), "Dims to reduce (0 is the batch)."),
        Param("keepdim", "bool", False, "Keep reduced dims with size 1."),
    ],
    batch_preserving=False,
    keywords=("reduce",),
)


def _scale(p: Mapping[str, Any], ins, m) -> str:
    """x * scale + shift, leaving out the identity halves (x * 4, x + 1, -x)."""
    x, scale, shift = _x(ins), p["scale"], p["shift"]
    term = x if scale == 1 else f"-{x}" if scale == -1 else f"{x} * {scale!r}"
    if shift == 0:
        return term if term != x else f"{x}.clone()"  # a no-op still gives a new tensor
    return f"{term} + {shift!r}" if shift > 0 else f"{term} - {-shift!r}"


_op(
    "Scale",
    "x · scale + shift with constant numbers: x * 4, x + 1, x / 2, 1 - x, -x.",
    _scale,
    params=[
        Param("scale", "float", 1.0, "Multiplies the input."),
        Param("shift", "float", 0.0, "Added after scaling."),
    ],
    keywords=("scalar", "constant", "affine", "multiply", "divide", "offset", "negate"),
)


def _chunk_ports(p: Mapping[str, Any]) -> tuple[Port, ...]:
    return tuple(Port(f"out{i}") for i in range(int(p.get("chunks") or 2)))


def _split_ports(p: Mapping[str, Any]) -> tuple[Port, ...]:
    sizes = p.get("split_sizes") or (1, 1)
    return tuple(Port(f"out{i}") for i in range(len(sizes)))


_op(
    "Chunk",
    "Splits into `chunks` equal parts along dim (outputs out0, out1, ...).",
    lambda p, ins, m: f"torch.chunk({_x(ins)}, {p['chunks']}, dim={p['dim']})",
    params=[
        Param("chunks", "int", 2, "Number of parts.", min=2, max=64),
        Param("dim", "int", 1, "Dimension to split (0 is the batch)."),
    ],
    outputs=_chunk_ports,
    batch_preserving=False,
)
_op(
    "Split",
    "Splits into parts of the given sizes along dim (outputs out0, out1, ...).",
    lambda p, ins, m: f"torch.split({_x(ins)}, {list(p['split_sizes'])}, dim={p['dim']})",
    params=[
        Param("split_sizes", "ints", REQUIRED, "Size of each part.", min=1),
        Param("dim", "int", 1, "Dimension to split (0 is the batch)."),
    ],
    outputs=_split_ports,
    batch_preserving=False,
)


def _slice(p, ins, m) -> str:
    start = "" if p["start"] is None else str(p["start"])
    end = "" if p["end"] is None else str(p["end"])
    step = "" if p["step"] == 1 else f":{p['step']}"
    part = f"{start}:{end}{step}"
    dim = p["dim"]
    index = (
        ", ".join([":"] * dim + [part])
        if dim >= 0
        else ", ".join(["...", part] + [":"] * (-dim - 1))
    )
    return f"{_x(ins)}[{index}]"


_op(
    "Slice",
    "Keeps start:end:step along dim.",
    _slice,
    params=[
        Param("dim", "int", 1, "Dimension to slice (0 is the batch)."),
        Param("start", "int", None, "First index kept (default: 0).", nullable=True),
        Param("end", "int", None, "One past the last index (default: the end).", nullable=True),
        Param("step", "int", 1, "Stride.", min=1),
    ],
    batch_preserving=False,
    keywords=("index", "narrow"),
)
_op(
    "Select",
    "Picks one index along dim, removing that dim.",
    lambda p, ins, m: f"{_x(ins)}.select({p['dim']}, {p['index']})",
    params=[
        Param("dim", "int", 1, "Dimension to index (0 is the batch)."),
        Param("index", "int", 0, "Index (negative counts from the end)."),
    ],
    batch_preserving=False,
    keywords=("index",),
)
_op(
    "Squeeze",
    "Removes a size-1 dim.",
    lambda p, ins, m: f"{_x(ins)}.squeeze({p['dim']})",
    params=[Param("dim", "int", -1, "Dimension to remove (must have size 1).")],
    batch_preserving=False,
)
_op(
    "Unsqueeze",
    "Inserts a size-1 dim.",
    lambda p, ins, m: f"{_x(ins)}.unsqueeze({p['dim']})",
    params=[Param("dim", "int", 1, "Where to insert the new dim.")],
    batch_preserving=False,
)
_op(
    "Transpose",
    "Swaps two dims.",
    lambda p, ins, m: f"{_x(ins)}.transpose({p['dim0']}, {p['dim1']})",
    params=[
        Param("dim0", "int", 1, "First dim (0 is the batch)."),
        Param("dim1", "int", 2, "Second dim."),
    ],
    batch_preserving=False,
)
_op(
    "Permute",
    "Reorders all dims (batch included): e.g. [0, 2, 1] swaps the last two of a 3-D input.",
    lambda p, ins, m: f"{_x(ins)}.permute({', '.join(str(d) for d in p['dims'])})",
    params=[Param("dims", "ints", REQUIRED, "New order of all dims, batch first.", min=-8)],
    batch_preserving=False,
)
_op(
    "Reshape",
    "Reshapes each sample (batch kept): shape [64, 7, 7] turns (B, 3136) into (B, 64, 7, 7).",
    lambda p, ins, m: (
        f"{_x(ins)}.reshape({_x(ins)}.size(0), {', '.join(str(d) for d in p['shape'])})"
    ),
    params=[Param("shape", "ints", REQUIRED, "Per-sample shape; one entry may be -1.", min=-1)],
    batch_preserving=False,
    keywords=("view",),
)
