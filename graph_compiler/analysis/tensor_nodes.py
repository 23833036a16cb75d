"""One tensor node's inference: its inputs' ranks and dtypes, inferred parameters, custom code,
then its shapes, parameter count and FLOPs on the meta device (graph_compiler/infer.py)."""

from __future__ import annotations

from ..catalog import InferContext, NodeSpec
from ..custom import CUSTOM_TYPES, CustomCodeError, as_layer_params, custom_layer_factory
from ..document import Node
from ..infer import MODULE_VAR, NodeFailure, infer_node, input_names
from ..shapes import TensorInfo
from .attention_checks import check_attention
from .context import AnalysisContext
from .failures import report_failure, source_text
from .parameters import with_defaults
from .result import NodeResult, Scope
from .ties import TIE_PARAM, tied_to
from .token_checks import check_token_range


def infer_tensor_node(
    ctx: AnalysisContext,
    scope: Scope,
    node: Node,
    spec: NodeSpec,
    user: dict,
    inputs: dict[str, list[TensorInfo]],
) -> NodeResult | None:
    if not check_rank_dtype(ctx, scope, node, spec, inputs):
        return None
    resolved = resolve_inferred(ctx, scope, node, spec, user, inputs)
    if resolved is None:
        return None
    params, inferred = resolved
    if spec.check is not None:
        problems = spec.check(params, inputs)
        for e in problems:
            ctx.error(e.code, f"{node.display}: {e.message}", node.id, e.field, scope.block)
        if problems:
            return None
    if not check_attention(ctx, scope, node, spec.type, params, inputs):
        return None
    if not check_token_range(ctx, scope, node, spec.type, params):
        return None
    if not check_input(ctx, scope, node, spec, params, inputs):
        return None
    factory = factory_key = None
    if spec.type in CUSTOM_TYPES:
        if not ctx.allow_custom_code:
            ctx.error(
                "custom_code_disabled",
                f"{node.display}: custom code is disabled on this server (start it with "
                "--allow-custom-code to run it)",
                node.id,
                "code",
                scope.block,
            )
            return None
        source = as_layer_params(spec.type, params)
        try:
            factory = custom_layer_factory(source)
        except CustomCodeError as exc:
            ctx.error(
                "custom_code_error", f"{node.display}: {exc}", node.id, exc.field, scope.block
            )
            return None
        factory_key = (spec.type, params["code"], source.get("parameters"))
    counts = {port: len(infos) for port, infos in inputs.items()}
    names = input_names(counts)
    call = spec.call or _default_call(spec)
    expr = call(params, names, MODULE_VAR)
    try:
        shapes = infer_node(spec, params, inputs, expr, factory, factory_key)
    except NodeFailure as exc:
        report_failure(ctx, scope, node, spec, inputs, exc)
        return None
    outs = scope.out_ports[node.id]
    if len(shapes.outputs) != len(outs):
        ctx.error(
            "output_count",
            f"{node.display}: {spec.type} gives {len(shapes.outputs)} "
            f"outputs here, not {len(outs)}",
            node.id,
            None,
            scope.block,
        )
        return None
    if spec.role == "loss" and shapes.outputs[0].shape:
        ctx.error(
            "loss_not_scalar",
            f"{node.display}: the loss must be a single number but is {shapes.outputs[0]}",
            node.id,
            None,
            scope.block,
        )
        return None
    r = NodeResult(node, spec, params, inferred, inputs)
    r.outputs = {p.name: info for p, info in zip(outs, shapes.outputs, strict=True)}
    r.num_params = shapes.num_params
    if spec.param(TIE_PARAM) and tied_to(params):  # the Embedding counts the shared weight
        r.num_params = max(0, r.num_params - params["out_features"] * params["in_features"])
    r.trainable_params = r.num_params if node.trainable else 0
    r.flops = shapes.flops
    return r


