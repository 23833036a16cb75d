"""The Keras-style summary table: node, type, output shape, params, FLOPs, totals."""

from __future__ import annotations

from .analysis import MODEL_ROLES, Analysis


def summary_rows(analysis: Analysis) -> list[dict]:
    rows = []
    if analysis.top is None:
        return rows
    scope = analysis.top.scope
    for node_id in scope.order:
        r = analysis.top.nodes.get(node_id)
        spec = scope.specs[node_id]
        if spec.role not in (*MODEL_ROLES, "data", "loss"):
            continue
        shape = ", ".join(str(i) for i in r.outputs.values()) if r else "?"
        rows.append(
            {
                "node": node_id,
                "label": scope.nodes[node_id].display,
                "type": spec.type
                if spec.role != "block"
                else f"Block {scope.params[node_id].get('block')}"
                + (
                    f" ×{scope.params[node_id].get('repeat', 1)}"
                    if scope.params[node_id].get("repeat", 1) > 1
                    else ""
                ),
                "output": shape,
                "params": r.num_params if r else 0,
                "trainable": r.trainable_params if r else 0,
                "flops": r.flops if r else 0,
            }
        )
    return rows


def summary_table(analysis: Analysis) -> str:
    rows = summary_rows(analysis)
    headers = ("Node", "Type", "Output shape", "Params", "FLOPs")
    table = [
        (row["label"], row["type"], row["output"], f"{row['params']:,}", _flops(row["flops"]))
        for row in rows
    ]
    widths = [
        max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(headers)
    ]
    right = {3, 4}

    def line(cells) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "─" * (sum(widths) + 2 * (len(widths) - 1))
    out = [line(headers), rule, *(line(r) for r in table), rule]
    totals = analysis.totals()
    frozen = totals["params"] - totals["trainable_params"]
    out.append(
        f"Total params: {totals['params']:,}  (trainable {totals['trainable_params']:,}"
        f", frozen {frozen:,})"
    )
    out.append(f"Forward FLOPs per sample: {_flops(totals['flops'])}")
    return "\n".join(out)


def _flops(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)
