"""call_function and call_method nodes → catalog nodes.

The structural operations (add, multiply, matmul, cat, view/reshape, reductions, squeeze,
transpose, permute, chunk/split, indexing) map onto the merge and shape nodes here; every other
function or method is looked up by name in the catalog (lookup.function_table). Sizes read in
forward (x.size(0), x.shape[0]) are followed only so that a reshape can keep the batch first.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

import torch
from torch import fx

from .fx_patterns import DEVICE, arange, expand, fold_positions, sdpa
from .fx_values import Attr, Dim, Multi, Ref, arg
from .lookup import Unsupported, function_params, function_table

if TYPE_CHECKING:
    from .fx_converter import Converter

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
EXPAND = {"expand"}
ARANGE = {torch.arange}
SDPA = {torch.nn.functional.scaled_dot_product_attention}
NO_OPS = {"contiguous", "clone", "detach"}
SUB = {operator.sub, operator.isub, torch.sub, "sub", "sub_", "__sub__"}
RSUB = {"__rsub__", torch.rsub}
DIV = {operator.truediv, operator.itruediv, torch.div, "div", "div_", "__truediv__"}
NEG = {operator.neg, torch.neg, "neg", "__neg__"}
SCALAR_OPS = ADD | MUL | SUB | RSUB | DIV | NEG


def convert_function(converter: Converter, node: fx.Node) -> Any:
    fn, args, kwargs = node.target, node.args, dict(node.kwargs)
    if fn is operator.getitem:
        return _getitem(converter, node)
    if fn in SHAPE_OF:
        return _size(converter, node)
    if fn is getattr:
        return _attr(converter, node)
    if fn in NO_OPS:
        return converter.tensor(args[0], node)
    if fn in EXPAND:
        return expand(converter, node)
    if fn in ARANGE:
        return arange(converter, node)
    if fn in SDPA:
        return sdpa(converter, node)
    if fn in SCALAR_OPS:
        scaled = _scalar(converter, node)
        if scaled is not None:
            return scaled
    if fn in ADD or fn in MUL:
        return _binary(converter, node, "Add" if fn in ADD else "Multiply")
    if fn in MATMUL:
        a, b = (converter.tensor(x, node) for x in args[:2])
        return converter.add(node, "MatMul", {}, [("a", a.node, a.port), ("b", b.node, b.port)])
    if fn in CAT:
        tensors = kwargs.pop("tensors", args[0] if args else None)
        dim = kwargs.pop("dim", args[1] if len(args) > 1 else 0)
        refs = [converter.tensor(t, node) for t in tensors]
        params = {} if dim == 1 else {"dim": dim}
        return converter.add(node, "Concat", params, [("in", r.node, r.port) for r in refs])
    if fn in RESHAPE:
        return _reshape(converter, node)
    if fn in MEAN_SUM:
        return _reduce(converter, node, MEAN_SUM[fn])
    if fn in SQUEEZE or fn in UNSQUEEZE:
        type_ = SQUEEZE.get(fn) or UNSQUEEZE[fn]
        x = converter.tensor(args[0], node)
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if not isinstance(dim, int):
            raise Unsupported("squeeze without a dim")
        if type_ == "Unsqueeze" and dim == 0 and fold_positions(converter, node, x):
            return x
        return converter.add(node, type_, {"dim": dim}, [("in", x.node, x.port)])
    if fn in TRANSPOSE:
        x = converter.tensor(args[0], node)
        params = {"dim0": arg(node, 1, "dim0"), "dim1": arg(node, 2, "dim1")}
        return converter.add(node, "Transpose", params, [("in", x.node, x.port)])
    if fn in PERMUTE:
        x = converter.tensor(args[0], node)
        dims = args[1] if len(args) == 2 and isinstance(args[1], list | tuple) else args[1:]
        dims = kwargs.get("dims", dims)
        return converter.add(node, "Permute", {"dims": list(dims)}, [("in", x.node, x.port)])
    if fn in CHUNK or fn in SPLIT:
        return _split(converter, node, "Chunk" if fn in CHUNK else "Split")
    spec = function_table().get(fn)
    if spec is None:
        raise Unsupported("no catalog node computes it")
    x = converter.tensor(args[0], node)
    rest = [converter.value(a) for a in args[1:]]
    params = function_params(fn, spec, (None, *rest), kwargs)
    return converter.add(node, spec.type, params, [("in", x.node, x.port)])


def _scalar(converter: Converter, node: fx.Node) -> Ref | None:
    """A float tensor and a constant number (x * 4, x + 1, x / 2, 1 - x, -x) → a Scale node
    (x · scale + shift); None when the call is not that (two tensors: Add / Multiply)."""
    fn, args = node.target, [converter.value(a) for a in node.args]
    meta = node.meta.get("tensor_meta")
    if node.kwargs or not getattr(getattr(meta, "dtype", None), "is_floating_point", False):
        return None  # an integer tensor times 4.0 would turn float; rounding mode, alpha
    if fn in NEG and len(args) == 1 and isinstance(args[0], Ref):
        x, scale, shift = args[0], -1.0, 0.0
    elif len(args) == 2 and sum(isinstance(a, Ref) for a in args) == 1:
        tensor_first = isinstance(args[0], Ref)
        x, c = args if tensor_first else args[::-1]
        if isinstance(c, bool) or not isinstance(c, int | float):
            return None
        if fn in ADD:
            scale, shift = 1.0, float(c)
        elif fn in MUL:
            scale, shift = float(c), 0.0
        elif fn in SUB or fn in RSUB:  # x - c, c - x (and rsub(x, c) = c - x)
            backwards = (fn in RSUB) == tensor_first
            scale, shift = (-1.0, float(c)) if backwards else (1.0, -float(c))
        elif fn in DIV and tensor_first and c != 0:
            scale, shift = 1.0 / float(c), 0.0
        else:
            return None  # c / x is not affine
    else:
        return None
    params = {k: v for k, v in (("scale", scale), ("shift", shift)) if v != (k == "scale")}
    return converter.add(node, "Scale", params, [("in", x.node, x.port)])


def _binary(converter: Converter, node: fx.Node, type_: str) -> Ref:
    args = list(node.args)
    if node.kwargs.get("alpha", 1) != 1 or len(args) != 2:
        raise Unsupported("alpha or extra arguments")
    a, b = (converter.value(x) for x in args)
    if not (isinstance(a, Ref) and isinstance(b, Ref)):
        held = next((v for v in (a, b) if isinstance(v, Attr)), None)
        if held is not None:
            raise Unsupported(f"it uses the model's tensor self.{held.name} directly")
        raise Unsupported("a tensor combined with a constant")
    return converter.add(node, type_, {}, [("in", a.node, a.port), ("in", b.node, b.port)])


def _attr(converter: Converter, node: fx.Node) -> Any:
    source, name = node.args[0], node.args[1] if len(node.args) > 1 else None
    if node.target is getattr and name == "shape":
        return Dim(converter.value(source), None)
    if node.target is getattr and name == "device":
        return DEVICE
    raise Unsupported(f"attribute {name}")


def _size(converter: Converter, node: fx.Node) -> Dim:
    if node.target != "size":
        raise Unsupported("x.dim()")
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    return Dim(converter.value(node.args[0]), dim)


def _reshape(converter: Converter, node: fx.Node) -> Ref:
    x = converter.tensor(node.args[0], node)
    shape = node.args[1:] if node.target != torch.reshape else node.args[1]
    shape = node.kwargs.get("shape", shape)
    if len(shape) == 1 and isinstance(shape[0], list | tuple):
        shape = shape[0]
    shape = [converter.value(d) for d in shape]
    first = shape[0] if shape else None
    batch_kept = (isinstance(first, Dim) and first.dim == 0) or (
        first == -1 and all(isinstance(d, int) and d >= 0 for d in shape[1:])
    )
    rest = shape[1:]
    if not batch_kept or not all(isinstance(d, int) for d in rest):
        raise Unsupported("a reshape that does not keep the batch first (x.view(x.size(0), ...))")
    out = converter.shape(node)
    if out is not None and len(out) == 2 and rest == [-1]:
        return converter.add(node, "Flatten", {}, [("in", x.node, x.port)])
    return converter.add(node, "Reshape", {"shape": rest}, [("in", x.node, x.port)])


def _reduce(converter: Converter, node: fx.Node, type_: str) -> Ref:
    x = converter.tensor(node.args[0], node)
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    keepdim = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False)
    if dim is None or set(node.kwargs) - {"dim", "keepdim"}:
        raise Unsupported("a reduction over every dim, or with a dtype")
    dims = [dim] if isinstance(dim, int) else list(dim)
    params: dict[str, Any] = {"dim": dims}
    if keepdim:
        params["keepdim"] = True
    return converter.add(node, type_, params, [("in", x.node, x.port)])


def _split(converter: Converter, node: fx.Node, type_: str) -> Any:
    x = converter.tensor(node.args[0], node)
    size = node.kwargs.get("chunks", node.kwargs.get("split_size_or_sections"))
    size = node.args[1] if size is None and len(node.args) > 1 else size
    dim = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
    if type_ == "Chunk":
        params = {"chunks": size, "dim": dim}
    else:
        out = converter.shape(node.args[0])
        if isinstance(size, int):
            if out is None:
                raise Unsupported("split sizes that depend on the input")
            total = out[dim]
            size = [size] * (total // size) + ([total % size] if total % size else [])
        params = {"split_sizes": list(size), "dim": dim}
    made = converter.g.add(converter.hint(node), type_, params, [("in", x.node, x.port)])
    return ("parts", made.id)


def _getitem(converter: Converter, node: fx.Node) -> Any:
    source, index = converter.value(node.args[0]), node.args[1]
    if isinstance(source, tuple) and source[:1] == ("parts",):
        return Ref(source[1], f"out{index}")
    if isinstance(source, Multi):
        if index != 0:
            raise Unsupported(f"element {index} of the {source.what} output")
        if source.what in ("LSTM", "GRU", "RNN"):
            made = next(n for n in converter.g.nodes if n.id == source.node)
            made.params["output"] = "sequence"
        return Ref(source.node)
    if isinstance(source, Dim):
        if source.dim is not None:
            raise Unsupported("indexing a size")
        return Dim(source.source, index)
    if isinstance(source, Ref):
        return _index(converter, node, source, index)
    raise Unsupported("indexing something torchloom does not follow")


def _index(converter: Converter, node: fx.Node, x: Ref, index: Any) -> Ref:
    """x[:, 0] → Select; x[:, 1:5] → Slice (one indexed dim; leading full slices)."""
    items = list(index) if isinstance(index, tuple) else [index]
    full = slice(None, None, None)
    dims = [i for i, item in enumerate(items) if item != full]
    if len(dims) != 1 or Ellipsis in items:
        raise Unsupported(f"the index {index!r}")
    dim, item = dims[0], items[dims[0]]
    if isinstance(item, int):
        return converter.add(node, "Select", {"dim": dim, "index": item}, [("in", x.node, x.port)])
    if isinstance(item, slice) and all(
        isinstance(v, int | None) for v in (item.start, item.stop, item.step)
    ):
        params = {"dim": dim, "start": item.start, "end": item.stop, "step": item.step or 1}
        return converter.add(node, "Slice", params, [("in", x.node, x.port)])
    raise Unsupported(f"the index {index!r}")
