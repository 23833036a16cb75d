"""Terse builders for graph documents used across the test-suite.

    doc = chain({"source": "digits"}, [("Linear", {"out_features": 10})])

gives a complete, valid document: Dataset → layers → CrossEntropyLoss ← Dataset.y, the loss
feeding an Adam optimizer, plus a Training node. Node ids are `data`, the layer ids (given as
`(id, type, params)` or generated as `l0`, `l1`, ...), `loss`, `opt`, `sched` and `train`.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from typing import Any

FORMAT = "torchloom.graph/1"

Layer = tuple[str, dict] | tuple[str, str, dict] | str


def node(
    node_id: str,
    type_: str,
    params: dict | None = None,
    *,
    label: str | None = None,
    trainable: bool | None = None,
    position: Sequence[float] = (0.0, 0.0),
) -> dict:
    out: dict[str, Any] = {
        "id": node_id,
        "type": type_,
        "params": dict(params or {}),
        "position": list(position),
    }
    if label is not None:
        out["label"] = label
    if trainable is not None:
        out["trainable"] = trainable
    return out


def edge(source: str, target: str, source_port: str = "out", target_port: str = "in") -> dict:
    return {
        "source": source,
        "source_port": source_port,
        "target": target,
        "target_port": target_port,
    }


def document(
    nodes: Iterable[dict],
    edges: Iterable[dict] = (),
    blocks: dict | None = None,
    name: str = "test graph",
) -> dict:
    return {
        "format": FORMAT,
        "name": name,
        "nodes": list(nodes),
        "edges": list(edges),
        "blocks": dict(blocks or {}),
    }


def _layer(index: int, item: Layer) -> tuple[str, str, dict]:
    if isinstance(item, str):
        return f"l{index}", item, {}
    if len(item) == 2:
        return f"l{index}", item[0], dict(item[1])
    return item[0], item[1], dict(item[2])


def chain(
    dataset: dict | str | None = "digits",
    layers: Sequence[Layer] = (),
    *,
    loss: str | None = "CrossEntropyLoss",
    loss_params: dict | None = None,
    optimizer: str | None = "Adam",
    optimizer_params: dict | None = None,
    scheduler: str | None = None,
    scheduler_params: dict | None = None,
    training: dict | None = None,
    with_training: bool = True,
    name: str = "test graph",
) -> dict:
    """A linear model: Dataset.x → layers... → loss.input, Dataset.y → loss.target.

    `dataset` is a source name or the Dataset params; `layers` items are a type name,
    `(type, params)` or `(id, type, params)`. Pass `loss=None` / `optimizer=None` /
    `with_training=False` to leave those nodes out (for the no_loss / ... cases).
    """
    data_params = {"source": dataset} if isinstance(dataset, str) else dict(dataset or {})
    nodes = [node("data", "Dataset", data_params)]
    edges = []
    prev, prev_port = "data", "x"
    for i, item in enumerate(layers):
        node_id, type_, params = _layer(i, item)
        nodes.append(node(node_id, type_, params, position=(200.0 * (i + 1), 0.0)))
        edges.append(edge(prev, node_id, prev_port, "in"))
        prev, prev_port = node_id, "out"
    if loss is not None:
        nodes.append(node("loss", loss, loss_params))
        edges.append(edge(prev, "loss", prev_port, "input"))
        edges.append(edge("data", "loss", "y", "target"))
    if optimizer is not None:
        nodes.append(node("opt", optimizer, optimizer_params))
        if loss is not None:
            edges.append(edge("loss", "opt", "loss", "loss"))
    if scheduler is not None:
        nodes.append(node("sched", scheduler, scheduler_params))
        if optimizer is not None:
            edges.append(edge("opt", "sched", "optimizer", "optimizer"))
    if with_training:
        nodes.append(node("train", "Training", training))
    return document(nodes, edges, name=name)


def mlp(**kw: Any) -> dict:
    """The smallest valid classifier: digits (B, 64) → fc1 → relu → fc2 (B, 10)."""
    return chain(
        "digits",
        [
            ("fc1", "Linear", {"out_features": 32}),
            ("relu", "ReLU", {}),
            ("fc2", "Linear", {"out_features": 10}),
        ],
        **kw,
    )


def cnn(**kw: Any) -> dict:
    """digits_images (B, 1, 8, 8) → conv → relu → pool → flatten → fc (B, 10)."""
    return chain(
        "digits_images",
        [
            ("conv1", "Conv2d", {"out_channels": 8, "padding": 1}),
            ("relu1", "ReLU", {}),
            ("pool1", "MaxPool2d", {}),
            ("flat", "Flatten", {}),
            ("fc", "Linear", {"out_features": 10}),
        ],
        **kw,
    )


# --- editing documents -----------------------------------------------------------------------


def clone(doc: dict) -> dict:
    return copy.deepcopy(doc)


def find_node(doc: dict, node_id: str, block: str | None = None) -> dict:
    nodes = doc["blocks"][block]["nodes"] if block else doc["nodes"]
    return next(n for n in nodes if n["id"] == node_id)


def set_params(doc: dict, node_id: str, **params: Any) -> dict:
    find_node(doc, node_id)["params"].update(params)
    return doc


def add(doc: dict, *nodes_or_edges: dict) -> dict:
    for item in nodes_or_edges:
        (doc["edges"] if "source" in item else doc["nodes"]).append(item)
    return doc


def remove_node(doc: dict, node_id: str) -> dict:
    """Drop a node and every edge touching it."""
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] != node_id]
    doc["edges"] = [e for e in doc["edges"] if node_id not in (e["source"], e["target"])]
    return doc


# --- reading analyses --------------------------------------------------------------------------


def codes(analysis: Any) -> list[str]:
    return [e.code for e in analysis.errors]


def errors_with(analysis: Any, code: str) -> list:
    return [e for e in analysis.errors if e.code == code]


def output_shape(analysis: Any, node_id: str, port: str = "out") -> str:
    return str(analysis.result(node_id).outputs[port])


def loss_on(doc: dict, node_id: str, port: str = "out") -> dict:
    """Rewire the loss to compare `node_id.port` with itself: any output becomes a valid model
    output (an MSELoss of matching shapes), whatever the dataset's targets are."""
    doc["edges"] = [e for e in doc["edges"] if e["target"] != "loss"]
    doc["edges"] += [edge(node_id, "loss", port, "input"), edge(node_id, "loss", port, "target")]
    find_node(doc, "loss")["type"] = "MSELoss"
    return doc


