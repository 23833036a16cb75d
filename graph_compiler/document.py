"""The graph document: the one place that parses JSON into typed, frozen objects.

Format `torchloom.graph/1`:

    {"format": "torchloom.graph/1", "name": "...",
     "nodes": [{"id": "fc1", "type": "Linear", "params": {...}, "position": [x, y]}],
     "edges": [{"source": "in", "source_port": "out", "target": "fc1", "target_port": "in"}],
     "blocks": {"ResBlock": {"nodes": [...], "edges": [...]}}}

Older formats are upgraded step by step by the functions in `UPGRADERS` before parsing, so a
document saved by any earlier release keeps loading.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import GraphError

FORMAT_PREFIX = "torchloom.graph/"
FORMAT_VERSION = 1
FORMAT = f"{FORMAT_PREFIX}{FORMAT_VERSION}"
# Deepest nesting of objects and lists a document may have. The examples need 6; the JSON
# serializers and the pydantic model give up somewhere past 250, so a deeper document would
# validate and then fail when stored or answered.
MAX_DEPTH = 64
_VERSION_DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII digits only: "²".isdigit() is True


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Node(_Frozen):
    id: str = Field(min_length=1, max_length=200, description="Unique id within its graph.")
    type: str = Field(
        min_length=1, description="Catalog type: a PyTorch class name such as Linear."
    )
    label: str | None = Field(default=None, description="Display name; also names the submodule.")
    params: dict[str, Any] = Field(default_factory=dict, description="Constructor arguments.")
    position: tuple[float, float] = Field(default=(0.0, 0.0), description="Canvas position [x, y].")
    trainable: bool = Field(default=True, description="False freezes this node's parameters.")

    @field_validator("position", mode="before")
    @classmethod
    def _position_from_xy(cls, value: Any) -> Any:
        # React Flow stores positions as {"x":..,"y":..}; accept both spellings.
        if isinstance(value, dict) and set(value) == {"x", "y"}:
            return (value["x"], value["y"])
        return value

    @field_validator("position")
    @classmethod
    def _finite_position(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(math.isfinite(v) for v in value):
            raise ValueError("position must be finite numbers")
        return value

    @property
    def display(self) -> str:
        return self.label or self.id


class Edge(_Frozen):
    source: str
    target: str
    source_port: str = "out"
    target_port: str = "in"


class BlockDef(_Frozen):
    description: str = ""
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()


class GraphDocument(_Frozen):
    format: str = Field(default=FORMAT, description=f"Document format; current is {FORMAT}.")
    name: str = Field(default="Untitled", max_length=200)
    description: str = ""
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()
    blocks: dict[str, BlockDef] = Field(default_factory=dict)
    ui: dict[str, Any] = Field(default_factory=dict, description="Free-form editor state.")

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json")


# --- upgrades ------------------------------------------------------------------------------------

Upgrader = Callable[[dict], dict]
# UPGRADERS[n] turns a dict of format version n into one of version n + 1.
UPGRADERS: dict[int, Upgrader] = {}


def _format_version(fmt: Any) -> int | None:
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_PREFIX):
        return None
    tail = fmt[len(FORMAT_PREFIX) :]
    return int(tail) if _VERSION_DIGITS.fullmatch(tail) else None


def upgrade(raw: dict) -> tuple[dict, list[GraphError]]:
    """Bring a raw document dict to the current format; report what could not be upgraded."""
    problems: list[GraphError] = []
    if "format" not in raw:
        problems.append(
            GraphError(
                "format_missing",
                f'the document has no "format" field; read as {FORMAT}',
                field="format",
                severity="warning",
            )
        )
        return {**raw, "format": FORMAT}, problems
    version = _format_version(raw["format"])
    if version is None:
        problems.append(
            GraphError(
                "format_unknown",
                f"unknown document format {raw['format']!r}; expected {FORMAT}",
                field="format",
            )
        )
        return raw, problems
    if version > FORMAT_VERSION:
        problems.append(
            GraphError(
                "format_too_new",
                f"this document uses format {raw['format']}, written by a newer torchloom; "
                f"this version reads up to {FORMAT}",
                field="format",
            )
        )
        return raw, problems
    while version < FORMAT_VERSION:
        step = UPGRADERS.get(version)
        if step is None:
            problems.append(
                GraphError(
                    "format_unsupported",
                    f"no upgrade from {FORMAT_PREFIX}{version} to {FORMAT}",
                    field="format",
                )
            )
            return raw, problems
        raw = step(dict(raw))
        version += 1
        raw["format"] = f"{FORMAT_PREFIX}{version}"
    return raw, problems


# --- parsing -------------------------------------------------------------------------------------


def _node_id_at(raw: Any, loc: tuple) -> tuple[str | None, str | None, str | None]:
    """Map a pydantic error location to (block, node id, field) for a friendly error."""
    block = None
    container = raw
    rest = list(loc)
    if rest[:1] == ["blocks"] and len(rest) >= 2:
        block = str(rest[1])
        container = (raw.get("blocks") or {}).get(block, {}) if isinstance(raw, dict) else {}
        rest = rest[2:]
    if len(rest) >= 2 and rest[0] in ("nodes", "edges") and isinstance(rest[1], int):
        items = container.get(rest[0]) if isinstance(container, dict) else None
        item = items[rest[1]] if isinstance(items, list) and rest[1] < len(items) else None
        field = ".".join(str(p) for p in rest[2:]) or None
        if rest[0] == "nodes":
            node_id = item.get("id") if isinstance(item, dict) else None
            return block, (str(node_id) if node_id is not None else f"nodes[{rest[1]}]"), field
        return block, None, f"edges[{rest[1]}]" + (f".{field}" if field else "")
    return block, None, ".".join(str(p) for p in rest) or None


def _text_fault(text: str) -> str | None:
    """Why a string cannot be stored, written as UTF-8 or put into Python source, if it can't."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone UTF-16 surrogate, e.g. from JSON "\ud800"
        return f"a lone surrogate U+{ord(text[exc.start]):04X} at character {exc.start}"
    if "\x00" in text:
        return f"a NUL character at character {text.index(chr(0))}"
    return None


