"""`torchloom import-onnx model.onnx`: an ONNX graph's common ops as catalog nodes, with weights.

Supported: Gemm and MatMul (+ Add of a bias) with constant weights → Linear; Conv → Conv1d/2d/3d;
ConvTranspose → ConvTranspose1d/2d/3d; MaxPool / AveragePool (1-3 D) / GlobalAveragePool; Split;
GlobalMaxPool and a kept ReduceMax over the spatial dims → AdaptiveMaxPool1d/2d(1); HardSigmoid;
BatchNormalization; LayerNormalization; torch's decomposed nn.RMSNorm (onnx_norms.py); PaddingMask
and MaskedPool (onnx_masks.py); the activations whose name is a catalog layer's (Relu → ReLU,
LeakyRelu, Gelu, Softmax, ...); Clip → ReLU6 / Hardtanh / ReLU; Add / Mul / Concat / MatMul of two
tensors; Reshape / Flatten; Transpose / Squeeze / Unsqueeze / Slice / Gather / Expand
(onnx_layout.py: also time-major values); Gather of a constant table → Embedding (a Linear with its
table as weight tied to it, onnx_ties.py); LSTM / GRU / RNN (onnx_recurrent.py); an initializer
expanded to the batch or added to activations → Parameter, Range of a dim of a shape → PositionIds
(onnx_tensors.py); ReduceMean; Identity / Dropout (inference).
Nodes whose inputs are all constants (weight slicing, Range) are evaluated here. Shape
computations that only feed a Reshape or an Expand (Shape → Gather → Concat, as exporters
write for a dynamic batch) are dropped: the Reshape keeps the batch and takes the per-sample
shape that shape inference gives. Anything else is listed, every op at once, in the error.
External data is read only from files inside the model's folder.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..catalog import CATALOG
from ..names import snake
from .graph import INPUT, ImportedGraph, ImportFailed
from .lookup import Unsupported, normalized
from .onnx_attention import EncoderMatch, find_encoder_layers
from .onnx_files import load as _load
from .onnx_layers import LayerOps
from .onnx_layout import LayoutOps
from .onnx_masks import MaskOps, find_masked_pools
from .onnx_norms import find_rms_norms
from .onnx_recurrent import RecurrentOps
from .onnx_scalars import ScalarOps
from .onnx_tensors import TensorOps
from .onnx_ties import tie_heads

ALIASES = {"alpha": ("negative_slope", "alpha"), "axis": ("dim",)}  # ONNX attribute → param
# inputs that are shapes or indices, never data (a batch-dependent shape is computed from x)
SHAPE_INPUTS = {
    "Reshape": (1,),
    "ReduceMean": (1,),
    "ReduceMax": (1,),
    "Squeeze": (1,),
    "Unsqueeze": (1,),
    "Expand": (1,),
    "Slice": (1, 2, 3, 4),
    "ConstantOfShape": (0,),
    "Clip": (1, 2),
    "Range": (0, 1, 2),
}
# ops that turn all-zero values (recurrent initial states) into all-zero values
KEEP_ZEROS = {"Squeeze", "Unsqueeze", "Slice", "Split", "Reshape", "Transpose", "Gather", "Concat"}
NOT_FOLDED = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike"}


def _input_dtype(value, onnx) -> str:
    """float32, or int64 for token ids (int32 too: an Embedding takes either)."""
    elem = value.type.tensor_type.elem_type
    return "int64" if elem in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) else "float32"


def import_onnx(path: Path, name: str | None = None):
    """(the graph, a state_dict keyed `<node id>.<param>` for carry_weights)."""
    import onnx
    from onnx import numpy_helper

    model = _load(path)
    g = model.graph
    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    shapes = _shapes(model)
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise ImportFailed(
            f"{path.name} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); a "
            "torchloom graph has one, x"
        )
    in_shape = shapes.get(inputs[0].name)
    if in_shape is None or len(in_shape) < 2 or not all(isinstance(d, int) for d in in_shape[1:]):
        raise ImportFailed(
            f"input {inputs[0].name} needs a known per-sample shape (batch first), got {in_shape}"
        )
    graph = ImportedGraph(
        name or g.name or path.stem, (1, *in_shape[1:]), _input_dtype(inputs[0], onnx)
    )
    uses = Counter(n for node in g.node for n in node.input)
    uses.update(o.name for o in g.output)
    converter = _Converter(graph, consts, shapes, uses)
    converter.values[inputs[0].name] = (INPUT, "x")
    converter.batch_dim = in_shape[0]
    nodes = list(g.node)
    converter.producer = {out: node for node in nodes for out in node.output}
    constant = set()  # Constant nodes and nodes of constants only: values, not graph nodes
    for index, node in enumerate(nodes):
        if node.op_type == "Constant":
            attr = {a.name: a for a in node.attribute}
            if "value" in attr:
                consts[node.output[0]] = numpy_helper.to_array(attr["value"].t)
            constant.add(index)
        elif _fold(node, consts):
            constant.add(index)
    needed = _data_nodes(nodes, [o.name for o in g.output])
    outputs = {o.name for o in g.output}
    layers = find_encoder_layers(nodes, consts, shapes, outputs, model.opset_import)
    taken = {i for m in layers for i in m.region}
    layers += [m for m in find_rms_norms(nodes, consts, shapes, outputs) if not m.region & taken]
    taken = {i for m in layers for i in m.region}
    layers += [m for m in find_masked_pools(nodes, consts, outputs) if not m.region & taken]
    starts = {m.start: m for m in layers}
    inside = {i for m in layers for i in m.region}
    unsupported: dict[str, list[str]] = {}
    failed: set[str] = set()  # values downstream of an unsupported op: not reported again
    for index, node in enumerate(nodes):
        if index in starts:
            converter.region(nodes[index], starts[index])
            continue
        if index in constant or index in inside or index not in needed:
            continue
        where = node.name or node.output[0]
        if failed & set(node.input):  # after an unsupported op: only unknown op types count
            failed.update(node.output)
            if not converter.knows(node.op_type):
                unsupported.setdefault(node.op_type, []).append(f"{where}: no catalog node")
            continue
        try:
            converter.convert(node, onnx.helper)
        except Unsupported as exc:
            unsupported.setdefault(node.op_type, []).append(f"{where}: {exc}")
            failed.update(node.output)
    if unsupported:
        listed = [
            f"{op} ({len(found)} node{'s' if len(found) > 1 else ''}, e.g. {found[0]})"
            for op, found in unsupported.items()
        ]
        raise ImportFailed(
            f"{path.name} uses ops that import-onnx does not support: " + "; ".join(listed)
        )
    for out in g.output:
        try:
            ref = converter.tensor(out.name) if out.name in converter.values else None
        except Unsupported as exc:
            raise ImportFailed(f"the output {out.name}: {exc}") from None
        if ref is None or ref[0] == INPUT:
            raise ImportFailed(f"the output {out.name} is not computed from the input")
        shape = shapes.get(out.name)
        if shape is None:
            raise ImportFailed(f"no shape known for the output {out.name}")
        graph.outputs.append((*ref, (1, *shape[1:])))
    graph.notes.insert(0, f"Imported from the ONNX model {path.name}.")
    tie_heads(graph, converter.state)
    return graph, converter.state


def _shapes(model) -> dict[str, tuple]:
    found: dict[str, tuple] = {}
    for info in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = info.type.tensor_type.shape.dim
        found[info.name] = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims
        )
    return found


def _fold(node, consts: dict) -> bool:
    """A node whose inputs are all constants (weights sliced and re-joined, a Range) becomes a
    constant, computed with onnx's reference implementation."""
    from onnx.reference import ReferenceEvaluator

    names = [n for n in node.input if n]
    if not names or node.op_type in NOT_FOLDED or not all(n in consts for n in names):
        return False
    try:
        results = ReferenceEvaluator(node).run(None, {n: consts[n] for n in names})
    except Exception:
        return False
    for name, value in zip(node.output, results, strict=False):
        if name:
            consts[name] = np.asarray(value)
    return True


