"""torchloom's graph compiler: graph document → validated, shape-inferred, generated PyTorch.

Pure Python + torch (no Flask): the server, the engine and the CLI all build on this API.
"""

from __future__ import annotations

from .analysis import Analysis, analyze, validate
from .build import CompiledGraph, build_module, compile_graph, load_source
from .catalog import CATALOG, catalog_json
from .codegen import generate, model_interface
from .document import FORMAT, GraphDocument, json_schema, parse_document
from .errors import GraphCompileError, GraphError
from .plan import TrainingPlan, build_plan

__all__ = [
    "CATALOG",
    "FORMAT",
    "Analysis",
    "CompiledGraph",
    "GraphCompileError",
    "GraphDocument",
    "GraphError",
    "TrainingPlan",
    "analyze",
    "build_module",
    "build_plan",
    "catalog_json",
    "compile_graph",
    "generate",
    "json_schema",
    "load_source",
    "model_interface",
    "parse_document",
    "validate",
    "warmup",
]


def warmup() -> None:
    """Pay torch's one-time costs (its meta kernels import torch._dynamo, ~1 s) up front, e.g.
    when a server starts, so the first validation a user waits for is fast."""
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "digits_cnn.json"
    if example.exists():
        analyze(example.read_bytes())
    else:  # installed without the examples: any small graph with a conv and a norm will do
        import torch

        with torch.device("meta"):
            torch.nn.BatchNorm2d(2).eval()(torch.nn.Conv2d(1, 2, 3)(torch.empty(1, 1, 4, 4)))
