"""What an importer produces: the model's nodes and edges, then a complete graph document.

The importers fill an `ImportedGraph` (model nodes only, wired from the input `data.x`); turning
it into a document adds a Dataset shaped like the input, a loss per output (class scores get a
CrossEntropyLoss, one value per sample an MSELoss, an output shaped like the input a
reconstruction MSELoss), an Adam optimizer and a Training node, and lays it all out. Where an
output has no obvious loss the document is the model only (the Dataset and the model nodes).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..analysis import Analysis
from ..catalog import CATALOG
from ..document import FORMAT
from ..names import Namespace

INPUT = "data"  # the Dataset node: the model's input is its port "x"
OPAQUE_PREFIX = "opaque: "
COLUMN, ROW = 240, 130  # layout spacing
# ids of the nodes to_document adds around the model
RESERVED_IDS = frozenset({INPUT, "optimizer", "training", "loss", *(f"loss{i}" for i in range(64))})


class ImportFailed(Exception):
    """An import that cannot go on; the message says what and where."""


@dataclass
class ImportedNode:
    id: str
    type: str
    params: dict[str, Any]
    inputs: list[tuple[str, str, str]]  # (target port, source node, source port)
    label: str | None = None
    module_path: str | None = None  # state_dict prefix of its weights in the original model
    origin: str = ""  # what it was in the source, for messages
    inferred: dict[str, Any] = field(default_factory=dict)  # sizes the source states, checked


@dataclass
class ImportedGraph:
    name: str
    input_shape: tuple[int, ...]  # batch first
    input_dtype: str = "float32"  # int64/int32: token ids (the Dataset's x_dtype)
    nodes: list[ImportedNode] = field(default_factory=list)
    outputs: list[tuple[str, str, tuple[int, ...]]] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)  # "node id: what it was"
    # each opaque node: {node, what, why, expression (its Python source, or "")}
    opaque_nodes: list[dict[str, str]] = field(default_factory=list)
    model_only: bool = False  # set by to_document: no obvious loss, no training nodes
    notes: list[str] = field(default_factory=list)
    _ids: Namespace = field(default_factory=lambda: Namespace(RESERVED_IDS))

    def add(
        self,
        hint: str,
        type_: str,
        params: dict[str, Any],
        inputs: list[tuple[str, str, str]],
        *,
        label: str | None = None,
        module_path: str | None = None,
        origin: str = "",
    ) -> ImportedNode:
        if type_ not in CATALOG:  # pragma: no cover - importers only name catalog types
            raise ImportFailed(f"internal: {type_} is not a catalog node type")
        node = ImportedNode(
            self._ids.create(hint), type_, params, inputs, label, module_path, origin
        )
        self.nodes.append(node)
        return node

    def add_opaque(
        self, hint: str, what: str, inputs: list[tuple[str, str]], why: str, expression: str = ""
    ):
        """A CustomLayer that names what it stands for and fails validation with that name: the
        graph keeps its shape, and nothing pretends to compute what the original computed.
        `expression`: the Python source it came from (`self.cls_token.expand(B, -1, -1)`)."""
        names = [f"x{i}" if len(inputs) > 1 else "x" for i in range(len(inputs))]
        message = f"opaque node: {what} ({why}) has no torchloom equivalent; rewrite this node"
        source = f"# from: {expression}\n" if expression else ""
        code = (
            f"# {OPAQUE_PREFIX}{what}: imported by torchloom without an equivalent\n{source}"
            f"raise NotImplementedError({message!r})\n"
            f"return {names[0] if names else 'None'}"
        )
        node = self.add(
            hint,
            "CustomLayer",
            {"code": code, "inputs": names, "parameters": []},
            [(name, src, port) for name, (src, port) in zip(names, inputs, strict=True)],
            label=f"{OPAQUE_PREFIX}{what}"[:200],
            origin=what,
        )
        self.opaque.append(f"{node.id}: {what} ({why})")
        self.opaque_nodes.append(
            {"node": node.id, "what": what, "why": why, "expression": expression}
        )
        return node


def to_document(g: ImportedGraph) -> dict:
    """The complete graph document: data, the model nodes, losses, optimizer, training."""
    if not g.outputs:
        raise ImportFailed("the model returns no tensor")
    nodes: list[dict] = []
    edges: list[dict] = []
    data_params, losses = _data_and_losses(g)
    g.model_only = losses is None
    nodes.append(_node(INPUT, "Dataset", data_params, "Input"))
    for n in g.nodes:
        nodes.append(_node(n.id, n.type, n.params, n.label))
        for port, src, src_port in n.inputs:
            edges.append(_edge(src, src_port, n.id, port))
    for i, (loss_type, (src, port), target) in enumerate(losses or []):
        loss_id = "loss" if len(losses) == 1 else f"loss{i + 1}"
        nodes.append(_node(loss_id, loss_type, {}, None))
        edges.append(_edge(src, port, loss_id, "input"))
        edges.append(_edge(INPUT, target, loss_id, "target"))
        edges.append(_edge(loss_id, "loss", "optimizer", "loss"))
    if losses is not None:
        nodes.append(_node("optimizer", "Adam", {"lr": 0.001}, None))
        nodes.append(_node("training", "Training", {}, None))
    _layout(nodes, edges)
    return {
        "format": FORMAT,
        "name": g.name[:200] or "Imported model",
        "description": " ".join(g.notes)[:2000],
        "nodes": nodes,
        "edges": edges,
        "blocks": {},
    }


def check_inferred(analysis: Analysis, g: ImportedGraph) -> None:
    """The sizes the compiler infers (in_features, num_features, ...) must be the ones the
    original states, or the imported model is not the original."""
    problems = []
    for n in g.nodes:
        if not n.inferred:
            continue
        got = analysis.result(n.id).params
        for name, value in n.inferred.items():
            if got.get(name) != value:
                problems.append(
                    f"{n.id} ({n.origin}): {name} is {value} in the original, but its input "
                    f"gives {got.get(name)}"
                )
    if problems:
        raise ImportFailed("the imported graph differs from the original: " + "; ".join(problems))


def _data_and_losses(g: ImportedGraph):
    """The Dataset's params and a loss per output, or None for the losses where an output has
    no obvious one (a dense map, a second set of scores): then the graph is the model only,
    valid as such (analyze(..., model_only=True)), and the user adds the training nodes."""
    x_shape = list(g.input_shape[1:])
    data: dict[str, Any] = {"source": "file", "x_shape": x_shape}
    if g.input_dtype in ("int64", "int32"):  # token ids: the Embedding takes int64 alike
        data["x_dtype"] = "int64"
    losses = []
    for node_id, port, shape in g.outputs:
        per_sample = list(shape[1:])
        if per_sample == x_shape and g.input_dtype == "float32":  # a reconstruction
            losses.append(("MSELoss", (node_id, port), "x"))
        elif len(per_sample) == 1 and per_sample[0] >= 2 and "task" not in data:
            data.update(task="classification", num_classes=per_sample[0])
            losses.append(("CrossEntropyLoss", (node_id, port), "y"))
        elif per_sample in ([], [1]) and "task" not in data:  # one value per sample
            data.update(task="regression", y_dim=1)
            losses.append(("MSELoss", (node_id, port), "y"))
        else:
            shapes = ", ".join(f"{n} {list(s)}" for n, _, s in g.outputs)
            g.notes.append(
                f"Model only: no obvious loss for the output {node_id} (outputs: {shapes}); "
                "add a loss that fits, an optimizer and a Training node to train it."
            )
            return data, None
    return data, losses


def _node(node_id: str, type_: str, params: dict, label: str | None) -> dict:
    out: dict[str, Any] = {"id": node_id, "type": type_, "params": params, "position": [0, 0]}
    if label:
        out["label"] = label
    return out


def _edge(src: str, src_port: str, tgt: str, tgt_port: str) -> dict:
    return {"source": src, "source_port": src_port, "target": tgt, "target_port": tgt_port}


def _layout(nodes: list[dict], edges: list[dict]) -> None:
    """Columns by longest path from the input, rows in document order within a column."""
    incoming: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        incoming[e["target"]].append(e["source"])
    depth: dict[str, int] = {}
    for n in nodes:  # nodes come in topological order (the importers emit them so)
        sources = [depth[s] for s in incoming[n["id"]] if s in depth]
        depth[n["id"]] = max(sources, default=-1) + 1
    rows: dict[int, int] = defaultdict(int)
    for n in nodes:
        if n["type"] == "Training":
            n["position"] = [0, -ROW * 2]
            continue
        column = depth[n["id"]]
        n["position"] = [column * COLUMN, rows[column] * ROW]
        rows[column] += 1
