"""The document as a run will train it: run overrides written into its Training node, a data
file's shapes into its Dataset node, and the error every run refusal is raised as."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graph_compiler.catalog import CATALOG
from graph_compiler.document import parse_document

OVERRIDABLE = (
    "epochs",
    "batch_size",
    "device",
    "precision",
    "seed",
    "fast_path",
    "compile",
    "shuffle",
    "val_split",
    "grad_clip",
    "grad_accumulation",
    "checkpoint_every",
    "keep_checkpoints",
)
# how the run starts, not Training params: a weights file to start from (a path, relative to
# the run folder) and whether only its matching tensors are loaded (graph_compiler.weights)
RUN_OPTIONS = ("init_weights", "init_partial")


class RunFailed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def prepare_document(
    document: Any,
    overrides: Mapping[str, Any] | None = None,
    file_shapes: Mapping[str, Any] | None = None,
) -> dict:
    """The document as it will run: overrides put into the Training node (added if missing),
    a data file's shapes put into the Dataset node."""
    doc, problems = parse_document(document)
    if doc is None:
        raise RunFailed("invalid_graph", "; ".join(str(p) for p in problems))
    raw = doc.to_json_dict()
    nodes = raw["nodes"]
    training = next((n for n in nodes if n["type"] == "Training"), None)
    clean = {k: v for k, v in (overrides or {}).items() if v is not None and k not in RUN_OPTIONS}
    unknown = set(clean) - set(OVERRIDABLE)
    if unknown:
        raise RunFailed(
            "invalid_override",
            f"cannot override {', '.join(sorted(unknown))}; overridable: {', '.join(OVERRIDABLE)}",
        )
    if clean:
        if training is None:
            training = {"id": "training", "type": "Training", "params": {}, "position": [0, 0]}
            nodes.append(training)
        training["params"] = {**training["params"], **clean}
    if file_shapes:
        data = next(n for n in nodes if n["type"] == "Dataset")
        # None is "not known from the file" (a text file has no num_classes), never a value:
        # merged, it would fail the param's type check
        known = {k: v for k, v in file_shapes.items() if v is not None}
        data["params"] = {**data["params"], **known}
    return raw


def dataset_params_with_defaults(raw: dict) -> dict | None:
    """The Dataset node's params completed with the catalog's defaults: what load_data reads
    (None: the graph has no Dataset node). Not the params as stored in the document."""
    node = next((n for n in raw["nodes"] if n["type"] == "Dataset"), None)
    if node is None:
        return None
    spec = CATALOG["Dataset"]
    params = {p.name: p.check(p.default)[0] for p in spec.params if p.default is not None}
    params.update(node["params"])
    return params
