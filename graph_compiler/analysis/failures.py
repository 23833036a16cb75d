"""A node whose inference failed, told in the user's terms: which inputs from which nodes."""

from __future__ import annotations

import re

from ..catalog import NodeSpec
from ..document import Edge, Node
from ..infer import NodeFailure
from ..shapes import TensorInfo
from .context import AnalysisContext
from .result import Scope


def report_failure(
    ctx: AnalysisContext,
    scope: Scope,
    node: Node,
    spec: NodeSpec,
    inputs: dict[str, list[TensorInfo]],
    exc: NodeFailure,
) -> None:
    if exc.stage == "batch":
        ctx.error(
            "batch_dependent",
            f"{node.display}: {spec.type} {exc} — it must not slice, "
            "split or reduce dim 0, the batch",
            node.id,
            None,
            scope.block,
        )
        return
    if exc.stage == "build":
        ctx.error(
            "build_failed",
            f"{node.display}: {spec.type} cannot be built with these parameters: {exc}",
            node.id,
            None,
            scope.block,
        )
        return
    only = [i for infos in inputs.values() for i in infos]
    kernel = kernel_too_large(str(exc), only[0]) if len(only) == 1 else None
    if kernel is not None:
        ctx.error(
            "shape_mismatch", f"{node.display} gets {only[0]}: {kernel}", node.id, None, scope.block
        )
        return
    parts = []
    for port in scope.in_ports[node.id]:
        for edge, info in zip(
            scope.incoming[node.id].get(port.name, []), inputs.get(port.name, []), strict=False
        ):
            parts.append(f"{info} from {source_text(scope, edge)}")
    verb = "combine" if len(parts) > 1 else "take"
    ctx.error(
        "shape_mismatch",
        f"{node.display}: {spec.type} cannot {verb} {' and '.join(parts) or 'its input'}: {exc}",
        node.id,
        None,
        scope.block,
    )


def source_text(scope: Scope, edge: Edge) -> str:
    node = scope.nodes[edge.source]
    outs = scope.out_ports.get(edge.source, ())
    return node.display if len(outs) <= 1 else f"{node.display}.{edge.source_port}"


_KERNEL = re.compile(
    r"Calculated padded input size per channel: \(([\d x]+)\)\. "
    r"Kernel size: \(([\d x]+)\)\. Kernel size can't be greater than actual input size"
)


def kernel_too_large(text: str, info: TensorInfo) -> str | None:
    """PyTorch's "Calculated padded input size per channel: (3 x 3). Kernel size: (9 x 9)..." in
    words: "kernel 9×9 is larger than the 3×3 input" ("padded input" when padding made it
    differ from the tensor's own size); None for any other error."""
    m = _KERNEL.search(text)
    if m is None:
        return None
    padded = [int(v) for v in m.group(1).split(" x ")]
    size = "×".join(map(str, padded))
    kernel = "×".join(m.group(2).split(" x "))
    own = list(info.shape[-len(padded) :])
    what = "input" if own == padded else "padded input"
    return f"kernel {kernel} is larger than the {size} {what}"
