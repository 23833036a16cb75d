"""Structured problems found in a graph document.

Validation never raises: it collects every problem as a `GraphError` keyed by node and field,
so the editor can badge the right node and inspector field at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class GraphError:
    code: str
    message: str
    node: str | None = None
    field: str | None = None
    severity: Severity = "error"
    block: str | None = None  # set when the node lives inside a block definition

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("node", "field")}

    def __str__(self) -> str:
        where = ""
        if self.block:
            where += f"[block {self.block}] "
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}{prefix}{self.message}"


class GraphCompileError(Exception):
    """Raised by code generation / module building when the document has errors."""

    def __init__(self, errors: list[GraphError]):
        self.errors = [e for e in errors if e.severity == "error"]
        lines = "\n".join(f"  - {e}" for e in self.errors[:20])
        more = f"\n  … and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(f"the graph has {len(self.errors)} error(s):\n{lines}{more}")