def check_rank_dtype(
    ctx: AnalysisContext,
    scope: Scope,
    node: Node,
    spec: NodeSpec,
    inputs: dict[str, list[TensorInfo]],
) -> bool:
    ok = True
    for port in scope.in_ports[node.id]:
        for edge, info in zip(
            scope.incoming[node.id].get(port.name, []), inputs.get(port.name, []), strict=False
        ):
            src = source_text(scope, edge)
            if port.ranks and info.rank not in port.ranks:
                hint = f" — {spec.rank_hint}" if spec.rank_hint else ""
                ctx.error(
                    "rank_mismatch",
                    f"{node.display}: {spec.type} expects a "
                    f"{port.layout_text()} input but gets {info} from {src}{hint}",
                    node.id,
                    port.name,
                    scope.block,
                )
                ok = False
            if port.dtype == "int" and info.is_float:
                ctx.error(
                    "dtype_mismatch",
                    f"{node.display}: {spec.type} expects integer "
                    f"ids (int64) but gets {info.dtype} from {src}",
                    node.id,
                    port.name,
                    scope.block,
                )
                ok = False
            elif port.dtype == "bool" and info.dtype != "bool":
                ctx.error(
                    "dtype_mismatch",
                    f"{node.display}: {spec.type}'s {port.name} expects a bool mask "
                    f"(True = padding) but gets {info.dtype} {info} from {src} — make it with "
                    "PaddingMask",
                    node.id,
                    port.name,
                    scope.block,
                )
                ok = False
            elif port.dtype is None and spec.role == "layer" and not info.is_float:
                ctx.error(
                    "dtype_mismatch",
                    f"{node.display}: {spec.type} expects "
                    f"floating-point input but gets {info.dtype} {info} from {src} — "
                    "integer ids need an Embedding first",
                    node.id,
                    port.name,
                    scope.block,
                )
                ok = False
    return ok


def check_input(
    ctx: AnalysisContext,
    scope: Scope,
    node: Node,
    spec: NodeSpec,
    params: dict,
    inputs: dict[str, list[TensorInfo]],
) -> bool:
    """The entry's own check of its params against the input shape (GLU's even dim)."""
    if spec.input_check is None:
        return True
    concrete = {p: [i.concrete(1) for i in infos] for p, infos in inputs.items()}
    problem = spec.input_check(params, InferContext(concrete, ctx.settings))
    if problem is None:
        return True
    field, what = problem
    port = scope.in_ports[node.id][0].name
    described = [
        f"{info} from {source_text(scope, edge)}"
        for edge, info in zip(
            scope.incoming[node.id].get(port, []), inputs.get(port, []), strict=False
        )
    ]
    ctx.error(
        "shape_mismatch",
        f"{node.display}: {spec.type}({field}={params[field]}) {what}: {', '.join(described)}",
        node.id,
        field,
        scope.block,
    )
    return False


def resolve_inferred(
    ctx: AnalysisContext,
    scope: Scope,
    node: Node,
    spec: NodeSpec,
    user: dict,
    inputs: dict[str, list[TensorInfo]],
) -> tuple[dict, dict] | None:
    params = with_defaults(spec, user)
    inferred = {}
    concrete = {p: [i.concrete(1) for i in infos] for p, infos in inputs.items()}
    known = InferContext(concrete, ctx.settings)
    for p in spec.params:
        if p.infer is None:
            continue
        try:
            value = p.infer(known)
        except (IndexError, TypeError):
            value = None
        if value is None:
            if p.name in user:
                continue
            ctx.error(
                "cannot_infer",
                f"{node.display}: cannot infer {p.name} from the input — set it ({p.description})",
                node.id,
                p.name,
                scope.block,
            )
            return None
        if p.name in user and user[p.name] != value:
            ctx.error(
                "inferred_mismatch",
                f"{node.display}: {p.name} is {user[p.name]} but "
                f"the input gives {value} — remove it to have it inferred",
                node.id,
                p.name,
                scope.block,
            )
            return None
        params[p.name] = value
        inferred[p.name] = value
    return params, inferred


def _default_call(spec: NodeSpec):
    if spec.role in ("layer", "custom", "loss"):

        def call(params, ins, module):
            args = ", ".join(
                name for port in spec.input_ports(params) for name in ins.get(port.name, [])
            )
            return f"{module}({args})"

        return call
    raise AssertionError(f"{spec.type} has no forward expression")
