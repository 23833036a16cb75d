"""Warnings and last checks over the inferred model: nodes no loss reaches, nothing trainable."""

from __future__ import annotations

from collections import defaultdict

from .context import AnalysisContext
from .result import MODEL_ROLES


def check_unused(ctx: AnalysisContext) -> None:
    """Pass: model nodes from which no path leads to a loss, optimizer or scheduler."""
    top = ctx.top
    preds: dict[str, list[str]] = defaultdict(list)
    for e in top.edges:
        preds[e.target].append(e.source)
    useful: set[str] = set()
    stack = [n for n, s in top.specs.items() if s.role in ("loss", "optimizer", "scheduler")]
    while stack:
        n = stack.pop()
        if n in useful:
            continue
        useful.add(n)
        stack.extend(preds[n])
    for node_id, spec in top.specs.items():
        if spec.role in MODEL_ROLES and node_id not in useful:
            ctx.error(
                "unused_node",
                f"{top.nodes[node_id].display}: its output reaches no "
                "loss, so it is not part of the trained model",
                node_id,
                severity="warning",
            )


def check_trainable(ctx: AnalysisContext) -> None:
    """Pass (last, after inference): an optimizer with no trainable parameter to move."""
    top, result = ctx.top, ctx.result
    if ctx.has_errors():
        return  # totals are incomplete while other problems stand
    optimizer = next((n for n, s in top.specs.items() if s.role == "optimizer"), None)
    trainable = sum(r.trainable_params for r in result.nodes.values() if r.spec.role in MODEL_ROLES)
    if optimizer is not None and trainable == 0:
        ctx.error(
            "nothing_to_train",
            f"{top.nodes[optimizer].display}: the model has no "
            "trainable parameters (every layer is frozen or has no weights)",
            optimizer,
            "loss",
        )
