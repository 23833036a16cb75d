"""The state_dict of a graph's model (keys, shapes, dtypes), built on the meta device.

The weights upload and a warm start compare a file with this. Building the model is the one
costly step (about 0.2 ms and 5.5 KB per module, up to the validation limits in
graph_compiler/limits.py), and with custom code allowed it executes user code: it runs as a task
of the analysis processes (server/analysis_pool.py), under their time limit. What comes back is
plain data; the web process turns it into meta tensors, which allocate nothing.
"""

from __future__ import annotations

from typing import Any

import torch

from graph_compiler import GraphCompileError, analyze, compile_graph
from graph_compiler.weights import node_owners


def model_state_task(document: Any, allow_custom_code: bool) -> dict:
    """{"errors": [...]} for a graph that cannot be built, else {"state": {key: (shape, dtype)},
    "owners": {submodule: node id}}."""
    analysis = analyze(document, allow_custom_code=allow_custom_code)
    if not analysis.ok:
        return {"errors": [e.to_dict() for e in analysis.error_list]}
    try:
        compiled = compile_graph(analysis, allow_custom_code=allow_custom_code)
        model = compiled.instantiate(device="meta")
        state = {
            key: (tuple(value.shape), str(value.dtype).removeprefix("torch."))
            for key, value in model.state_dict().items()
        }
    except GraphCompileError as exc:
        return {"errors": [e.to_dict() for e in exc.errors]}
    except Exception as exc:  # custom code ran during the analysis and can break anything
        if not allow_custom_code:
            raise
        text = f"{type(exc).__name__}: {exc}"[:500]
        return {"errors": [{"node": None, "field": None, "code": "build_failed",
                            "message": f"the model cannot be built (custom code?): {text}",
                            "severity": "error"}]}  # fmt: skip
    return {"state": state, "owners": node_owners(compiled.attributes)}


def meta_state(shapes: dict[str, tuple[tuple[int, ...], str]]) -> dict[str, torch.Tensor]:
    """The state_dict again, as meta tensors (what graph_compiler.weights.check compares)."""
    return {
        key: torch.empty(shape, dtype=getattr(torch, dtype), device="meta")
        for key, (shape, dtype) in shapes.items()
    }
