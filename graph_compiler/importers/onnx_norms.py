"""torch's decomposed nn.RMSNorm, found as one region and imported as one RMSNorm node.

The exporter writes `x * (1 / sqrt(mean(x ** 2, -1) + eps))`, then `* weight` when the norm
is affine: Pow(x, 2) → ReduceMean over the last dim (kept) → Add(eps) → Sqrt → Reciprocal →
Mul(x, ·) [→ Mul(·, weight (D,))]. Every step must be the only reader of the one before and no
intermediate a graph output; the constants (2, the axis, eps, the weight) are read, not guessed.
"""

from __future__ import annotations

import numpy as np

from .onnx_attention import EncoderMatch

AUTO_EPS = float(np.finfo(np.float32).eps)  # what nn.RMSNorm(eps=None) uses for float32


def find_rms_norms(nodes: list, consts: dict, shapes: dict, outputs: set[str]) -> list:
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(i)

    def only(value: str, op: str) -> int | None:
        users = consumers.get(value, [])
        if len(users) != 1 or value in outputs or nodes[users[0]].op_type != op:
            return None
        return users[0]

    found = []
    for i, node in enumerate(nodes):
        if node.op_type != "Pow" or not _scalar(consts, node.input[1], 2.0):
            continue
        match = _match(nodes, consts, shapes, only, i)
        if match is not None:
            found.append(match)
    return found


def _match(nodes, consts, shapes, only, start: int) -> EncoderMatch | None:
    x = nodes[start].input[0]
    rank = len(shapes.get(x) or ())
    mean = only(nodes[start].output[0], "ReduceMean")
    if rank < 2 or mean is None or not _last_dim_kept(nodes[mean], consts, rank):
        return None
    add = only(nodes[mean].output[0], "Add")
    if add is None:
        return None
    eps_name = next((n for n in nodes[add].input if n != nodes[mean].output[0]), "")
    eps = consts.get(eps_name)
    if eps is None or eps.size != 1 or not float(eps.reshape(-1)[0]) > 0:
        return None
    sqrt = only(nodes[add].output[0], "Sqrt")
    recip = None if sqrt is None else only(nodes[sqrt].output[0], "Reciprocal")
    scale = None if recip is None else only(nodes[recip].output[0], "Mul")
    if scale is None or x not in nodes[scale].input:
        return None
    region = {start, mean, add, sqrt, recip, scale}
    output, weights = nodes[scale].output[0], {}
    affine = only(output, "Mul")
    if affine is not None:
        other = next((n for n in nodes[affine].input if n != output), "")
        weight = consts.get(other)
        size = (shapes.get(x) or ())[-1]
        if weight is not None and weight.shape == (size,):
            region.add(affine)
            output, weights = nodes[affine].output[0], {"weight": weight}
    value = float(np.float32(eps.reshape(-1)[0]))
    params: dict = (
        {} if np.isclose(value, AUTO_EPS, rtol=1e-6, atol=0) else {"eps": short_float(value)}
    )
    if not weights:
        params["elementwise_affine"] = False
    return EncoderMatch(start, region, x, output, params, weights, type_="RMSNorm")


def _scalar(consts: dict, name: str, wanted: float) -> bool:
    value = consts.get(name)
    return value is not None and value.size == 1 and float(value.reshape(-1)[0]) == wanted


def _last_dim_kept(node, consts: dict, rank: int) -> bool:
    attrs = {a.name: a for a in node.attribute}
    if "keepdims" in attrs and attrs["keepdims"].i == 0:
        return False
    if "axes" in attrs:
        axes = list(attrs["axes"].ints)
    else:
        found = consts.get(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        axes = None if found is None else [int(a) for a in found.reshape(-1)]
    return axes is not None and [a % rank for a in axes] == [rank - 1]


def short_float(value: float) -> float:
    """A float32 constant as the decimal it was written as (1e-3, not 0.0010000000474974513)."""
    return float(str(np.float32(value)))
