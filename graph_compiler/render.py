"""Python source for parameter values and constructor calls, as a careful person writes them."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Mapping
from typing import Any

from .catalog import NodeSpec


def docstring_text(text: str) -> str:
    """User text made safe inside a triple-quoted docstring: one line, no closing quotes."""
    text = " ".join(text.replace("\\", "\\\\").replace('"""', "'''").split())
    return text[:-1] + '\\"' if text.endswith('"') else text


class Raw(str):
    """A name rendered verbatim in place of a literal (block constructor arguments)."""


def value(v: Any, *, as_tensor: bool = False, collapse: bool = False) -> str:
    if isinstance(v, Raw):
        return str(v)
    if as_tensor and v is not None:
        return f"torch.tensor({value(list(v))})"
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, tuple | list):
        items = list(v)
        if collapse and items and all(i == items[0] for i in items):
            return value(items[0])
        inner = ", ".join(value(i) for i in items)
        if isinstance(v, list):
            return f"[{inner}]"
        return f"({inner},)" if len(items) == 1 else f"({inner})"
    raise TypeError(f"cannot render {v!r}")


@functools.cache
def torch_defaults(cls: type) -> dict[str, Any]:
    """Default constructor arguments of a torch class (walks the MRO past *args signatures)."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        sig = inspect.signature(init)
        named = [
            p
            for p in sig.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"
        ]
        if named:
            return {p.name: p.default for p in named if p.default is not inspect.Parameter.empty}
    return {}


def constructor(
    spec: NodeSpec,
    params: Mapping[str, Any],
    class_path: str | None = None,
    extra_positional: tuple[str, ...] = (),
) -> str:
    """`nn.Conv2d(1, 32, kernel_size=3, padding=1)`: positional leading sizes, non-defaults."""
    defaults = torch_defaults(spec.torch_class) if spec.torch_class is not None else {}
    args: list[str] = list(extra_positional)
    positional_done = False
    for p in spec.params:
        if not p.torch_arg or p.name not in params:
            continue
        v = params[p.name]
        text = value(v, as_tensor=p.as_tensor, collapse=p.kind == "int_or_tuple")
        if p.positional and not positional_done:
            args.append(text)
            continue
        positional_done = True
        if p.name in defaults and _same(defaults[p.name], v):
            continue
        args.append(f"{p.name}={text}")
    for name, v in spec.fixed_args.items():
        args.append(f"{name}={value(v)}")
    return f"{class_path or spec.class_path()}({', '.join(args)})"


def _same(default: Any, v: Any) -> bool:
    if callable(default) and isinstance(v, str):  # activation=F.relu accepts "relu"
        return getattr(default, "__name__", None) == v
    if isinstance(default, tuple | list) and isinstance(v, tuple | list):
        return tuple(default) == tuple(v)
    if isinstance(v, tuple) and v and all(i == v[0] for i in v):
        return default == v[0]
    return (type(default) is type(v) and default == v) or (
        isinstance(default, int | float)
        and isinstance(v, int | float)
        and not isinstance(default, bool)
        and not isinstance(v, bool)
        and default == v
    )
