"""Loss checks once shapes are known: class counts against the dataset's labels, and regression
losses whose input and target shapes torch would broadcast silently."""

from __future__ import annotations

from .context import AnalysisContext


def check_losses(ctx: AnalysisContext) -> None:
    """Pass (after inference): each loss against its inputs' shapes and the dataset."""
    top, result, data = ctx.top, ctx.result, ctx.data
    for node_id, spec in top.specs.items():
        r = result.nodes.get(node_id)
        if spec.role != "loss" or r is None or "input" not in r.inputs:
            continue
        pred = r.inputs["input"][0]
        target_edges = top.incoming[node_id].get("target", [])
        target = r.inputs.get("target", [None])[0]
        from_labels = (
            data is not None
            and target_edges
            and top.specs[target_edges[0].source].role == "data"
            and target_edges[0].source_port == "y"
        )
        if spec.type in ("CrossEntropyLoss", "NLLLoss") and from_labels and data.num_classes:
            # class_dim: 1, or -1 for (B, T, V) scores (graph_compiler/loss_layout.py)
            classes = pred.shape[r.params.get("class_dim", 1)] if pred.rank >= 2 else None
            if isinstance(classes, int) and classes < data.num_classes:
                ctx.error(
                    "class_count",
                    f"{r.label}: the model gives {classes} class scores "
                    f"{pred} but the dataset has {data.num_classes} classes — set the "
                    f"last layer's size to {data.num_classes}",
                    node_id,
                    "input",
                )
            elif isinstance(classes, int) and classes > data.num_classes:
                ctx.error(
                    "class_count",
                    f"{r.label}: the model gives {classes} class scores "
                    f"but the dataset has only {data.num_classes} classes",
                    node_id,
                    "input",
                    severity="warning",
                )
        if (
            spec.type
            in (
                "MSELoss",
                "L1Loss",
                "SmoothL1Loss",
                "HuberLoss",
                "BCELoss",
                "BCEWithLogitsLoss",
            )
            and target is not None
            and pred.shape != target.shape
        ):
            ctx.error(
                "shape_mismatch",
                f"{r.label}: {spec.type} compares input {pred} with "
                f"target {target}; they must have the same shape (torch would "
                "broadcast them silently and train the wrong thing)",
                node_id,
                "target",
            )
