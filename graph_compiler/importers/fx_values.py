"""What a traced fx node stands for while the graph is converted: the converter's environment
maps each fx node to one of these (or to a plain Python value such as an int or a slice).

Only a Ref is a tensor a catalog node can take as input; the others are remembered so that the
fx node that reads them (x.size(0) in a view, [0] of an LSTM's tuple) can be converted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import fx


def arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    """An fx node's argument, given by position or by keyword."""
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