def _shown(text: str | None) -> str | None:
    """A string safe to print and store, for naming a bad id or key in an error."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode().replace(chr(0), "\\x00")


def _structure_problems(raw: dict, limit: int = 20) -> list[GraphError]:
    """Nesting past MAX_DEPTH and strings that are not text, found without recursion."""
    problems: list[GraphError] = []
    too_deep: set[str] = set()  # one report per top-level field

    def report(code: str, loc: tuple, what: str) -> None:
        block, node, field = (_shown(s) for s in _node_id_at(raw, loc))
        where = f"{node}: " if node else ""
        problems.append(
            GraphError(code, f"{where}{field or 'document'} {what}", node, field, block=block)
        )

    stack: list[tuple[tuple, Any]] = [((), raw)]
    while stack and len(problems) < limit:
        loc, item = stack.pop()
        if isinstance(item, str):
            fault = _text_fault(item)
            if fault:
                report("invalid_text", loc, f"has {fault}")
            continue
        if not isinstance(item, dict | list):
            continue
        if len(loc) >= MAX_DEPTH:
            if loc[0] not in too_deep:
                too_deep.add(loc[0])
                # named down to the node's param (or the top-level field), not 64 keys deep
                report(
                    "document_too_deep",
                    loc[: {"blocks": 6, "nodes": 4, "edges": 2}.get(loc[0], 1)],
                    f"nests objects and lists more than {MAX_DEPTH} levels deep; "
                    f"a document allows at most {MAX_DEPTH}",
                )
            continue
        if isinstance(item, dict):
            for key, child in item.items():
                fault = _text_fault(key) if isinstance(key, str) else None
                if fault:
                    report("invalid_text", loc, f"has a key with {fault}")
                stack.append(((*loc, key), child))
        else:
            stack.extend(((*loc, i), child) for i, child in enumerate(item))
    return problems


def parse_document(data: Any) -> tuple[GraphDocument | None, list[GraphError]]:
    """Parse JSON text, bytes or a dict. Never raises: returns (document or None, problems)."""
    if isinstance(data, GraphDocument):
        return data, []
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, huge numbers
            return None, [GraphError("invalid_json", f"the document is not valid JSON: {exc}")]
    if not isinstance(data, dict):
        kind = type(data).__name__
        return None, [
            GraphError("invalid_document", f"a graph document is a JSON object, not {kind}")
        ]
    structure = _structure_problems(data)
    if structure:
        return None, structure
    raw, problems = upgrade(data)
    if any(p.severity == "error" for p in problems):
        return None, problems
    try:
        return GraphDocument.model_validate(raw), problems
    except ValidationError as exc:
        for err in exc.errors():
            block, node, field = _node_id_at(raw, tuple(err["loc"]))
            where = f"{node}: " if node else ""
            what = field or "document"
            problems.append(
                GraphError(
                    "invalid_document",
                    f"{where}{what}: {err['msg']}",
                    node=node,
                    field=field,
                    block=block,
                )
            )
        return None, problems


def json_schema() -> dict:
    schema = GraphDocument.model_json_schema()
    schema["$id"] = f"https://torchloom.dev/schema/{FORMAT}.json"
    schema["title"] = f"torchloom graph document ({FORMAT})"
    return schema
