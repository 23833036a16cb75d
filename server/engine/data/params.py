"""The Dataset node's params with their catalog defaults filled in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graph_compiler.catalog import CATALOG
from graph_compiler.catalog.spec import REQUIRED


def with_defaults(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` over the Dataset node's defaults (normalized as the compiler normalizes them)."""
    spec = CATALOG["Dataset"]
    merged = {p.name: p.check(p.default)[0] for p in spec.params if p.default is not REQUIRED}
    merged.update(params)
    return merged
