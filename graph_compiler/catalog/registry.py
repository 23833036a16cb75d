"""The catalog: every node type by name."""

from __future__ import annotations

from .spec import NodeSpec

CATALOG: dict[str, NodeSpec] = {}

CATEGORIES = (
    "data",
    "layers",
    "activations",
    "merges",
    "losses",
    "optimizers",
    "schedulers",
    "training",
    "blocks",
    "custom",
)


def register(spec: NodeSpec) -> NodeSpec:
    if spec.type in CATALOG:
        raise ValueError(f"node type {spec.type} registered twice")
    if spec.category not in CATEGORIES:
        raise ValueError(f"{spec.type}: unknown category {spec.category}")
    names = [p.name for p in spec.params]
    if len(names) != len(set(names)):
        raise ValueError(f"{spec.type}: duplicate param names")
    CATALOG[spec.type] = spec
    return spec
