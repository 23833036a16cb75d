"""An nn.Module as a torch.fx graph with every node's shape recorded (`import-module`'s first step).

The model is traced symbolically with its optional forward arguments fixed to their defaults,
then run once on a random example input so that ShapeProp can record each node's output shape;
the converter (fx_converter.py) reads those shapes for reshapes, splits and the outputs.
"""

from __future__ import annotations

import inspect
import linecache
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .. import __file__ as _PACKAGE_FILE
from .fx_masks import record
from .graph import ImportFailed
from .module_inputs import ExampleInput, example

_NOT_USER = (str(Path(torch.__file__).parent), str(Path(_PACKAGE_FILE).parent))


class _ShapeAndMasks(ShapeProp):
    """ShapeProp that also keeps the example value of small square tensors (masks)."""

    def run_node(self, n: fx.Node):
        result = super().run_node(n)
        record(n, result)
        return result


class _SourceTracer(fx.Tracer):
    """Records each node's Python source line (node.meta["source"]) for the list of opaque
    nodes: the innermost frame outside torch and torchloom, read off the stack as the node is
    made (fx's own record_stack_traces formats whole tracebacks: seconds for a large model)."""

    def create_proxy(self, *args, **kwargs):
        proxy = super().create_proxy(*args, **kwargs)
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(_NOT_USER):
            frame = frame.f_back
        if frame is not None:
            line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
            proxy.node.meta.setdefault("source", line)
        return proxy


def trace(model: nn.Module, inputs: Sequence[ExampleInput]) -> fx.GraphModule:
    """Symbolic trace (forward's arguments beyond the given inputs fixed to their defaults), then
    one run on random example inputs to record every node's shape."""
    forward = inspect.signature(model.forward).parameters
    params = [p for p in forward.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not params:
        raise ImportFailed(f"{type(model).__name__}.forward takes no input")
    if len(inputs) > len(params):
        raise ImportFailed(
            f"{len(inputs)} inputs given (--input-shape), but {type(model).__name__}.forward "
            f"takes {len(params)} ({', '.join(p.name for p in params)})"
        )
    required = [p for p in params if p.default is inspect.Parameter.empty]
    if len(required) > len(inputs):
        names = ", ".join(p.name for p in required)
        raise ImportFailed(
            f"{type(model).__name__}.forward takes {len(required)} inputs ({names}): give an "
            "--input-shape for each (repeat the flag or separate them with ';')"
        )
    concrete = {p.name: p.default for p in params[len(inputs) :]}
    try:
        tracer = _SourceTracer()
        graph = tracer.trace(model, concrete_args=concrete or None)
        gm = fx.GraphModule(tracer.root, graph, type(model).__name__)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportFailed(
            f"torch.fx cannot trace {type(model).__name__}.forward ({type(exc).__name__}: "
            f"{first[:300]}): data-dependent control flow is not traceable; simplify forward "
            "or import the model's ONNX export (torchloom import-onnx)"
        ) from None
    gm.graph.eliminate_dead_code()  # `out, _ = self.lstm(x)`: the unused parts go
    gm.recompile()
    examples = [example(model, given) for given in inputs]
    try:
        with torch.no_grad():
            gm(*examples)  # a plain run first: its error is the model's own, without fx's noise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ImportFailed(
            f"{type(model).__name__} fails on {_described(inputs)}: {type(exc).__name__}: {first}"
        ) from None
    with torch.no_grad():
        _ShapeAndMasks(gm).propagate(*examples)
    return gm


def _described(inputs: Sequence[ExampleInput]) -> str:
    def one(given: ExampleInput) -> str:
        dtype = "" if given.dtype == "float32" else f" ({given.dtype})"
        return f"an input of shape {list(given.shape)}{dtype}"

    return ", ".join(one(i) for i in inputs)
