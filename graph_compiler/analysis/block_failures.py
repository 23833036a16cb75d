"""An error inside a Block node's instance, told on the Block node in the user's terms: the
inner node, which repetition of which Block node (all the way down through nested blocks), and
the inner node id with the block path for the block editor's badge. Before, the message was
"blk (block down, conv2d1): ..." without the repetition, and nothing pointed inside."""

from __future__ import annotations

from dataclasses import replace

from ..errors import BlockStep, GraphError
from .context import AnalysisContext
from .result import Scope


def instance_failure(
    ctx: AnalysisContext, inner: Scope, step: BlockStep, failure: GraphError, block: str | None
) -> GraphError:
    """`failure` as the inner scope `inner` reported it (itself possibly a nested Block node's
    instance failure), reported on `step`'s Block node in scope `block`."""
    if failure.path and failure.inner_node is not None:
        innermost = ctx.blocks.get(failure.path[-1].block)
        label = _label(innermost, failure.inner_node)
        prefix = f"{label} in {where(failure.path)}"
        tail = failure.message[len(prefix) :] if failure.message.startswith(prefix) else ""
        inner_node, path = failure.inner_node, (step, *failure.path)
    else:
        label = _label(inner, failure.node) if failure.node else step.block
        message = failure.message
        tail = (
            message[len(label) :]
            if message.startswith(f"{label}:") or message.startswith(f"{label} gets ")
            else f": {message}"
        )
        inner_node, path = failure.node, (step,)
    return replace(
        failure,
        message=f"{label} in {where(path)}{tail}",
        node=step.node,
        field=None,
        block=block,
        inner_node=inner_node,
        path=path,
    )


def where(path: tuple[BlockStep, ...]) -> str:
    """Innermost first: "repetition 1 of inner (block down), in repetition 2 of blk (block
    outer)"."""
    return ", in ".join(s.where() for s in reversed(path))


def _label(scope: Scope | None, node_id: str) -> str:
    node = scope.nodes.get(node_id) if scope is not None else None
    return node.display if node is not None else node_id
