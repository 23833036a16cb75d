"""The training wiring at the top level: one Dataset, a loss reaching one optimizer, schedulers
and their chains, the Training node; the data's shapes and the resolved settings."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ..catalog import CATALOG, InferContext, NodeSpec
from ..datasets import FILE, DataInfo, describe
from ..training import split_counts, steps_per_epoch
from .context import AnalysisContext
from .parameters import resolved_plain, with_defaults
from .result import NodeResult, Scope


def check_roles(ctx: AnalysisContext) -> None:
    """Pass: sets ctx.data_node."""
    ctx.data_node = _check_roles(ctx, ctx.top)


def _check_roles(ctx: AnalysisContext, top: Scope) -> str | None:
    by_role: dict[str, list[str]] = defaultdict(list)
    for node_id, spec in top.specs.items():
        by_role[spec.role].append(node_id)
    data = by_role.get("data", [])
    if not data:
        ctx.error("no_data", "the graph has no Dataset node: add one to provide x and y")
    for extra in data[1:]:
        ctx.error(
            "multiple_data",
            f"{top.nodes[extra].display}: only one Dataset node is supported per graph",
            extra,
        )
    if not by_role.get("loss") and not ctx.model_only:
        ctx.error(
            "no_loss",
            "the graph has no loss: connect the model's output and the "
            "target to a loss such as CrossEntropyLoss or MSELoss",
        )
    optimizers = by_role.get("optimizer", [])
    if not optimizers and not ctx.model_only:
        ctx.error(
            "no_optimizer",
            "the graph has no optimizer: add one (e.g. Adam) and connect a loss to it",
        )
    for extra in optimizers[1:]:
        ctx.error(
            "multiple_optimizers",
            f"{top.nodes[extra].display}: only one optimizer per graph is supported",
            extra,
        )
    for opt in optimizers:
        if not top.incoming[opt].get("loss"):
            ctx.error(
                "optimizer_unreachable",
                f"{top.nodes[opt].display}: no loss reaches "
                "this optimizer — connect a loss's output to its loss input",
                opt,
                "loss",
            )
    fed = {e.source for e in top.edges if top.specs[e.target].role == "optimizer"}
    for loss in by_role.get("loss", []):
        if loss not in fed:
            ctx.error(
                "loss_unused",
                f"{top.nodes[loss].display}: this loss feeds no optimizer, so it trains nothing",
                loss,
                "loss",
                severity="warning",
            )
    final = [s for s in by_role.get("scheduler", []) if not any(e.source == s for e in top.edges)]
    for extra in final[1:]:
        ctx.error(
            "multiple_schedulers",
            f"{top.nodes[extra].display}: only one LR scheduler "
            "can drive the optimizer; chain several with SequentialLR",
            extra,
        )
    for node_id in by_role.get("scheduler", []):
        if top.specs[node_id].type == "SequentialLR":
            opts = {
                scheduler_optimizer(top, e.source)
                for edges in top.incoming[node_id].values()
                for e in edges
            }
            if len(opts - {None}) > 1:
                ctx.error(
                    "scheduler_optimizer_mismatch",
                    f"{top.nodes[node_id].display}: "
                    "the chained schedulers drive different optimizers",
                    node_id,
                )
    settings = by_role.get("settings", [])
    if not settings:
        ctx.error(
            "no_training_settings",
            "the graph has no Training node; defaults are used "
            "(10 epochs, batch 64, 20 % validation)",
            severity="warning",
        )
    for extra in settings[1:]:
        ctx.error(
            "multiple_training",
            f"{top.nodes[extra].display}: only one Training node per graph",
            extra,
        )
    return data[0] if data else None


def scheduler_optimizer(top: Scope, sched: str) -> str | None:
    edges = top.incoming.get(sched, {}).get("optimizer")
    if edges:
        return edges[0].source
    for port_edges in top.incoming.get(sched, {}).values():
        for e in port_edges:
            found = scheduler_optimizer(top, e.source)
            if found:
                return found
    return None


def load_data(ctx: AnalysisContext) -> None:
    """Pass: the Dataset's shapes (ctx.data), unless its node has errors."""
    top, data_node = ctx.top, ctx.data_node
    if data_node is None or ctx.has_node_errors(top, data_node):
        return
    params = resolved_plain(top, data_node)
    if params["source"] == FILE and not params["x_shape"]:
        where = params["path"] or params["dataset_id"] or "no file chosen"
        ctx.error(
            "data_not_loaded",
            f"{top.nodes[data_node].display}: the data file's "
            f"shapes are not known yet ({where}): upload the file, or let "
            "`torchloom train` read it",
            data_node,
            "x_shape",
        )
    else:
        ctx.data = describe(params)


def resolve_settings(ctx: AnalysisContext) -> None:
    """Pass: the Training node's settings with defaults, and the split and steps the data gives."""
    ctx.settings = _resolve_settings(ctx.top, ctx.data)


def _resolve_settings(top: Scope, data: DataInfo | None) -> dict[str, Any]:
    node = next((n for n, s in top.specs.items() if s.role == "settings"), None)
    spec = CATALOG["Training"]
    settings = with_defaults(spec, top.params[node] if node else {})
    if data is not None and data.samples:
        n_train, n_val = split_counts(data.samples, settings["val_split"])
        settings["train_samples"], settings["val_samples"] = n_train, n_val
        settings["steps_per_epoch"] = steps_per_epoch(
            n_train, settings["batch_size"], settings["grad_accumulation"]
        )
    return settings


def resolve_training_node(
    ctx: AnalysisContext, scope: Scope, node_id: str, spec: NodeSpec, user: dict
) -> NodeResult | None:
    params = with_defaults(spec, user)
    inferred = {}
    interval, offset = params.get("interval"), 0
    if spec.role == "scheduler":
        interval, offset = schedule_position(ctx, scope, node_id, params)
    known = InferContext({}, {**ctx.settings, "interval": interval, "offset": offset})
    for p in spec.params:
        if p.infer is not None and p.name not in user:
            value = p.infer(known)
            params[p.name] = value  # None: known only at run time (e.g. uploaded data size)
            if value is not None:
                inferred[p.name] = value
    return NodeResult(scope.nodes[node_id], spec, params, inferred)


def schedule_position(
    ctx: AnalysisContext, scope: Scope, node_id: str, params: dict
) -> tuple[str, int]:
    """(interval, offset) of a scheduler: a stage of a SequentialLR steps at the chain's
    interval, and the `then` stage starts after the chain's milestone."""
    for e in scope.edges:
        if e.source != node_id or scope.specs[e.target].type != "SequentialLR":
            continue
        parent = with_defaults(scope.specs[e.target], scope.params[e.target])
        interval, offset = schedule_position(ctx, scope, e.target, parent)
        if "interval" in scope.params[node_id] and params["interval"] != interval:
            ctx.error(
                "scheduler_interval_mismatch",
                f"{scope.nodes[node_id].display}: "
                f"steps every {params['interval']} but its chain "
                f"{scope.nodes[e.target].display} steps every {interval}; set the "
                "interval on the SequentialLR",
                node_id,
                "interval",
                scope.block,
            )
        if e.target_port == "then":
            offset += parent["milestone"]
        return interval, offset
    return params["interval"], 0
