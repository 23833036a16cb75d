"""`torchloom import-module file.py:Class`: an nn.Module traced with torch.fx, as a graph.

Trusted local code only: the file is imported and the class instantiated (the CLI's job; the
server never calls this). The model is traced symbolically, run once on an example input to
learn every shape, and each traced node becomes a catalog node: modules by their class
(lookup.py), functions and methods by name, and the structural ops (add, cat, view/reshape,
flatten, indexing, ...) by the merge nodes. What has no catalog equivalent is kept as an opaque
node that names it.
"""

from __future__ import annotations

import importlib.util
import inspect
import operator
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..names import snake
from .graph import INPUT, ImportedGraph, ImportFailed
from .lookup import Unsupported, function_params, function_table, module_params, spec_for_module

ADD = {operator.add, operator.iadd, torch.add, "add", "add_", "__add__"}
MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_", "__mul__"}
MATMUL = {operator.matmul, torch.matmul, torch.bmm, "matmul", "bmm"}
CAT = {torch.cat, torch.concat, torch.concatenate}
RESHAPE = {"view", "reshape", torch.reshape}
MEAN_SUM = {torch.mean: "Mean", "mean": "Mean", torch.sum: "Sum", "sum": "Sum"}
SQUEEZE = {torch.squeeze: "Squeeze", "squeeze": "Squeeze"}
UNSQUEEZE = {torch.unsqueeze: "Unsqueeze", "unsqueeze": "Unsqueeze"}
TRANSPOSE = {torch.transpose, "transpose"}
PERMUTE = {torch.permute, "permute"}
CHUNK = {torch.chunk, "chunk"}
SPLIT = {torch.split, "split"}
SHAPE_OF = {"size", "dim"}
NO_OPS = {"contiguous", "clone", "detach"}


def load_class(spec: str) -> type[nn.Module]:
    """`path/to/file.py:ClassName` → the class (the file is imported: trusted code only)."""
    path_text, sep, class_name = spec.rpartition(":")
    if not sep or not path_text or not class_name:
        raise ImportFailed(f"{spec!r}: expected path/to/file.py:ClassName")
    path = Path(path_text)
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    name = f"torchloom_import_{snake(path.stem)}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportFailed(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.resolve().parent))  # its sibling imports
    try:
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise ImportFailed(f"{path} fails to import: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ImportFailed(f"{path} defines no {class_name}")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ImportFailed(f"{path}:{class_name} is not an nn.Module class")
    return cls


def instantiate(cls: type[nn.Module], args: Any) -> nn.Module:
    """The model from --args: a JSON object (keyword arguments) or list (positional)."""
    try:
        if args is None:
            return cls()
        if isinstance(args, dict):
            return cls(**args)
        if isinstance(args, list):
            return cls(*args)
    except Exception as exc:
        raise ImportFailed(
            f"{cls.__name__}({_short(args)}) fails: {type(exc).__name__}: {exc}"
        ) from None
    raise ImportFailed("--args must be a JSON object (keyword arguments) or list (positional)")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


# --- tracing ------------------------------------------------------------------------------------


def trace(model: nn.Module, input_shape: Sequence[int]) -> fx.GraphModule:
    """Symbolic trace (optional forward arguments fixed to their defaults), then one run on a
    random input of `input_shape` to record every node's shape."""
    forward = inspect.signature(model.forward).parameters
    params = [p for p in forward.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not params:
        raise ImportFailed(f"{type(model).__name__}.forward takes no input")
    required = [p for p in params if p.default is inspect.Parameter.empty]
    if len(required) > 1:
        names = ", ".join(p.name for p in required)
        raise ImportFailed(
            f"{type(model).__name__}.forward takes {len(required)} inputs ({names}); a torchloom "
            "graph has one input, x"
        )
    concrete = {p.name: p.default for p in params[1:]}
    try:
        gm = fx.symbolic_trace(model, concrete_args=concrete or None)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportFailed(
            f"torch.fx cannot trace {type(model).__name__}.forward ({type(exc).__name__}: "
            f"{first[:300]}): data-dependent control flow is not traceable; simplify forward "
            "or import the model's ONNX export (torchloom import-onnx)"
        ) from None
    gm.graph.eliminate_dead_code()  # `out, _ = self.lstm(x)`: the unused parts go
    gm.recompile()
    example = torch.randn(*input_shape)
    try:
        with torch.no_grad():
            gm(example)  # a plain run first: its error is the model's own, without fx's noise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ImportFailed(
            f"{type(model).__name__} fails on an input of shape {list(input_shape)}: "
            f"{type(exc).__name__}: {first}"
        ) from None
    with torch.no_grad():
        ShapeProp(gm).propagate(example)
    return gm


def import_module(
    model: nn.Module, input_shape: Sequence[int], name: str | None = None
) -> tuple[ImportedGraph, dict[str, torch.Tensor]]:
    """(the graph, the model's state_dict under its original keys)."""
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) < 2 or any(d < 1 for d in input_shape):
        raise ImportFailed(
            f"--input-shape {','.join(map(str, input_shape))}: give the batch and every "
            "sample dimension, each >= 1, e.g. 1,3,32,32"
        )
    was_training = model.training
    model.eval()
    try:
        gm = trace(model, input_shape)
        graph = ImportedGraph(name or type(model).__name__, input_shape)
        _Converter(gm, graph).run()
    finally:
        model.train(was_training)
    graph.notes.insert(0, f"Imported from {type(model).__module__}.{type(model).__qualname__}.")
    return graph, dict(model.state_dict())


