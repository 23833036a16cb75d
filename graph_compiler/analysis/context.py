"""The state the passes share: the document, the errors recorded so far, and what each pass leaves
for the ones after it (checked scopes, the Dataset, settings, the inferred top level)."""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..datasets import DataInfo
from ..document import GraphDocument
from ..errors import GraphError
from .result import Analysis, Scope, ScopeResult


@dataclass
class AnalysisContext:
    doc: GraphDocument
    errors: list[GraphError] = field(default_factory=list)
    allow_custom_code: bool = False
    model_only: bool = False  # no loss / optimizer required (see pipeline.analyze)
    # structure: the checked block definitions and top level
    blocks: dict[str, Scope] = field(default_factory=dict)
    top: Scope | None = None
    # blocks: definitions that lead back to themselves
    recursive: set[str] = field(default_factory=set)
    # wiring: the Dataset node, what its data looks like, the resolved Training settings
    data_node: str | None = None
    data: DataInfo | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    # model size: over MAX_EXPANDED_NODES or MAX_BLOCK_DEPTH, blocks are not inferred at all
    too_large: bool = False
    # inference: the top level's results, every block instance, instances by their inputs
    result: ScopeResult | None = None
    instances: dict[str, list[ScopeResult]] = field(default_factory=lambda: defaultdict(list))
    memo: dict[tuple, ScopeResult | GraphError] = field(default_factory=dict)
    # errors per (block, node): a node with errors is not inferred
    failed: dict[tuple[str | None, str | None], int] = field(
        default_factory=lambda: defaultdict(int)
    )

    def error(
        self,
        code: str,
        message: str,
        node: str | None = None,
        fld: str | None = None,
        block: str | None = None,
        severity: str = "error",
    ) -> None:
        self.errors.append(GraphError(code, message, node, fld, severity, block))
        if severity == "error":
            self.failed[(block, node)] += 1

    def has_node_errors(self, scope: Scope, node_id: str) -> bool:
        return self.failed.get((scope.block, node_id), 0) > 0

    def has_errors(self) -> bool:
        return any(e.severity == "error" for e in self.errors)

    def analysis(self) -> Analysis:
        return Analysis(
            self.doc,
            self.errors,
            self.result,
            self.blocks,
            dict(self.instances),
            self.settings,
            self.data,
            self.data_node,
        )


def suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
