"""The declarative shape of a catalog entry.

One `NodeSpec` per node type. Everything node-specific — the palette entry, inspector widgets,
param validation, size inference, module construction, the forward expression and the emitted
code — derives from it. Adding a layer means adding one entry (and its test).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ParamKind = Literal[
    "int", "float", "bool", "choice", "str", "ints", "floats", "int_or_tuple", "code", "json"
]
PortKind = Literal["tensor", "loss", "optimizer", "scheduler"]
# A param that names a file. "dataset_id": the id of a dataset uploaded to the server (the only
# way a graph sent to the server names a file). "path": a local file path, read by headless
# `torchloom train` (a trusted command line); the server never accepts one from a client, it
# fills it from the dataset id named by the param's `path_from`.
FileRef = Literal["dataset_id", "path"]
Role = Literal[
    "layer",  # an nn.Module submodule of the model
    "op",  # an inline torch expression in forward
    "custom",  # user-written nn.Module (CustomLayer)
    "block",  # an instance of a reusable block
    "block_io",  # Input / Output placeholders inside a block definition
    "data",  # the data source: outputs x and y
    "loss",
    "optimizer",
    "scheduler",
    "settings",
]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    default: Any = REQUIRED
    description: str = ""
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    choices: tuple = ()
    length: int | None = None  # fixed length for ints/floats/int_or_tuple tuples
    nullable: bool = False  # None is a valid value (shown as "auto"/"off")
    strings: tuple[str, ...] = ()  # string spellings also accepted (e.g. padding="same")
    # Sizes that follow from the input (in_features, in_channels, ...): computed, never required.
    infer: Callable[[InferContext], Any] | None = None
    torch_arg: bool = True  # False: a torchloom setting, not passed to the torch constructor
    positional: bool = False  # emitted positionally in generated code (leading args only)
    visible_if: Mapping[str, tuple] | None = None  # UI hint: shown when another param has a value
    as_tensor: bool = False  # a float list passed to torch as a tensor (class weights)
    file_ref: FileRef | None = None  # names a file (see FileRef)
    path_from: str | None = None  # file_ref "path": the dataset-id param the server resolves
    # names another node of this type in the same graph (Linear.tie_weight → "Embedding"): the
    # editor shows the link on the canvas
    node_ref: str | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and self.infer is None

    def to_json(self) -> dict:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
        }
        if self.default is not REQUIRED:
            out["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        out["required"] = self.required
        out["inferred"] = self.infer is not None
        for key in ("min", "max", "length"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.exclusive_min:
            out["exclusive_min"] = True
        if self.choices:
            out["choices"] = list(self.choices)
        if self.strings:
            out["strings"] = list(self.strings)
        if self.nullable:
            out["nullable"] = True
        if not self.torch_arg:
            out["torch_arg"] = False
        if self.visible_if:
            out["visible_if"] = {k: list(v) for k, v in self.visible_if.items()}
        if self.file_ref:
            out["file_ref"] = self.file_ref
        if self.node_ref:
            out["node_ref"] = self.node_ref
        return out

    # --- value checking ---------------------------------------------------------------------

    def check(self, value: Any) -> tuple[Any, tuple[str, str] | None]:
        """Return (normalized value, None) or (None, (error code, what was expected))."""
        norm, problem = self._check(value)
        if problem is None:
            return norm, None
        if problem.startswith("expected a finite"):
            return None, ("param_not_finite", problem)
        if problem.startswith("must be"):
            return None, ("param_range", problem)
        if problem.startswith(("expected one of", "expected " + repr(self.length))):
            return None, ("param_choice" if self.kind == "choice" else "param_length", problem)
        if problem.startswith("each value: must"):
            return None, ("param_range", problem)
        if problem.startswith("each value: expected a finite"):
            return None, ("param_not_finite", problem)
        return None, ("param_type", problem)

    def _check(self, value: Any) -> tuple[Any, str | None]:
        if value is None:
            return (
                (None, None) if self.nullable else (None, f"expected {self.expected()}, got null")
            )
        if self.strings and isinstance(value, str):
            if value in self.strings:
                return value, None
            return None, f"expected {self.expected()}, got {value!r}"
        kind = self.kind
        if kind == "bool":
            return (value, None) if isinstance(value, bool) else (None, self._got(value))
        if kind == "int":
            return self._number(value, integer=True)
        if kind == "float":
            return self._number(value, integer=False)
        if kind == "choice":
            # `True in (1, -1)` holds in Python: a bool is a choice only among bools
            bools = any(isinstance(c, bool) for c in self.choices)
            if value in self.choices and isinstance(value, bool) == bools:
                return value, None
            options = ", ".join(repr(c) for c in self.choices)
            return None, f"expected one of {options}, got {value!r}"
        if kind in ("str", "code"):
            return (value, None) if isinstance(value, str) else (None, self._got(value))
        if kind == "json":
            return _freeze(value), None
        if kind == "int_or_tuple" and not isinstance(value, list | tuple):
            return self._number(value, integer=True)
        if kind in ("ints", "floats", "int_or_tuple"):
            if not isinstance(value, list | tuple):
                return None, self._got(value)
            if self.length is not None and len(value) != self.length:
                return None, f"expected {self.length} values, got {len(value)}"
            if not value and self.kind != "int_or_tuple" and self.default not in ((), None):
                return None, "expected at least one value, got an empty list"
            out = []
            for item in value:
                norm, problem = self._number(item, integer=kind != "floats")
                if problem:
                    return None, f"each value: {problem}"
                out.append(norm)
            return tuple(out), None
        raise AssertionError(f"unknown param kind {kind}")

    def _number(self, value: Any, *, integer: bool) -> tuple[Any, str | None]:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, self._got(value)
        if isinstance(value, float) and not math.isfinite(value):
            return None, f"expected a finite number, got {value}"
        if isinstance(value, int) and not integer:
            try:
                float(value)
            except OverflowError:
                return None, f"expected a finite number, got an integer of {len(str(value))} digits"
        if integer:
            if isinstance(value, float):
                if not value.is_integer():
                    return None, f"expected an integer, got {value}"
                value = int(value)
        else:
            value = float(value)
        if self.min is not None and (
            value < self.min or (self.exclusive_min and value == self.min)
        ):
            bound = f"> {self.min:g}" if self.exclusive_min else f">= {self.min:g}"
            return None, f"must be {bound}, got {value}"
        if self.max is not None and value > self.max:
            return None, f"must be <= {self.max:g}, got {value}"
        return value, None

    def expected(self) -> str:
        base = {
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "choice": "one of " + ", ".join(repr(c) for c in self.choices),
            "str": "a string",
            "code": "Python source text",
            "json": "a JSON value",
            "ints": "a list of integers",
            "floats": "a list of numbers",
            "int_or_tuple": f"an integer or a list of {self.length or 'n'} integers",
        }[self.kind]
        if self.strings:
            base += " or " + " / ".join(repr(s) for s in self.strings)
        return base

    def _got(self, value: Any) -> str:
        return f"expected {self.expected()}, got {_json_type(value)} {value!r}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _freeze(value: Any) -> Any:
    """Make JSON values hashable (lists → tuples, dicts → sorted item tuples) for caching."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


