"""Graphs with learned tensors, shared by tests/test_learned_tensors.py and the validation table:
a ViT-style mini model on 8×8 digit images, and a token model with an Embedding position table."""

from __future__ import annotations

from tests.helpers import document, edge, node

WIDTH = 16  # model width D
PATCHES = 4  # (8 / 4)² patches of 4×4 pixels


def vit(
    cls_shape: list | None = None, pos_shape: list | None = None, *, frozen_pos: bool = False
) -> dict:
    """digits_images (B, 1, 8, 8) → patch conv → flatten → transpose → Concat(class token
    expanded, patches) → Add(position embedding) → TransformerEncoderLayer → class token →
    Linear(10) → CrossEntropyLoss."""
    nodes = [
        node("data", "Dataset", {"source": "digits_images"}),
        node("patch", "Conv2d", {"out_channels": WIDTH, "kernel_size": 4, "stride": 4}),
        node("flat", "Flatten", {"start_dim": 2}),
        node("tokens", "Transpose", {"dim0": 1, "dim1": 2}),
        node("cls_token", "Parameter", {"shape": cls_shape or [1, 1, WIDTH]}),
        node("cls_batch", "Expand"),
        node("cat", "Concat", {"dim": 1}),
        node(
            "pos_embed",
            "Parameter",
            {"shape": pos_shape or [1, PATCHES + 1, WIDTH], "init": "trunc_normal"},
            trainable=False if frozen_pos else None,
        ),
        node("add_pos", "Add"),
        node(
            "encoder",
            "TransformerEncoderLayer",
            {"nhead": 2, "dim_feedforward": 32, "dropout": 0.0},
        ),
        node("cls_out", "Select", {"dim": 1, "index": 0}),
        node("head", "Linear", {"out_features": 10}),
        node("loss", "CrossEntropyLoss"),
        node("opt", "SGD", {"lr": 0.1}),
        node("train", "Training", {"epochs": 1}),
    ]
    edges = [
        edge("data", "patch", "x"),
        edge("patch", "flat"),
        edge("flat", "tokens"),
        edge("cls_token", "cls_batch"),
        edge("data", "cls_batch", "x", "like"),
        edge("cls_batch", "cat"),
        edge("tokens", "cat"),
        edge("cat", "add_pos"),
        edge("pos_embed", "add_pos"),
        edge("add_pos", "encoder"),
        edge("encoder", "cls_out"),
        edge("cls_out", "head"),
        edge("head", "loss", "out", "input"),
        edge("data", "loss", "y", "target"),
        edge("loss", "opt", "loss", "loss"),
    ]
    return document(nodes, edges, name="vit mini")


def positions(batch_dim: bool = True) -> dict:
    """digits x (B, 64) read as a sequence of 64 steps (B, 64, 1) → Linear(8), plus an
    Embedding position table looked up at PositionIds(x) → Mean over time → Linear(10)."""
    nodes = [
        node("data", "Dataset", {"source": "digits"}),
        node("seq", "Unsqueeze", {"dim": 2}),  # (B, 64, 1)
        node("proj", "Linear", {"out_features": 8}),  # (B, 64, 8)
        node("pos_ids", "PositionIds", {"batch_dim": batch_dim}),
        node("pos_table", "Embedding", {"num_embeddings": 64, "embedding_dim": 8}),
        node("add_pos", "Add"),
        node("pool", "Mean", {"dim": [1]}),
        node("head", "Linear", {"out_features": 10}),
        node("loss", "CrossEntropyLoss"),
        node("opt", "Adam"),
        node("train", "Training", {"epochs": 1}),
    ]
    edges = [
        edge("data", "seq", "x"),
        edge("seq", "proj"),
        edge("data", "pos_ids", "x"),
        edge("pos_ids", "pos_table"),
        edge("proj", "add_pos"),
        edge("pos_table", "add_pos"),
        edge("add_pos", "pool"),
        edge("pool", "head"),
        edge("head", "loss", "out", "input"),
        edge("data", "loss", "y", "target"),
        edge("loss", "opt", "loss", "loss"),
    ]
    return document(nodes, edges, name="positions")
