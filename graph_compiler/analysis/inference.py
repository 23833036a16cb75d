"""Shape inference over a scope in topological order, block instances included (each distinct
input shape of a block is inferred once)."""

from __future__ import annotations

from collections.abc import Mapping

from ..catalog import NodeSpec
from ..datasets import DataInfo
from ..document import Node
from ..errors import BlockStep, GraphError
from ..shapes import B, TensorInfo
from .block_failures import instance_failure
from .context import AnalysisContext
from .parameters import with_defaults
from .result import NodeResult, Scope, ScopeResult
from .tensor_nodes import infer_tensor_node
from .wiring import resolve_training_node


def infer_model(ctx: AnalysisContext) -> None:
    """Pass: the top level, from the Dataset's shapes."""
    ctx.result = infer_scope(ctx, ctx.top, None, ctx.data)


def infer_scope(
    ctx: AnalysisContext,
    scope: Scope,
    block_inputs: Mapping[str, TensorInfo] | None,
    data: DataInfo | None,
) -> ScopeResult:
    result = ScopeResult(scope, {})
    for node_id in scope.order:
        spec = scope.specs[node_id]
        node = scope.nodes[node_id]
        if ctx.has_node_errors(scope, node_id):
            continue
        user = scope.params[node_id]
        inputs: dict[str, list[TensorInfo]] = {}
        complete = True
        for port in scope.in_ports[node_id]:
            infos = []
            for e in scope.incoming[node_id].get(port.name, []):
                src = result.nodes.get(e.source)
                info = src.outputs.get(e.source_port) if src else None
                if info is None and port.kind == "tensor":
                    complete = False
                elif info is not None:
                    infos.append(info)
            if infos:
                inputs[port.name] = infos
        if not complete:
            continue  # an upstream node failed; its error is already reported
        if spec.role == "data":
            if data is None:
                continue
            params = with_defaults(spec, user)
            r = NodeResult(node, spec, params)
            r.outputs = {
                "x": TensorInfo((B, *data.x_shape), data.x_dtype),
                "y": TensorInfo((B, *data.y_shape), data.y_dtype),
            }
            result.nodes[node_id] = r
        elif spec.role == "block_io":
            r = NodeResult(node, spec, {}, inputs=inputs)
            if spec.type == "Input":
                if block_inputs is None or node_id not in block_inputs:
                    continue
                r.outputs = {"out": block_inputs[node_id]}
            elif "in" in inputs:
                result.outputs[node_id] = inputs["in"][0]
            result.nodes[node_id] = r
        elif spec.role == "block":
            r = infer_block(ctx, scope, node, spec, user, inputs, data)
            if r is not None:
                result.nodes[node_id] = r
        elif spec.role in ("optimizer", "scheduler", "settings"):
            r = resolve_training_node(ctx, scope, node_id, spec, user)
            if r is not None:
                result.nodes[node_id] = r
        else:
            r = infer_tensor_node(ctx, scope, node, spec, user, inputs)
            if r is not None:
                result.nodes[node_id] = r
    return result


def infer_block(
    ctx: AnalysisContext,
    scope: Scope,
    node: Node,
    spec: NodeSpec,
    user: dict,
    inputs: dict[str, list[TensorInfo]],
    data,
) -> NodeResult | None:
    params = with_defaults(spec, user)
    name = params["block"]
    inner = ctx.blocks.get(name)
    if inner is None or ctx.too_large:  # too large: graph_too_large is reported already
        return None
    if name in ctx.recursive or any(e.block == name and e.severity == "error" for e in ctx.errors):
        ctx.error(
            "block_invalid",
            f"{node.display}: block {name} has errors (see its definition)",
            node.id,
            "block",
            scope.block,
        )
        return None
    r = NodeResult(node, spec, params, inputs=inputs)
    current = {port: infos[0] for port, infos in inputs.items()}
    for repetition in range(1, params["repeat"] + 1):
        instance = infer_instance(ctx, name, inner, current, data)
        if isinstance(instance, GraphError):
            step = BlockStep(node.id, name, repetition, params["repeat"], node.display)
            ctx.errors.append(instance_failure(ctx, inner, step, instance, scope.block))
            ctx.failed[(scope.block, node.id)] += 1
            return None
        r.instances.append(instance)
        r.num_params += sum(n.num_params for n in instance.nodes.values())
        r.trainable_params += sum(n.trainable_params for n in instance.nodes.values())
        r.flops += sum(n.flops for n in instance.nodes.values())
        outs = instance.outputs
        if len(outs) == 1 and len(current) == 1:
            current = {next(iter(current)): next(iter(outs.values()))}
    if not node.trainable:
        r.trainable_params = 0
    r.outputs = dict(r.instances[-1].outputs)
    return r


def infer_instance(
    ctx: AnalysisContext, name: str, inner: Scope, inputs: dict[str, TensorInfo], data
) -> ScopeResult | GraphError:
    key = (name, tuple(sorted(inputs.items())))
    if key in ctx.memo:
        return ctx.memo[key]
    before = len(ctx.errors)
    instance = infer_scope(ctx, inner, inputs, data)
    new = ctx.errors[before:]
    del ctx.errors[before:]
    for e in new:  # instance errors are re-reported on the Block node, not kept inside
        if e.severity == "error":
            ctx.failed[(e.block, e.node)] -= 1
    failure = next((e for e in new if e.severity == "error"), None)
    if failure is not None:  # kept as the inner scope reported it; infer_block words it
        result: ScopeResult | GraphError = failure
    else:
        missing = [
            n for n in inner.nodes if inner.specs[n].type == "Output" and n not in instance.outputs
        ]
        if missing:
            result = GraphError(
                "block_output_missing", f"{missing[0]}: output not computed", missing[0]
            )
        else:
            result = instance
            ctx.instances[name].append(instance)
    ctx.memo[key] = result
    return result
