"""model.py from a graph: readable, deterministic, self-contained PyTorch.

One emit path per node kind (layer, inline op, custom layer, block instance); submodules named
after node labels; one line per node in forward with its shape as a comment; inferred sizes
written as literal numbers. The module the app trains is built by executing this same source.
"""

from __future__ import annotations

import re
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .analysis import MODEL_ROLES, Analysis, NodeResult, Scope, ScopeResult, analyze
from .catalog.attention import CAUSAL_MASK
from .custom import custom_class_source
from .errors import GraphCompileError
from .names import RESERVED, Namespace
from .render import Raw, constructor, docstring_text, value

LINE_LENGTH = 100
INDENT = "    "


@dataclass(frozen=True)
class ModelInterface:
    """How the model meets the data and the losses."""

    inputs: tuple[str, ...]  # Dataset ports the forward takes, e.g. ("x",)
    outputs: tuple[tuple[str, str], ...]  # (node id, port) returned by forward, in order
    nodes: tuple[str, ...]  # model nodes needed for the outputs, topological order


def model_interface(analysis: Analysis) -> ModelInterface:
    scope = analysis.top.scope
    outputs: list[tuple[str, str]] = []
    for node_id in scope.nodes:  # document order of losses → deterministic output order
        spec = scope.specs[node_id]
        if spec.role != "loss":
            continue
        for port in scope.in_ports[node_id]:
            for e in scope.incoming[node_id].get(port.name, []):
                if (
                    scope.specs[e.source].role in MODEL_ROLES
                    and (e.source, e.source_port) not in outputs
                ):
                    outputs.append((e.source, e.source_port))
    needed = _ancestors(scope, {n for n, _ in outputs})
    nodes = tuple(n for n in scope.order if n in needed and scope.specs[n].role in MODEL_ROLES)
    used_inputs = {
        e.source_port
        for e in scope.edges
        if e.target in needed and scope.specs[e.source].role == "data"
    }
    inputs = tuple(p for p in ("x", "y") if p in used_inputs)
    return ModelInterface(inputs, tuple(outputs), nodes)


def _ancestors(scope: Scope, targets: set[str]) -> set[str]:
    preds: dict[str, list[str]] = defaultdict(list)
    for e in scope.edges:
        preds[e.target].append(e.source)
    seen: set[str] = set()
    stack = list(targets)
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(preds[n])
    return seen


def checked_analysis(document: Any, *, allow_custom_code: bool = False) -> Analysis:
    """The document's Analysis (or the one given), raising GraphCompileError if it has errors."""
    analysis = (
        document
        if isinstance(document, Analysis)
        else analyze(document, allow_custom_code=allow_custom_code)
    )
    if not analysis.ok:
        raise GraphCompileError(analysis.errors)
    return analysis


def generate(document: Any, *, allow_custom_code: bool = False) -> str:
    """The `model.py` source of a document (or of an existing Analysis)."""
    return _Generator(checked_analysis(document, allow_custom_code=allow_custom_code)).source()


def model_class_name(analysis: Analysis) -> str:
    return _Generator(analysis).model_class


@dataclass
class _ClassPlan:
    name: str
    varying: dict[str, dict[str, str]] = field(default_factory=dict)  # node → param → arg name
    args: list[str] = field(default_factory=list)


