"""Validation and shape inference of a whole graph document.

`analyze(document)` never raises. It returns every problem at once (structured, keyed by node and
field) together with what could be inferred: each edge's shape and dtype, each node's resolved
params (inferred sizes filled in), parameter counts and FLOPs. Code generation and the training
plan are built from this one result.

Analysis is a sequence of passes (pipeline.PASSES), each a function over the shared
`AnalysisContext` (context.py) that records structured errors with `ctx.error(...)`:

    structure.py   scopes: node ids and types, ports, edges, missing inputs, order, cycles
    parameters.py  each node's parameters against the catalog (called by structure, per node)
    blocks.py      Block nodes' ports, blocks that contain themselves
    wiring.py      Dataset, losses → optimizer, schedulers, Training node; data and settings
    model_size.py  size after expanding blocks × repeats (limits.py), nodes before, params after
    inference.py   shape inference in topological order, block instances
    tensor_nodes.py  one tensor node: ranks, dtypes, inferred params, custom code, meta shapes
    failures.py    a failed node's error in the user's terms
    losses.py      class counts and target shapes of losses
    lints.py       unused nodes, nothing to train
    result.py      what callers receive: Analysis, Scope, ScopeResult, NodeResult

Adding a check: write one function in the pass it belongs to, e.g. in lints.py

    def check_lonely_optimizer(ctx: AnalysisContext) -> None:
        for node_id, spec in ctx.top.specs.items():
            if spec.role == "optimizer" and ...:
                ctx.error(CODE, f"{ctx.top.nodes[node_id].display}: ...", node_id)

(CODE: a new snake_case string literal; the table test reads every code passed to ctx.error in the
package and fails until the code has its row)

add it to PASSES where what it reads is known (or call it from its pass's function), and add its
row to the validation table in tests/test_validation.py (a document and the code it must give).
A pass can be run on its own context: see tests/test_analysis_passes.py.
"""

from .context import AnalysisContext
from .pipeline import PASSES, analyze, run_passes, validate
from .result import MODEL_ROLES, TOP_ONLY_ROLES, Analysis, NodeResult, Scope, ScopeResult

__all__ = [
    "MODEL_ROLES",
    "PASSES",
    "TOP_ONLY_ROLES",
    "Analysis",
    "AnalysisContext",
    "NodeResult",
    "Scope",
    "ScopeResult",
    "analyze",
    "run_passes",
    "validate",
]
