"""Structured problems found in a graph document.

Validation never raises: it collects every problem as a `GraphError` keyed by node and field,
so the editor can badge the right node and inspector field at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class BlockStep:
    """One level of the way into a block instance: Block node `node` (shown as `label`) runs
    block `block`, `repeat` times; the error is in repetition `repetition` (1-based)."""

    node: str
    block: str
    repetition: int
    repeat: int
    label: str

    def where(self) -> str:
        of = f"repetition {self.repetition} of " if self.repeat > 1 else ""
        return f"{of}{self.label} (block {self.block})"


@dataclass(frozen=True)
class GraphError:
    code: str
    message: str
    node: str | None = None
    field: str | None = None
    severity: Severity = "error"
    block: str | None = None  # set when the node lives inside a block definition
    # an error inside a Block node's instance (reported on the Block node): the failing node's
    # id in the innermost block definition, and the Block nodes leading there, outermost first,
    # so the block editor can badge the inner node
    inner_node: str | None = None
    path: tuple[BlockStep, ...] | None = None

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if v is not None or k in ("node", "field")}
        if "path" in out:  # a JSON list of {node, block, repetition, repeat, label}
            out["path"] = list(out["path"])
        return out

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
