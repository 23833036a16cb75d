"""The node catalog: one declarative entry per node type (see `spec.NodeSpec`)."""

from __future__ import annotations

from . import (  # noqa: F401  (registers)
    activations,
    data,
    layers,
    losses,
    masks,
    ops,
    optim,
    structure,
    tensors,
)
from .learnable import has_params
from .registry import CATALOG, CATEGORIES, register
from .spec import REQUIRED, InferContext, NodeSpec, Param, Port

__all__ = [
    "CATALOG",
    "CATEGORIES",
    "REQUIRED",
    "InferContext",
    "NodeSpec",
    "Param",
    "Port",
    "catalog_json",
    "register",
]


def catalog_json() -> dict:
    """The catalog as served to the browser and printed by `torchloom catalog --json`."""
    from ..document import FORMAT

    return {
        "format": FORMAT,
        "categories": list(CATEGORIES),
        "nodes": [_node_json(CATALOG[name]) for name in sorted(CATALOG, key=_order)],
    }


def _node_json(spec: NodeSpec) -> dict:
    # has_params: whether Trainable / Freeze means anything for this node type
    return {**spec.to_json(), "has_params": has_params(spec)}


def _order(name: str) -> tuple[int, str]:
    return CATEGORIES.index(CATALOG[name].category), name