# --- conversion ---------------------------------------------------------------------------------


def _arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    if name in node.kwargs:
        return node.kwargs[name]
    return node.args[index] if len(node.args) > index else default


@dataclass(frozen=True)
class Ref:
    """A tensor: output `port` of graph node `node`."""

    node: str
    port: str = "out"


@dataclass(frozen=True)
class Attr:
    """A parameter or buffer read directly in forward (self.pos_embedding)."""

    name: str


@dataclass(frozen=True)
class Multi:
    """A module output that is a tuple (LSTM, MultiheadAttention): only [0] is supported."""

    node: str
    what: str


@dataclass(frozen=True)
class Dim:
    """x.size(d) / x.shape[d]: only used to keep the batch in view/reshape."""

    source: Any
    dim: int | None


class _Converter:
    def __init__(self, gm: fx.GraphModule, graph: ImportedGraph):
        self.gm, self.g = gm, graph
        self.env: dict[fx.Node, Any] = {}
        self.modules = dict(gm.named_modules())
        self.module_calls: dict[str, int] = {}

    def run(self) -> None:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.env[node] = Ref(INPUT, "x")
            elif node.op == "output":
                self._output(node)
            else:
                self.env[node] = self._convert(node)

    # --- helpers ---------------------------------------------------------------------------

    def shape(self, node: fx.Node) -> tuple[int, ...] | None:
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    def value(self, arg: Any) -> Any:
        if isinstance(arg, fx.Node):
            return self.env[arg]
        if isinstance(arg, list | tuple):
            return type(arg)(self.value(a) for a in arg)
        return arg

    def tensor(self, arg: Any, node: fx.Node) -> Ref:
        got = self.value(arg)
        if isinstance(got, Attr):
            raise Unsupported(f"it uses the model's tensor self.{got.name} directly")
        if not isinstance(got, Ref):
            raise Unsupported(f"its input {arg} is not a tensor torchloom can follow")
        return got

    def hint(self, node: fx.Node) -> str:
        return snake(str(node.target) if node.op == "call_module" else node.name)

    def opaque(self, node: fx.Node, what: str, why: str) -> Ref | None:
        tensors = [a for a in node.all_input_nodes if isinstance(self.env.get(a), Ref)]
        refs = [(self.env[a].node, self.env[a].port) for a in tensors]
        if not refs:
            raise ImportFailed(f"{node.name} ({what}): {why}; it takes no tensor input")
        made = self.g.add_opaque(self.hint(node), what, refs, why)
        return Ref(made.id)

    def add(self, node: fx.Node, type_: str, params: dict, inputs, **kw) -> Ref:
        made = self.g.add(self.hint(node), type_, params, inputs, origin=str(node.target), **kw)
        return Ref(made.id)

    # --- nodes -----------------------------------------------------------------------------

    def _convert(self, node: fx.Node) -> Any:
        try:
            if node.op == "call_module":
                return self._module(node)
            if node.op in ("call_function", "call_method"):
                return self._function(node)
            if node.op == "get_attr":  # its users become opaque: no node holds a bare tensor
                return Attr(str(node.target))
        except Unsupported as exc:
            what = self._describe(node)
            if not any(isinstance(self.env.get(a), Ref) for a in node.all_input_nodes):
                raise ImportFailed(f"{node.name} ({what}): {exc}") from None
            return self.opaque(node, what, str(exc))
        raise ImportFailed(f"{node.name}: unknown fx op {node.op}")  # pragma: no cover

    def _describe(self, node: fx.Node) -> str:
        if node.op == "call_module":
            m = self.modules[node.target]
            return f"{node.target} ({type(m).__module__}.{type(m).__qualname__})"
        if node.op == "call_method":
            return f"Tensor.{node.target}"
        if node.op == "get_attr":
            return f"self.{node.target}"
        target = node.target
        return f"{getattr(target, '__module__', '') or ''}.{getattr(target, '__name__', target)}"

    def _module(self, node: fx.Node) -> Any:
        path = str(node.target)
        module = self.modules[path]
        if isinstance(module, nn.TransformerEncoder):
            return self._encoder_stack(node, module, path)
        spec = spec_for_module(module)
        if spec is None:
            raise Unsupported(f"{type(module).__name__} is not in the catalog")
        calls = self.module_calls[path] = self.module_calls.get(path, 0) + 1
        has_state = any(True for _ in module.parameters()) or any(True for _ in module.buffers())
        if calls > 1 and has_state:
            raise ImportFailed(
                f"{path} ({type(module).__name__}) is called {calls} times: its weights are "
                "shared, and each torchloom node has its own"
            )
        params, inferred = module_params(module, spec)
        if node.kwargs and not (spec.type == "MultiheadAttention"):
            raise Unsupported(f"keyword arguments {sorted(node.kwargs)} in the call")
        ports = [p.name for p in spec.input_ports(params)]
        if spec.type == "MultiheadAttention":
            return self._attention(node, path, params, inferred)
        args = [self.tensor(a, node) for a in node.args]
        if len(args) > len(ports):
            raise Unsupported(f"{len(args)} inputs; the catalog node takes {len(ports)}")
        inputs = [(port, ref.node, ref.port) for port, ref in zip(ports, args, strict=False)]
        kw = {"label": path, "module_path": path if has_state else None}
        made = self.g.add(self.hint(node), spec.type, params, inputs, origin=path, **kw)
        made.inferred = inferred
        if spec.type in ("LSTM", "GRU", "RNN"):
            return Multi(made.id, spec.type)
        return Ref(made.id)

    def _attention(self, node: fx.Node, path: str, params: dict, inferred: dict) -> Multi:
        args = list(node.args)
        kwargs = dict(node.kwargs)
        for i, name in enumerate(("query", "key", "value")):
            if len(args) <= i and name in kwargs:
                args.append(kwargs.pop(name))
        extra = {k: v for k, v in kwargs.items() if v is not None and k != "need_weights"}
        if extra or len(args) > 3:
            raise Unsupported(f"masks or extra arguments ({', '.join(sorted(extra))})")
        refs = [self.tensor(a, node) for a in args]
        inputs = [("query", refs[0].node, refs[0].port)]
        if len(refs) > 1 and refs[1] != refs[0]:
            inputs.append(("key", refs[1].node, refs[1].port))
        if len(refs) > 2 and refs[2] != refs[1]:
            inputs.append(("value", refs[2].node, refs[2].port))
        made = self.g.add(
            self.hint(node),
            "MultiheadAttention",
            params,
            inputs,
            label=path,
            module_path=path,
            origin=path,
        )
        made.inferred = inferred
        return Multi(made.id, "MultiheadAttention")

    def _encoder_stack(self, node: fx.Node, module: nn.TransformerEncoder, path: str) -> Ref:
        """nn.TransformerEncoder: its layers one after another (and its final norm)."""
        if len(node.args) != 1 or any(v is not None for v in node.kwargs.values()):
            raise Unsupported("a mask or extra arguments")
        ref = self.tensor(node.args[0], node)
        children = [(f"{path}.layers.{i}", layer) for i, layer in enumerate(module.layers)]
        if module.norm is not None:
            children.append((f"{path}.norm", module.norm))
        for child_path, child in children:
            spec = spec_for_module(child)
            if spec is None:
                raise Unsupported(f"{child_path} ({type(child).__name__}) is not in the catalog")
            params, inferred = module_params(child, spec)
            made = self.g.add(
                snake(child_path),
                spec.type,
                params,
                [("in", ref.node, ref.port)],
                label=child_path,
                module_path=child_path,
                origin=child_path,
            )
            made.inferred = inferred
            ref = Ref(made.id)
        return ref

    def _function(self, node: fx.Node) -> Any:
        fn, args, kwargs = node.target, node.args, dict(node.kwargs)
        if fn is operator.getitem:
            return self._getitem(node)
        if fn in SHAPE_OF:
            return self._size(node)
        if fn is getattr:
            return self._attr(node)
        if fn in NO_OPS:
            return self.tensor(args[0], node)
        if fn in ADD or fn in MUL:
            return self._binary(node, "Add" if fn in ADD else "Multiply")
        if fn in MATMUL:
            a, b = (self.tensor(x, node) for x in args[:2])
            return self.add(node, "MatMul", {}, [("a", a.node, a.port), ("b", b.node, b.port)])
        if fn in CAT:
            tensors = kwargs.pop("tensors", args[0] if args else None)
            dim = kwargs.pop("dim", args[1] if len(args) > 1 else 0)
            refs = [self.tensor(t, node) for t in tensors]
            params = {} if dim == 1 else {"dim": dim}
            return self.add(node, "Concat", params, [("in", r.node, r.port) for r in refs])
        if fn in RESHAPE:
            return self._reshape(node)
        if fn in MEAN_SUM:
            return self._reduce(node, MEAN_SUM[fn])
        if fn in SQUEEZE or fn in UNSQUEEZE:
            type_ = SQUEEZE.get(fn) or UNSQUEEZE[fn]
            x = self.tensor(args[0], node)
            dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
            if not isinstance(dim, int):
                raise Unsupported("squeeze without a dim")
            return self.add(node, type_, {"dim": dim}, [("in", x.node, x.port)])
        if fn in TRANSPOSE:
            x = self.tensor(args[0], node)
            params = {"dim0": _arg(node, 1, "dim0"), "dim1": _arg(node, 2, "dim1")}
            return self.add(node, "Transpose", params, [("in", x.node, x.port)])
        if fn in PERMUTE:
            x = self.tensor(args[0], node)
            dims = args[1] if len(args) == 2 and isinstance(args[1], list | tuple) else args[1:]
            dims = kwargs.get("dims", dims)
            return self.add(node, "Permute", {"dims": list(dims)}, [("in", x.node, x.port)])
        if fn in CHUNK or fn in SPLIT:
            return self._split(node, "Chunk" if fn in CHUNK else "Split")
        spec = function_table().get(fn)
        if spec is None:
            raise Unsupported("no catalog node computes it")
        x = self.tensor(args[0], node)
        rest = [self.value(a) for a in args[1:]]
        params = function_params(fn, spec, (None, *rest), kwargs)
        return self.add(node, spec.type, params, [("in", x.node, x.port)])

    def _binary(self, node: fx.Node, type_: str) -> Ref:
        args = list(node.args)
        if node.kwargs.get("alpha", 1) != 1 or len(args) != 2:
            raise Unsupported("alpha or extra arguments")
        a, b = (self.value(x) for x in args)
        if not (isinstance(a, Ref) and isinstance(b, Ref)):
            held = next((v for v in (a, b) if isinstance(v, Attr)), None)
            if held is not None:
                raise Unsupported(f"it uses the model's tensor self.{held.name} directly")
            raise Unsupported("a tensor combined with a constant")
        return self.add(node, type_, {}, [("in", a.node, a.port), ("in", b.node, b.port)])

    def _attr(self, node: fx.Node) -> Any:
        source, name = node.args[0], node.args[1] if len(node.args) > 1 else None
        if node.target is getattr and name == "shape":
            return Dim(self.value(source), None)
        raise Unsupported(f"attribute {name}")

    def _size(self, node: fx.Node) -> Dim:
        if node.target != "size":
            raise Unsupported("x.dim()")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        return Dim(self.value(node.args[0]), dim)

    def _reshape(self, node: fx.Node) -> Ref:
        x = self.tensor(node.args[0], node)
        shape = node.args[1:] if node.target != torch.reshape else node.args[1]
        shape = node.kwargs.get("shape", shape)
        if len(shape) == 1 and isinstance(shape[0], list | tuple):
            shape = shape[0]
        shape = [self.value(d) for d in shape]
        first = shape[0] if shape else None
        batch_kept = (isinstance(first, Dim) and first.dim == 0) or (
            first == -1 and all(isinstance(d, int) and d >= 0 for d in shape[1:])
        )
        rest = shape[1:]
        if not batch_kept or not all(isinstance(d, int) for d in rest):
            raise Unsupported(
                "a reshape that does not keep the batch first (x.view(x.size(0), ...))"
            )
        out = self.shape(node)
        if out is not None and len(out) == 2 and rest == [-1]:
            return self.add(node, "Flatten", {}, [("in", x.node, x.port)])
        return self.add(node, "Reshape", {"shape": rest}, [("in", x.node, x.port)])

    def _reduce(self, node: fx.Node, type_: str) -> Ref:
        x = self.tensor(node.args[0], node)
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        keepdim = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False)
        if dim is None or set(node.kwargs) - {"dim", "keepdim"}:
            raise Unsupported("a reduction over every dim, or with a dtype")
        dims = [dim] if isinstance(dim, int) else list(dim)
        params: dict[str, Any] = {"dim": dims}
        if keepdim:
            params["keepdim"] = True
        return self.add(node, type_, params, [("in", x.node, x.port)])

    def _split(self, node: fx.Node, type_: str) -> Any:
        x = self.tensor(node.args[0], node)
        size = node.kwargs.get("chunks", node.kwargs.get("split_size_or_sections"))
        size = node.args[1] if size is None and len(node.args) > 1 else size
        dim = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
        if type_ == "Chunk":
            params = {"chunks": size, "dim": dim}
        else:
            out = self.shape(node.args[0])
            if isinstance(size, int):
                if out is None:
                    raise Unsupported("split sizes that depend on the input")
                total = out[dim]
                size = [size] * (total // size) + ([total % size] if total % size else [])
            params = {"split_sizes": list(size), "dim": dim}
        made = self.g.add(self.hint(node), type_, params, [("in", x.node, x.port)])
        return ("parts", made.id)

    def _getitem(self, node: fx.Node) -> Any:
        source, index = self.value(node.args[0]), node.args[1]
        if isinstance(source, tuple) and source[:1] == ("parts",):
            return Ref(source[1], f"out{index}")
        if isinstance(source, Multi):
            if index != 0:
                raise Unsupported(f"element {index} of the {source.what} output")
            if source.what in ("LSTM", "GRU", "RNN"):
                made = next(n for n in self.g.nodes if n.id == source.node)
                made.params["output"] = "sequence"
            return Ref(source.node)
        if isinstance(source, Dim):
            if source.dim is not None:
                raise Unsupported("indexing a size")
            return Dim(source.source, index)
        if isinstance(source, Ref):
            return self._index(node, source, index)
        raise Unsupported("indexing something torchloom does not follow")

    def _index(self, node: fx.Node, x: Ref, index: Any) -> Ref:
        """x[:, 0] → Select; x[:, 1:5] → Slice (one indexed dim; leading full slices)."""
        items = list(index) if isinstance(index, tuple) else [index]
        full = slice(None, None, None)
        dims = [i for i, item in enumerate(items) if item != full]
        if len(dims) != 1 or Ellipsis in items:
            raise Unsupported(f"the index {index!r}")
        dim, item = dims[0], items[dims[0]]
        if isinstance(item, int):
            return self.add(node, "Select", {"dim": dim, "index": item}, [("in", x.node, x.port)])
        if isinstance(item, slice) and all(
            isinstance(v, int | None) for v in (item.start, item.stop, item.step)
        ):
            params = {"dim": dim, "start": item.start, "end": item.stop, "step": item.step or 1}
            return self.add(node, "Slice", params, [("in", x.node, x.port)])
        raise Unsupported(f"the index {index!r}")

    def _output(self, node: fx.Node) -> None:
        result = self.value(node.args[0])
        items = list(result) if isinstance(result, tuple | list) else [result]
        sources = node.args[0] if isinstance(node.args[0], tuple | list) else [node.args[0]]
        for ref, src in zip(items, sources, strict=True):
            if not isinstance(ref, Ref) or ref.node == INPUT:
                raise ImportFailed("the model must return tensors computed from its input")
            shape = self.shape(src) if isinstance(src, fx.Node) else None
            if shape is None:
                raise ImportFailed(f"no shape recorded for the output {src}")
            self.g.outputs.append((ref.node, ref.port, shape))
