"""User-written layers and losses: the class source, checked before it is ever executed.

The compiler can build these; whether they may run is a server policy (off by default). The same
source is what the generated model.py contains, so what is inferred is what trains.
"""

from __future__ import annotations

import ast
import keyword
import math
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .render import docstring_text

INITS = {
    "zeros": "torch.zeros({shape})",
    "ones": "torch.ones({shape})",
    "normal": "torch.randn({shape}) * 0.02",
    "uniform": "torch.rand({shape}) - 0.5",
}


class CustomCodeError(Exception):
    def __init__(self, message: str, field: str = "code"):
        super().__init__(message)
        self.field = field


def _decls(params: Mapping[str, Any]) -> list[tuple[str, tuple[int, ...], str]]:
    raw = params.get("parameters") or ()
    out = []
    seen = set()
    for i, item in enumerate(raw):
        item = (
            dict(item)
            if isinstance(item, tuple | list)
            and all(isinstance(kv, tuple) and len(kv) == 2 for kv in item)
            else item
        )
        if not isinstance(item, dict):
            raise CustomCodeError(
                f"parameters[{i}] must be an object with name, shape, init", "parameters"
            )
        name, shape, init = item.get("name"), item.get("shape"), item.get("init", "normal")
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise CustomCodeError(
                f"parameters[{i}].name {name!r} is not a valid Python name", "parameters"
            )
        if name in seen or hasattr(nn.Module, name):
            raise CustomCodeError(f"parameters[{i}].name {name!r} is already used", "parameters")
        seen.add(name)
        if (
            not isinstance(shape, tuple | list)
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise CustomCodeError(
                f"parameters[{i}].shape must be a list of positive integers", "parameters"
            )
        if init not in INITS:
            raise CustomCodeError(
                f"parameters[{i}].init must be one of {', '.join(INITS)}", "parameters"
            )
        out.append((name, tuple(shape), init))
    return out


def _check_body(code: str, args: list[str]) -> None:
    source = f"def forward(self, {', '.join(args)}):\n" + textwrap.indent(code or "pass", "    ")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        line = (exc.lineno or 2) - 1
        raise CustomCodeError(f"line {line} of the code: {exc.msg}") from None
    if not any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(tree)):
        raise CustomCodeError("the code must return a tensor (add a return statement)")


def custom_class_source(
    class_name: str, params: Mapping[str, Any], args: list[str], doc: str
) -> str:
    """The nn.Module class for a CustomLayer/CustomLoss, as it appears in model.py."""
    for a in args:
        if not isinstance(a, str) or not a.isidentifier() or keyword.iskeyword(a) or a == "self":
            raise CustomCodeError(f"input name {a!r} is not a valid Python name", "inputs")
    if len(set(args)) != len(args):
        raise CustomCodeError("input names must be different", "inputs")
    decls = _decls(params)
    code = params.get("code") or ""
    _check_body(code, args)
    lines = [f"class {class_name}(nn.Module):", f'    """{docstring_text(doc)}"""', ""]
    if decls:
        lines += ["    def __init__(self):", "        super().__init__()"]
        for name, shape, init in decls:
            dims = ", ".join(str(d) for d in shape)
            lines.append(f"        self.{name} = nn.Parameter({INITS[init].format(shape=dims)})")
        lines.append("")
    lines.append(f"    def forward(self, {', '.join(args)}):")
    lines += textwrap.indent(textwrap.dedent(code).strip("\n"), "        ").splitlines()
    return "\n".join(lines) + "\n"


def as_layer_params(node_type: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
    """A CustomLoss is built as a layer whose forward takes (input, target) and has no weights."""
    if node_type == "CustomLoss":
        return {"code": params["code"], "parameters": (), "inputs": ("input", "target")}
    return params


def custom_layer_factory(params: Mapping[str, Any]) -> Callable[[], nn.Module]:
    """Check the user code, then return a constructor for its module (runs user code)."""
    args = [str(a) for a in (params.get("inputs") or ("x",))]
    source = custom_class_source("CustomModule", params, args, "User code.")
    namespace: dict[str, Any] = {"torch": torch, "nn": nn, "F": F, "math": math}
    try:
        exec(compile(source, "<custom layer>", "exec"), namespace)
    except Exception as exc:  # a class body that fails to define
        raise CustomCodeError(f"the code does not define a module: {exc}") from None
    return namespace["CustomModule"]


CUSTOM_TYPES = ("CustomLayer", "CustomLoss")


def has_custom_code(document: Mapping[str, Any]) -> bool:
    """Whether a raw graph document holds user code anywhere: top level or inside a block."""

    def holds(nodes) -> bool:
        return any(isinstance(n, Mapping) and n.get("type") in CUSTOM_TYPES for n in nodes or ())

    blocks = document.get("blocks") or {}
    return holds(document.get("nodes")) or any(
        holds(b.get("nodes")) for b in blocks.values() if isinstance(b, Mapping)
    )
