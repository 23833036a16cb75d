"""The fallback for what has no catalog equivalent: an opaque node that names the fx node it
stands for (its module class, function or method) and why it could not be mapped, so that the
user sees what to rewrite. A node without a tensor input cannot be kept even opaquely.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import fx

from .fx_values import Ref
from .graph import ImportFailed

if TYPE_CHECKING:
    from .fx_converter import Converter


def describe(converter: Converter, node: fx.Node) -> str:
    """What the fx node calls, as the opaque node's label and the warning name it."""
    if node.op == "call_module":
        m = converter.modules[node.target]
        return f"{node.target} ({type(m).__module__}.{type(m).__qualname__})"
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "get_attr":
        return f"self.{node.target}"
    target = node.target
    return f"{getattr(target, '__module__', '') or ''}.{getattr(target, '__name__', target)}"


def keep_opaque(converter: Converter, node: fx.Node, what: str, why: str) -> Ref:
    """An opaque node taking the fx node's tensor inputs (ImportFailed when it has none)."""
    tensors = [a for a in node.all_input_nodes if isinstance(converter.env.get(a), Ref)]
    refs = [(converter.env[a].node, converter.env[a].port) for a in tensors]
    if not refs:
        raise ImportFailed(f"{node.name} ({what}): {why}; it takes no tensor input")
    made = converter.g.add_opaque(converter.hint(node), what, refs, why, expression(node))
    return Ref(made.id)


def expression(node: fx.Node) -> str:
    """The Python source line the fx node was traced from (fx_tracing.py records it), else the
    call as fx spells it (`expand(cls_token, getitem, -1, -1)`)."""
    if node.meta.get("source"):
        return node.meta["source"]
    args = [str(a) for a in node.args] + [f"{k}={v}" for k, v in node.kwargs.items()]
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return f"{name}({', '.join(args)})"
