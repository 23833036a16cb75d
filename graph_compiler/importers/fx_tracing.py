"""An nn.Module as a torch.fx graph with every node's shape recorded (`import-module`'s first step).

The model is traced symbolically with its optional forward arguments fixed to their defaults,
then run once on a random example input so that ShapeProp can record each node's output shape;
the converter (fx_converter.py) reads those shapes for reshapes, splits and the outputs.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .fx_masks import record
from .graph import ImportFailed


class _ShapeAndMasks(ShapeProp):
    """ShapeProp that also keeps the example value of small square tensors (masks)."""

    def run_node(self, n: fx.Node):
        result = super().run_node(n)
        record(n, result)
        return result


def trace(model: nn.Module, input_shape: Sequence[int]) -> fx.GraphModule:
    """Symbolic trace (optional forward arguments fixed to their defaults), then one run on a
    random input of `input_shape` to record every node's shape."""
    forward = inspect.signature(model.forward).parameters
    params = [p for p in forward.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not params:
        raise ImportFailed(f"{type(model).__name__}.forward takes no input")
    required = [p for p in params if p.default is inspect.Parameter.empty]
    if len(required) > 1:
        names = ", ".join(p.name for p in required)
        raise ImportFailed(
            f"{type(model).__name__}.forward takes {len(required)} inputs ({names}); a torchloom "
            "graph has one input, x"
        )
    concrete = {p.name: p.default for p in params[1:]}
    try:
        gm = fx.symbolic_trace(model, concrete_args=concrete or None)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportFailed(
            f"torch.fx cannot trace {type(model).__name__}.forward ({type(exc).__name__}: "
            f"{first[:300]}): data-dependent control flow is not traceable; simplify forward "
            "or import the model's ONNX export (torchloom import-onnx)"
        ) from None
    gm.graph.eliminate_dead_code()  # `out, _ = self.lstm(x)`: the unused parts go
    gm.recompile()
    example = torch.randn(*input_shape)
    try:
        with torch.no_grad():
            gm(example)  # a plain run first: its error is the model's own, without fx's noise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ImportFailed(
            f"{type(model).__name__} fails on an input of shape {list(input_shape)}: "
            f"{type(exc).__name__}: {first}"
        ) from None
    with torch.no_grad():
        _ShapeAndMasks(gm).propagate(example)
    return gm