class _Generator:
    def __init__(self, analysis: Analysis):
        self.a = analysis
        self.classes = Namespace(RESERVED)
        self.model_class = self.classes.create(analysis.document.name, "model", style="camel")
        self.block_plans: dict[str, _ClassPlan] = {}
        self.custom_classes: dict[tuple, tuple[str, str]] = {}  # key → (class name, source)

    # --- whole file --------------------------------------------------------------------------

    def source(self) -> str:
        iface = model_interface(self.a)
        used_blocks = self.block_order()
        for name in used_blocks:
            self.block_plans[name] = self.plan_block(name)
        bodies: list[list[str]] = []
        for name in used_blocks:
            bodies.append(self.emit_block_class(name))
        model = self.emit_model_class(iface)
        custom = [src.rstrip("\n").splitlines() for _, src in self.custom_classes.values()]
        classes = [*custom, *bodies, model]
        body = "\n\n\n".join("\n".join(lines) for lines in classes)
        return self.header(iface) + "\n" + self.imports(body) + "\n\n" + body + "\n"

    def header(self, iface: ModelInterface) -> str:
        doc = self.a.document
        totals = self.a.totals()
        data = self.a.result(self.a.data_node)
        ins = ", ".join(f"{p} {data.outputs[p]}" for p in iface.inputs)
        outs = ", ".join(str(self.a.result(n).outputs[p]) for n, p in iface.outputs)
        paragraphs = [
            f"{docstring_text(doc.name)}: generated by torchloom from its graph document.",
            f"{self.model_class} maps {ins} to {outs}.",
            f"Parameters: {totals['params']:,} ({totals['trainable_params']:,} trainable); "
            f"forward FLOPs per sample: {totals['flops']:,}.",
        ]
        wrapped = [
            "\n".join(textwrap.wrap(p, LINE_LENGTH - 3, break_long_words=False)) for p in paragraphs
        ]
        return '"""' + wrapped[0] + "\n\n" + "\n".join(wrapped[1:]) + '\n"""\n'

    @staticmethod
    def imports(body: str) -> str:
        lines = []
        if re.search(r"\bmath\.", body):
            lines += ["import math", ""]
        if re.search(r"(?<![\w.])torch\.", body):
            lines.append("import torch")
        if re.search(r"(?<![\w.])F\.", body):
            lines.append("import torch.nn.functional as F")
        if re.search(r"(?<![\w.])nn\.", body):
            lines.append("from torch import nn")
        return "\n".join(lines) + "\n"

    # --- blocks ------------------------------------------------------------------------------

    def block_order(self) -> list[str]:
        """Blocks in use, each after the blocks it contains (so classes are defined first)."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            scope = self.a.blocks[name]
            for node_id in scope.order:
                if scope.specs[node_id].role == "block":
                    visit(scope.params[node_id]["block"])
            order.append(name)

        top = self.a.top.scope
        for node_id in model_interface(self.a).nodes:
            if top.specs[node_id].role == "block":
                visit(top.params[node_id]["block"])
        return order

    def plan_block(self, name: str) -> _ClassPlan:
        plan = _ClassPlan(self.classes.create(name, ("block", name), style="camel"))
        instances = self.a.instances.get(name, [])
        scope = self.a.blocks[name]
        names = self.node_names(scope)
        # params whose value differs between instances become constructor arguments; params
        # that always vary together (conv1.in_channels, skip.in_channels) share one argument
        groups: dict[tuple, list[tuple[str, str]]] = {}
        for node_id in scope.order:
            spec = scope.specs[node_id]
            if spec.role != "layer":
                continue
            for p in spec.params:
                if not p.torch_arg:
                    continue
                values = tuple(
                    _key(inst.nodes[node_id].params.get(p.name))
                    for inst in instances
                    if node_id in inst.nodes
                )
                if len(set(values)) > 1:
                    groups.setdefault(values, []).append((node_id, p.name))
        arg_names = Namespace(RESERVED | {"x", "y"})
        for members in groups.values():
            params = {pname for _, pname in members}
            hint = members[0][1] if len(params) == 1 else f"{names[members[0][0]]}_{members[0][1]}"
            arg = arg_names.create(hint)
            plan.args.append(arg)
            for node_id, pname in members:
                plan.varying.setdefault(node_id, {})[pname] = arg
        return plan

    def block_call(self, name: str, instance: ScopeResult) -> str:
        plan = self.block_plans[name]
        parts: dict[str, str] = {}
        for node_id, params in plan.varying.items():
            for pname, arg in params.items():
                parts[arg] = f"{arg}={value(instance.nodes[node_id].params[pname])}"
        return f"{plan.name}({', '.join(parts[a] for a in plan.args)})"

    def emit_block_class(self, name: str) -> list[str]:
        scope = self.a.blocks[name]
        instances = self.a.instances[name]
        plan = self.block_plans[name]
        inputs = [n for n in scope.nodes if scope.specs[n].type == "Input"]
        outputs = [n for n in scope.nodes if scope.specs[n].type == "Output"]
        out_refs = [
            (scope.incoming[o]["in"][0].source, scope.incoming[o]["in"][0].source_port)
            for o in outputs
        ]
        nodes = [n for n in scope.order if scope.specs[n].role in MODEL_ROLES]
        description = self.a.document.blocks[name].description or f"The {name} block."
        return self.emit_class(
            plan.name, description, scope, instances, nodes, inputs, out_refs, plan
        )

    # --- classes -----------------------------------------------------------------------------

    def emit_model_class(self, iface: ModelInterface) -> list[str]:
        scope = self.a.top.scope
        data = self.a.data_node
        return self.emit_class(
            self.model_class,
            self.a.document.description or f"The {self.a.document.name} network.",
            scope,
            [self.a.top],
            list(iface.nodes),
            [(data, p) for p in iface.inputs],
            list(iface.outputs),
            None,
        )

    @staticmethod
    def node_names(scope: Scope) -> dict[str, str]:
        ns = Namespace(RESERVED | {"x", "y", "out", "h", CAUSAL_MASK})
        return {node_id: ns.create(node.display, node_id) for node_id, node in scope.nodes.items()}

    def emit_class(
        self,
        class_name: str,
        doc: str,
        scope: Scope,
        instances: list[ScopeResult],
        nodes: list[str],
        inputs: list,
        outputs: list[tuple[str, str]],
        plan: _ClassPlan | None,
    ) -> list[str]:
        names = self.node_names(scope)
        first = instances[0]
        # forward argument names: the Dataset's port names, or the block's Input ids
        variables: dict[tuple[str, str], str] = {}
        args = []
        arg_ns = Namespace(RESERVED | {CAUSAL_MASK})
        for item in inputs:
            node_id, port = item if isinstance(item, tuple) else (item, "out")
            var = arg_ns.create(port if isinstance(item, tuple) else item)
            variables[(node_id, port)] = var
            args.append(var)
        chain = args[0] if args else None
        branch = "out" if "out" not in args else "h"  # the side chain (residual branches)
        uses: dict[tuple[str, str], int] = defaultdict(int)
        for node_id in nodes:
            for edges in scope.incoming[node_id].values():
                for e in edges:
                    uses[(e.source, e.source_port)] += 1

        init: list[str] = []
        forward: list[str] = []
        last_use = self.last_uses(scope, nodes, outputs)
        live_vars: dict[str, tuple[str, str]] = {v: k for k, v in variables.items()}
        naming = _Naming(chain, branch, live_vars, last_use, uses, outputs)
        for index, node_id in enumerate(nodes):
            r = first.nodes[node_id]
            spec = r.spec
            attr = names[node_id]
            ins: dict[str, list[str]] = {}
            for port in scope.in_ports[node_id]:
                ins[port.name] = [
                    variables[(e.source, e.source_port)]
                    for e in scope.incoming[node_id].get(port.name, [])
                ]
            module_ref = f"self.{attr}"
            if spec.init_code is not None:  # a learned tensor: the forward reads self.<attr>
                init.append("\n".join(spec.init_code(r.params, module_ref)))
                variables[(node_id, "out")] = module_ref
                continue
            if spec.role == "layer":
                params = dict(r.params)
                for pname, arg in (plan.varying.get(node_id, {}) if plan else {}).items():
                    params[pname] = Raw(arg)
                init.append(_assign(f"self.{attr}", constructor(spec, params)))
            elif spec.role == "custom":
                init.append(f"self.{attr} = {self.custom_class(r)}()")
            elif spec.role == "block":
                init.extend(self.emit_block_instance(attr, r, instances, node_id))
            if spec.role == "block":
                flat = [v for port in scope.in_ports[node_id] for v in ins.get(port.name, [])]
                expr = f"{module_ref}({', '.join(flat)})"
            else:
                call = spec.call or _module_call(spec)
                expr = call(r.params, ins, module_ref)
            out_ports = [p.name for p in scope.out_ports[node_id]]
            consumed = [v for vs in ins.values() for v in vs]
            # several returned values read best under their own names (logits, reconstruction)
            named_output = len(outputs) > 1 and any((node_id, p) in outputs for p in out_ports)
            if len(out_ports) == 1:
                ref = (node_id, out_ports[0])
                targets = [naming.variable_for(ref, attr, consumed, named_output, index)]
            else:
                targets = [f"{attr}_{p}" for p in out_ports]
            for port, var in zip(out_ports, targets, strict=True):
                variables[(node_id, port)] = var
                live_vars[var] = (node_id, port)
            shapes = ", ".join(self.shape_text(instances, node_id, p) for p in out_ports)
            *statements, expr = expr.split("\n")  # what the call needs first (a causal mask)
            forward.extend(statements)
            forward.append(_wrapped_call(f"{', '.join(targets)} = ", expr, f"  # {shapes}"))
        returns = ", ".join(variables[ref] for ref in outputs)
        lines = [f"class {class_name}(nn.Module):", *_docstring(doc, INDENT), ""]
        ctor_args = "".join(f", {a}" for a in (plan.args if plan else []))
        lines.append(f"{INDENT}def __init__(self{ctor_args}):")
        lines.append(f"{INDENT * 2}super().__init__()")
        lines += [INDENT * 2 + line for chunk in init for line in chunk.splitlines()]
        lines.append("")
        lines.append(f"{INDENT}def forward(self, {', '.join(args)}):")
        lines += [INDENT * 2 + line for entry in forward for line in entry.splitlines()]
        lines.append(f"{INDENT * 2}return {returns}")
        return lines

    @staticmethod
    def last_uses(scope: Scope, nodes: list[str], outputs) -> dict[tuple[str, str], int]:
        last: dict[tuple[str, str], int] = {}
        for index, node_id in enumerate(nodes):
            for edges in scope.incoming[node_id].values():
                for e in edges:
                    last[(e.source, e.source_port)] = index
        for ref in outputs:
            last[ref] = len(nodes) + 1  # returned: alive to the end
        return last

    @staticmethod
    def shape_text(instances: list[ScopeResult], node_id: str, port: str) -> str:
        texts: list[str] = []
        for inst in instances:
            r = inst.nodes.get(node_id)
            if r is not None and port in r.outputs:
                text = str(r.outputs[port])
                if text not in texts:
                    texts.append(text)
        return " or ".join(texts)

    def emit_block_instance(
        self, attr: str, r: NodeResult, instances: list[ScopeResult], node_id: str
    ) -> list[str]:
        name = r.params["block"]
        calls_per_scope = []
        for inst in instances:
            nr = inst.nodes[node_id]
            calls_per_scope.append(tuple(self.block_call(name, i) for i in nr.instances))
        if len(set(calls_per_scope)) > 1:
            raise GraphCompileError(
                [
                    _codegen_error(
                        node_id,
                        f"{r.label}: block {name} is built with different sizes in different "
                        "uses of its parent block; give every use the same input shape",
                    )
                ]
            )
        calls = calls_per_scope[0]
        if len(calls) == 1:
            return [f"self.{attr} = {calls[0]}"]
        if len(set(calls)) == 1:
            return [f"self.{attr} = nn.Sequential(*({calls[0]} for _ in range({len(calls)})))"]
        body = "".join(f"{INDENT}{c},\n" for c in calls)
        return [f"self.{attr} = nn.Sequential(\n{body})"]

    def custom_class(self, r: NodeResult) -> str:
        key = (r.params["code"], r.params.get("parameters"), r.params.get("inputs"))
        if key not in self.custom_classes:
            name = self.classes.create(r.label, ("custom", key), style="camel")
            args = [str(a) for a in (r.params.get("inputs") or ("x",))]
            src = custom_class_source(name, r.params, args, f"Custom layer {r.label}.")
            self.custom_classes[key] = (name, src)
        return self.custom_classes[key][0]


@dataclass(frozen=True)
class _Naming:
    """Names a node's result like hand-written code: `x = self.fc(x)` along the main chain,
    `out = ...` along a side branch (as in a residual block), the node's name otherwise."""

    chain: str | None  # the forward's first argument, usually x
    branch: str  # the side-chain variable, usually out
    live_vars: dict[str, tuple[str, str]]  # variable → the value it holds now
    last_use: dict[tuple[str, str], int]  # value → index of the last node that reads it
    uses: dict[tuple[str, str], int]  # value → number of readers
    outputs: list[tuple[str, str]]  # values returned by forward

    def free(self, var: str | None, index: int) -> bool:
        return var is not None and self.last_use.get(self.live_vars.get(var), -1) <= index

    def variable_for(
        self, ref, attr: str, consumed: list[str], named_output: bool, index: int
    ) -> str:
        if named_output:
            return attr
        if consumed and self.free(self.chain, index):
            return self.chain
        if self.branch in consumed and self.free(self.branch, index):
            return self.branch
        if self.uses[ref] == 1 and ref not in self.outputs and self.free(self.branch, index):
            return self.branch
        return attr