def run_unpacked(folder: Any, *args: str, timeout: int = 300, **env: str):
    """Run `python ARGS` in an unpacked export (code.zip) the way its user would: the
    repository not on the path. Extra environment variables as keywords."""
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=folder,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tiny_causal_lm(data: dict, vocab: int, seq: int, width: int, lr: float, **training) -> dict:
    """A tiny GPT on a token source: token + position embeddings, one causal pre-norm encoder
    layer, a linear head, CrossEntropy over (B, T, V), Adam. Generation past `seq` tokens crops
    the context (the position table holds `seq` rows)."""
    layer = {"d_model": width, "nhead": 2, "dim_feedforward": 2 * width, "dropout": 0.0}
    nodes = [
        node("data", "Dataset", data),
        node("tok", "Embedding", {"num_embeddings": vocab, "embedding_dim": width}),
        node("pos_ids", "PositionIds"),
        node("pos", "Embedding", {"num_embeddings": seq, "embedding_dim": width}),
        node("add", "Add"),
        node("block", "TransformerEncoderLayer", layer | {"causal": True, "norm_first": True}),
        node("head", "Linear", {"out_features": vocab}),
        node("loss", "CrossEntropyLoss"),
        node("opt", "Adam", {"lr": lr}),
        node("train", "Training", training),
    ]
    edges = [
        edge("data", "tok", "x"),
        edge("data", "pos_ids", "x"),
        edge("pos_ids", "pos"),
        edge("tok", "add"),
        edge("pos", "add"),
        edge("add", "block"),
        edge("block", "head"),
        edge("head", "loss", "out", "input"),
        edge("data", "loss", "y", "target"),
        edge("loss", "opt", "loss", "loss"),
    ]
    return document(nodes, edges, name="tiny gpt")
