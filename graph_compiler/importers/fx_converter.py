"""A traced fx graph → an ImportedGraph, one fx node at a time in the graph's order.

The Converter holds what the node converters share: the environment (each fx node → what it
stands for, fx_values.py), the model's modules by path and the graph being built. It dispatches
call_module nodes to fx_modules.py and call_function / call_method nodes to fx_functions.py; what
they cannot map (Unsupported) becomes an opaque node (fx_opaque.py).
"""

from __future__ import annotations

from typing import Any

from torch import fx

from ..names import snake
from .fx_functions import convert_function
from .fx_masks import VALUE, SizeOnly
from .fx_modules import convert_module
from .fx_opaque import describe, keep_opaque
from .fx_patterns import DEVICE
from .fx_values import Attr, Dim, Ref
from .graph import INPUT, ImportedGraph, ImportFailed
from .lookup import Unsupported


class Converter:
    def __init__(self, gm: fx.GraphModule, graph: ImportedGraph):
        self.gm, self.g = gm, graph
        self.env: dict[fx.Node, Any] = {}
        self.modules = dict(gm.named_modules())
        self.module_calls: dict[str, int] = {}

    def run(self) -> None:
        placeholders = 0
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.env[node] = self._input(node, placeholders)
                placeholders += 1
            elif node.op == "output":
                self._output(node)
            else:
                self.env[node] = self._convert(node)

    def _input(self, node: fx.Node, index: int) -> Any:
        """forward's first input is the Dataset's x; a further one only where nothing reads it
        (a graph has one input)."""
        if index == 0:
            return Ref(INPUT, "x")
        if node.users:
            users = ", ".join(sorted(u.name for u in node.users))
            raise ImportFailed(
                f"forward's input {node.target} is used ({users}): a torchloom graph has one "
                "input, the Dataset's x; fold the others into the model or leave them unused"
            )
        return None

    # --- helpers for the node converters ---------------------------------------------------

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

    def add(self, node: fx.Node, type_: str, params: dict, inputs, **kw) -> Ref:
        made = self.g.add(self.hint(node), type_, params, inputs, origin=str(node.target), **kw)
        return Ref(made.id)

    # --- dispatch --------------------------------------------------------------------------

    def _convert(self, node: fx.Node) -> Any:
        try:
            if node.op == "call_module":
                return convert_module(self, node)
            if node.op in ("call_function", "call_method"):
                return convert_function(self, node)
            if node.op == "get_attr":
                return self._attribute(node)
        except Unsupported as exc:
            return self._unsupported(node, str(exc))
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            # a pattern no converter knows (e.g. torch.cat of a split's raw output): the node
            # stays opaque like any unknown operation, never a traceback
            return self._unsupported(
                node, f"torchloom cannot convert it ({type(exc).__name__}: {exc})"
            )
        raise ImportFailed(f"{node.name}: unknown fx op {node.op}")  # pragma: no cover

    def _attribute(self, node: fx.Node) -> Any:
        """A parameter read in forward (self.cls_token) → a Parameter node holding it (its value
        carried with the weights); a buffer stays an Attr, and a tensor-taking user of it opaque."""
        path = str(node.target)
        try:
            value = self.gm.get_parameter(path)
        except AttributeError:
            return Attr(path)
        shape = [int(d) for d in value.shape]
        if not shape:
            raise Unsupported(f"the parameter self.{path} is a scalar (a Parameter has a shape)")
        made = self.g.add(
            self.hint(node), "Parameter", {"shape": shape}, [], label=path, module_path=path,
            origin=f"self.{path}",
        )  # fmt: skip
        return Ref(made.id)

    def _size_only(self, node: fx.Node) -> bool:
        """Computed from sizes, devices, buffers and such tensors only, never from data."""
        kinds = Dim | SizeOnly | Attr
        return all(
            isinstance(self.env.get(a), kinds) or self.env.get(a) == DEVICE
            for a in node.all_input_nodes
        )

    def _unsupported(self, node: fx.Node, reason: str) -> Any:
        what = describe(self, node)
        if not any(isinstance(self.env.get(a), Ref) for a in node.all_input_nodes):
            if VALUE in node.meta and node.op != "get_attr" and self._size_only(node):
                return SizeOnly(node)  # a mask candidate (fx_masks.py)
            raise ImportFailed(f"{node.name} ({what}): {reason}") from None
        return keep_opaque(self, node, what, reason)

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