def _module_call(spec):
    def call(params, ins, module):
        args = ", ".join(v for port in spec.input_ports(params) for v in ins.get(port.name, []))
        return f"{module}({args})"

    return call


def _assign(target: str, expr: str) -> str:
    """`target = expr`, wrapped one argument per line when it would pass the line length."""
    line = f"{target} = {expr}"
    if len(line) + 8 <= LINE_LENGTH or not expr.endswith(")") or "(" not in expr:
        return line
    head, _, inner = expr.partition("(")
    parts = _split_args(inner[:-1])
    body = "".join(f"{INDENT}{p},\n" for p in parts)
    return f"{target} = {head}(\n{body})"


def _wrapped_call(target: str, expr: str, comment: str) -> str:
    """A forward line; a call that would pass the line length gets one argument per line (with
    the trailing comma, as ruff format leaves it), `[0]` and the shape comment after the `)`."""
    line = f"{target}{expr}{comment}"
    if len(line) + 2 * len(INDENT) <= LINE_LENGTH or "(" not in expr:
        return line
    head, _, rest = expr.partition("(")
    depth, end = 1, None
    for i, ch in enumerate(rest):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0:
            end = i
            break
    if end is None or rest[end + 1 :] not in ("", "[0]"):
        return line
    body = "".join(f"{INDENT}{p},\n" for p in _split_args(rest[:end]))
    return f"{target}{head}(\n{body}){rest[end + 1 :]}{comment}"


def _split_args(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def _key(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _docstring(text: str, indent: str) -> list[str]:
    """A docstring wrapped to the line length, so long user descriptions stay ruff-clean."""
    text = docstring_text(text)
    if len(indent) + len(text) + 6 <= LINE_LENGTH:
        return [f'{indent}"""{text}"""']
    lines = textwrap.wrap(text, LINE_LENGTH - len(indent) - 3, break_long_words=False)
    return [f'{indent}"""{lines[0]}', *(f"{indent}{line}" for line in lines[1:]), f'{indent}"""']


def _codegen_error(node_id: str, message: str):
    from .errors import GraphError

    return GraphError("codegen_unsupported", message, node_id)