@dataclass(frozen=True)
class Port:
    name: str
    kind: PortKind = "tensor"
    multi: bool = False  # accepts several incoming edges (Add, Concat, optimizer's losses)
    min_edges: int = 1  # a merge needs two: Add of one tensor is a mistake, not an identity
    optional: bool = False
    ranks: tuple[int, ...] | None = None  # accepted tensor ranks, batch included
    dtype: Literal["float", "int", "bool"] | None = None
    description: str = ""
    layout: str = ""  # how accepted inputs read, e.g. "2-D (B, features)"

    def layout_text(self) -> str:
        if self.layout:
            return self.layout
        ranks = self.ranks or ()
        return " or ".join(f"{r}-D" for r in ranks)

    def to_json(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.multi:
            out["multi"] = True
        if self.optional:
            out["optional"] = True
        if self.ranks:
            out["ranks"] = list(self.ranks)
        if self.dtype:
            out["dtype"] = self.dtype
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class InferContext:
    """What a size-inference function may look at: concrete input shapes and dtypes."""

    shapes: dict[str, list[tuple[int, ...]]]
    settings: Mapping[str, Any] = field(default_factory=dict)

    def shape(self, port: str = "in", index: int = 0) -> tuple[int, ...] | None:
        got = self.shapes.get(port) or []
        return got[index] if index < len(got) else None


CallBuilder = Callable[[Mapping[str, Any], Mapping[str, list[str]], str], str]
# A check of the params against the concrete input shapes, before the node is built: None, or
# (the param at fault, what is wrong, e.g. "splits dim -1 ... odd") — reported on that field.
InputCheck = Callable[[Mapping[str, Any], InferContext], tuple[str, str] | None]


def call_module(port: str = "in") -> CallBuilder:
    def build(params: Mapping[str, Any], ins: Mapping[str, list[str]], module: str) -> str:
        return f"{module}({ins[port][0]})"

    return build


@dataclass(frozen=True)
class NodeSpec:
    type: str
    category: str
    doc: str
    role: Role
    params: tuple[Param, ...] = ()
    inputs: tuple[Port, ...] | Callable[[Mapping[str, Any]], tuple[Port, ...]] = (Port("in"),)
    outputs: tuple[Port, ...] | Callable[[Mapping[str, Any]], tuple[Port, ...]] = (Port("out"),)
    torch_class: Any = None
    fixed_args: Mapping[str, Any] = field(default_factory=dict)  # always passed (batch_first)
    call: CallBuilder | None = None  # forward expression; default: module(in)
    # False when the node may move or mix the batch dimension (Reshape, Permute, ...): shape
    # inference then runs it at two batch sizes to tell batch dims from fixed ones.
    batch_preserving: bool = True
    rank_hint: str = ""  # appended to rank errors, e.g. "add a Flatten"
    interval: Literal["epoch", "step"] | None = None  # schedulers: when step() is called
    keywords: tuple[str, ...] = ()  # extra palette search words
    # A learned tensor held as an nn.Parameter attribute instead of a submodule (Parameter):
    # init_code(params, "self.name") gives the __init__ statements that create it; the forward
    # reads the attribute itself (call returns the module reference).
    init_code: Callable[[Mapping[str, Any], str], list[str]] | None = None
    # A layer's statements right after it is built in __init__ (Embedding's init_std:
    # `nn.init.normal_(self.emb.weight, std=0.02)`), given its params and "self.name".
    post_init: Callable[[Mapping[str, Any], str], list[str]] | None = None
    # Checks of the resolved params and input shapes that torch's own error would state poorly:
    # returns GraphErrors (message without the node's name, field set), empty when all is well.
    check: Callable[[Mapping[str, Any], Mapping[str, list]], list] | None = None
    # The simpler form of `check` for one param against the concrete input shape: (field, what
    # is wrong), reported as shape_mismatch naming the input (GLU's odd dim)
    input_check: InputCheck | None = None

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None

    def file_params(self, ref: FileRef | None = None) -> tuple[Param, ...]:
        """The params that name a file (of one FileRef kind when `ref` is given)."""
        return tuple(p for p in self.params if p.file_ref and (ref is None or p.file_ref == ref))

    def input_ports(self, params: Mapping[str, Any]) -> tuple[Port, ...]:
        return self.inputs(params) if callable(self.inputs) else self.inputs

    def output_ports(self, params: Mapping[str, Any]) -> tuple[Port, ...]:
        return self.outputs(params) if callable(self.outputs) else self.outputs

    def class_path(self) -> str | None:
        """How generated code names the torch class, e.g. `nn.Linear`."""
        cls = self.torch_class
        if cls is None:
            return None
        module = cls.__module__
        if module.startswith("torch.nn.modules"):
            return f"nn.{cls.__name__}"
        if module.startswith("torch.optim.lr_scheduler"):
            return f"torch.optim.lr_scheduler.{cls.__name__}"
        if module.startswith("torch.optim"):
            return f"torch.optim.{cls.__name__}"
        return f"{module}.{cls.__name__}"

    def to_json(self) -> dict:
        defaults = {p.name: p.default for p in self.params if p.default is not REQUIRED}
        ins, outs = self.input_ports(defaults), self.output_ports(defaults)
        out: dict[str, Any] = {
            "type": self.type,
            "category": self.category,
            "doc": self.doc,
            "role": self.role,
            "params": [p.to_json() for p in self.params],
            "inputs": [p.to_json() for p in ins],
            "outputs": [p.to_json() for p in outs],
            "dynamic_ports": callable(self.inputs)
            or callable(self.outputs)
            or self.role == "block",
        }
        if self.torch_class is not None:
            out["torch_class"] = f"{self.torch_class.__module__}.{self.torch_class.__name__}"
        if self.interval:
            out["interval"] = self.interval
        if self.keywords:
            out["keywords"] = list(self.keywords)
        return out
