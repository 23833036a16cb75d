"""The passes in the order they run, and the entry points that run them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..document import parse_document
from . import blocks, inference, lints, losses, model_size, structure, ties, wiring
from .context import AnalysisContext
from .result import Analysis

Pass = Callable[[AnalysisContext], None]

# Each pass reads what the ones before it left in the context (see context.py) and records its
# problems there; a node that already has an error is not inferred, so the order matters.
PASSES: tuple[Pass, ...] = (
    structure.check_scopes,  # scopes, params, ports, edges, cycles → ctx.blocks, ctx.top
    blocks.check_recursion,  # → ctx.recursive
    wiring.check_roles,  # one Dataset / loss / optimizer ... → ctx.data_node
    wiring.load_data,  # → ctx.data
    wiring.resolve_settings,  # → ctx.settings
    model_size.check_expanded_nodes,  # before inference: → ctx.too_large
    ties.check_tie_targets,  # a Linear's tie_weight names an Embedding beside it
    inference.infer_model,  # → ctx.result, ctx.instances
    ties.check_tie_shapes,
    model_size.check_params_total,
    losses.check_losses,
    lints.check_unused,
    lints.check_trainable,  # last: it stays quiet while any error stands
)


def run_passes(ctx: AnalysisContext, passes: tuple[Pass, ...] = PASSES) -> AnalysisContext:
    for run in passes:
        run(ctx)
    ctx.errors.sort(key=lambda e: e.severity != "error")  # errors before warnings, stable
    return ctx


def analyze(
    document: Any, *, allow_custom_code: bool = False, model_only: bool = False
) -> Analysis:
    """model_only: the model as it stands (an import whose output has no obvious loss), without
    a loss and an optimizer; the Dataset still gives the input."""
    doc, problems = parse_document(document)
    errors = list(problems)
    if doc is None:
        return Analysis(None, errors)
    ctx = AnalysisContext(doc, errors, allow_custom_code, model_only=model_only)
    return run_passes(ctx).analysis()


def validate(
    document: Any, *, allow_custom_code: bool = False, model_only: bool = False
) -> list[dict]:
    """Every problem of a document as dicts {node, field, code, message, severity}."""
    a = analyze(document, allow_custom_code=allow_custom_code, model_only=model_only)
    return [e.to_dict() for e in a.errors]