def _data_nodes(nodes: list, outputs: list[str]) -> set[int]:
    """Indices of the nodes whose outputs reach a graph output as data (not only as a shape)."""
    producer = {out: i for i, node in enumerate(nodes) for out in node.output}
    seen: set[int] = set()
    stack = list(outputs)
    while stack:
        index = producer.get(stack.pop())
        if index is None or index in seen:
            continue
        seen.add(index)
        node = nodes[index]
        skip = SHAPE_INPUTS.get(node.op_type, ())
        stack += [name for i, name in enumerate(node.input) if name and i not in skip]
    return seen


class _Converter(LayerOps, LayoutOps, MaskOps, RecurrentOps, ScalarOps, TensorOps):
    def __init__(self, graph: ImportedGraph, consts: dict, shapes: dict, uses: Counter):
        self.g, self.consts, self.shapes, self.uses = graph, consts, shapes, uses
        self.values: dict[str, tuple[str, str]] = {}  # ONNX value → (node, port)
        self.layout: dict[str, list] = {}  # ONNX value → its axes, when not batch-first
        self.zeros: set[str] = set()  # values known to be all zeros (initial states)
        self.state: dict[str, torch.Tensor] = {}
        self.pending: dict[str, Any] = {}  # value → how to make it when data reads it
        self.learned: dict[str, tuple[str, str]] = {}  # initializer → its Parameter node
        self.positions: dict[str, Any] = {}  # Range value → its PositionIds node
        self.producer: dict[str, Any] = {}
        self.batch_dim: Any = None  # the input's dim 0 (a symbol, or the exported size)

    def tensor_raw(self, name: str) -> tuple[str, str]:
        """The node and port computing `name`, whatever its axes (see onnx_layout.py)."""
        ref = self.values.get(name) or self.pending_value(name)
        if ref is None:
            raise Unsupported(f"its input {name} is a constant, not a tensor from the input")
        return ref

    def tensor(self, name: str) -> tuple[str, str]:
        """The batch-first tensor of `name`, Permute / Unsqueeze nodes written if needed."""
        ref = self.tensor_raw(name)
        if name in self.layout:
            ref = self.materialize(name, ref, None)
        return ref

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name) if name else None

    def emit(self, node, type_: str, params: dict, inputs, weights: dict | None = None) -> None:
        made = self._add(node, type_, params, inputs, weights)
        self.values[node.output[0]] = (made.id, "out")
        self.layout.pop(node.output[0], None)

    def emit_on(self, node, type_: str, params: dict, ref, suffix: str | None = None):
        """A one-input node on `ref`, for a step of an ONNX op; its (node, port)."""
        made = self._add(node, type_, params, [("in", ref)], None, suffix)
        return (made.id, "out")

    def _add(self, node, type_, params, inputs, weights, suffix: str | None = None):
        inputs = self._distinct(node, inputs)
        spec = CATALOG[type_]
        clean = {}
        for key, value in params.items():
            value = normalized(spec, key, value)
            p = spec.param(key)
            if p is not None and p.default is not None and value == p.default:
                continue
            clean[key] = value
        base = (node.name or node.output[0]) if node is not None else type_
        hint = snake(f"{base}_{suffix}" if suffix else base)
        made = self.g.add(
            hint,
            type_,
            clean,
            [(port, src, src_port) for port, (src, src_port) in inputs],
            label=(node.name or None) if node is not None and not suffix else None,
            module_path=None,
            origin=node.op_type if node is not None else type_,
        )
        if weights:
            made.module_path = made.id
            for key, value in weights.items():
                self.state[f"{made.id}.{key}"] = torch.from_numpy(np.array(value, copy=True))
        return made

    def _distinct(self, node, inputs: list) -> list:
        """x * x: a graph document holds one edge per (source, target, port), so a second use
        of the same tensor by one node goes through an Identity node of its own."""
        seen, out = set(), []
        for port, ref in inputs:
            if (port, ref) in seen:
                ref = self.emit_on(node, "Identity", {}, ref, suffix="again")
            seen.add((port, ref))
            out.append((port, ref))
        return out

    def region(self, first, match: EncoderMatch) -> None:
        """A region found as one layer: an nn.TransformerEncoderLayer onnx_attention.py proved,
        an nn.RMSNorm (onnx_norms.py), a MaskedPool (onnx_masks.py)."""
        x = self.tensor(match.source)
        inputs = [("in", x), *((port, self.tensor(v)) for port, v in match.more.items())]
        made = self._add(first, match.type_, match.params, inputs, match.weights)
        self.values[match.output] = (made.id, "out")

    def knows(self, op_type: str) -> bool:
        return hasattr(self, f"_op_{op_type}") or _activation(op_type) is not None

    def alias(self, node) -> None:
        self.values[node.output[0]] = self.values[node.input[0]]

    def convert(self, node, helper) -> None:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        op = node.op_type
        data = [n for n in node.input[:1] if n] if op != "Concat" else [n for n in node.input if n]
        if op in KEEP_ZEROS and data and all(n in self.zeros for n in data):
            self.zeros.update(o for o in node.output if o)  # an initial state, split or reshaped
            return
        handler = getattr(self, f"_op_{op}", None)
        if handler is not None:
            handler(node, attrs)
            return
        spec = _activation(op)
        if spec is None:
            raise Unsupported("no catalog node")
        params = {}
        for key, value in attrs.items():
            target = next((n for n in ALIASES.get(key, (key,)) if spec.param(n)), None)
            if target is None:
                raise Unsupported(f"attribute {key} has no catalog param")
            params[target] = value.decode() if isinstance(value, bytes) else value
        if op in ("Softmax", "LogSoftmax") and "dim" not in params:
            params["dim"] = -1  # the ONNX default since opset 13
        x = self.tensor(node.input[0])
        self.emit(node, spec.type, params, [("in", x)])

    # --- ops -----------------------------------------------------------------------------

    def _op_Identity(self, node, attrs) -> None:
        self.alias(node)

    _op_Dropout = _op_Identity

    def _op_Gemm(self, node, attrs) -> None:
        if (
            attrs.get("transA", 0)
            or attrs.get("alpha", 1.0) != 1.0
            or attrs.get("beta", 1.0) != 1.0
        ):
            raise Unsupported("transA, alpha or beta other than the defaults")
        w = self.const(node.input[1])
        if w is None:
            raise Unsupported("a weight that is not a constant")
        weight = w if attrs.get("transB", 0) else w.T
        bias = self.const(node.input[2]) if len(node.input) > 2 else None
        self._linear(node, weight, bias)

    def _linear(self, node, weight: np.ndarray, bias: np.ndarray | None) -> None:
        x = self.tensor(node.input[0])
        params: dict[str, Any] = {"out_features": int(weight.shape[0])}
        weights = {"weight": weight}
        if bias is None:
            params["bias"] = False
        else:
            weights["bias"] = np.broadcast_to(bias, (weight.shape[0],))
        self.emit(node, "Linear", params, [("in", x)], weights)

    def _op_MatMul(self, node, attrs) -> None:
        w = self.const(node.input[1])
        if w is None:
            a, b = self.tensor(node.input[0]), self.tensor(node.input[1])
            self.emit(node, "MatMul", {}, [("a", a), ("b", b)])
            return
        if w.ndim != 2:
            raise Unsupported("a constant operand that is not a matrix")
        self._linear(node, w.T, None)

    def _op_Add(self, node, attrs) -> None:
        a = self.values.get(node.input[0])
        bias = self.const(node.input[1])
        if bias is not None and a is not None:
            made = next((n for n in self.g.nodes if n.id == a[0]), None)
            state_key = f"{a[0]}.bias"
            if (
                made is not None
                and made.type == "Linear"
                and made.params.get("bias") is False
                and bias.size == made.params["out_features"]
                and self.uses[node.input[0]] == 1
            ):  # MatMul + Add: one Linear with a bias
                made.params.pop("bias")
                self.state[state_key] = torch.from_numpy(np.array(bias.reshape(-1), copy=True))
                self.values[node.output[0]] = a
                return
        if self.scalar_affine(node):  # x + 1
            return
        for constant in (1, 0):
            if self.const(node.input[constant]) is not None:
                if self.add_learned(node, constant):
                    return
                raise Unsupported("adding a constant")
        self.emit(
            node,
            "Add",
            {},
            [("in", self.tensor(node.input[0])), ("in", self.tensor(node.input[1]))],
        )

    def _op_Mul(self, node, attrs) -> None:
        if self.scalar_affine(node):  # x * 4
            return
        self.emit(
            node,
            "Multiply",
            {},
            [("in", self.tensor(node.input[0])), ("in", self.tensor(node.input[1]))],
        )

    def _op_Concat(self, node, attrs) -> None:
        refs = [("in", self.tensor(n)) for n in node.input]
        self.emit(node, "Concat", {"dim": attrs.get("axis", 1)}, refs)

    def _op_Flatten(self, node, attrs) -> None:
        if attrs.get("axis", 1) != 1:
            raise Unsupported("an axis other than 1 (the batch stays first)")
        self.emit(node, "Flatten", {}, [("in", self.tensor(node.input[0]))])

    def _op_Reshape(self, node, attrs) -> None:
        src, out = self.shapes.get(node.input[0]), self.shapes.get(node.output[0])
        if node.input[0] in self.layout and self.lazy_reshape(node):
            return
        if not src or not out or not all(isinstance(d, int) for d in out[1:]):
            raise Unsupported("an output shape that shape inference does not know")
        if out[0] != src[0]:
            raise Unsupported("a reshape that moves the batch dimension")
        x = self.tensor(node.input[0])
        if len(out) == 2 and len(src) > 2:
            self.emit(node, "Flatten", {}, [("in", x)])
        else:
            self.emit(node, "Reshape", {"shape": list(out[1:])}, [("in", x)])

    def _op_ReduceMean(self, node, attrs) -> None:
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1:
            found = self.const(node.input[1])
            axes = None if found is None else [int(a) for a in found.reshape(-1)]
        if not axes:
            raise Unsupported("a mean over every dim")
        params = {"dim": axes, "keepdim": bool(attrs.get("keepdims", 1))}
        self.emit(node, "Mean", params, [("in", self.tensor(node.input[0]))])


def _activation(op_type: str):
    """The catalog activation named like the ONNX op (Relu → ReLU, LeakyRelu → LeakyReLU)."""
    wanted = op_type.lower()
    for spec in CATALOG.values():
        if spec.category == "activations" and spec.type.lower() == wanted:
            return spec
    return None
