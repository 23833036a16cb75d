"""Benchmark graph documents: a flat ResNet-50, the same network built from blocks, a long chain,
the GPT-mini example and a flat 12-block GPT (GPT-2 small's size).

Every function returns a fresh `torchloom.graph/1` document dict (plain JSON data), so callers may
mutate it freely. The ResNet-50 graphs reproduce torchvision's `resnet50()` exactly (v1.5: the
stride sits on the 3×3 convolution; convolutions have no bias): 25,557,032 parameters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESNET50_PARAMS = 25_557_032  # torchvision.models.resnet50(): sum(p.numel() for p in parameters)
RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (width, blocks, stride)
EXPANSION = 4


class _Builder:
    """Collects nodes and edges; `chain` wires each node's single output to the next input."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []

    def node(self, node_id: str, type_: str, **params: Any) -> str:
        entry: dict[str, Any] = {"id": node_id, "type": type_}
        if params:
            entry["params"] = params
        self.nodes.append(entry)
        return node_id

    def edge(self, source: str, target: str, source_port: str = "out", target_port: str = "in"):
        self.edges.append(
            {
                "source": source,
                "source_port": source_port,
                "target": target,
                "target_port": target_port,
            }
        )

    def conv_bn(
        self, prefix: str, src: str, src_port: str, out: int, k: int, stride: int, relu: bool
    ) -> str:
        conv = self.node(
            f"{prefix}_conv",
            "Conv2d",
            out_channels=out,
            kernel_size=k,
            stride=stride,
            padding=k // 2,
            bias=False,
        )
        self.edge(src, conv, src_port)
        bn = self.node(f"{prefix}_bn", "BatchNorm2d")
        self.edge(conv, bn)
        if not relu:
            return bn
        act = self.node(f"{prefix}_relu", "ReLU")
        self.edge(bn, act)
        return act

    def bottleneck(
        self, prefix: str, src: str, src_port: str, width: int, stride: int, project: bool
    ) -> str:
        """conv1x1-bn-relu → conv3x3(stride)-bn-relu → conv1x1-bn, + shortcut, Add, ReLU."""
        a = self.conv_bn(f"{prefix}_a", src, src_port, width, 1, 1, relu=True)
        b = self.conv_bn(f"{prefix}_b", a, "out", width, 3, stride, relu=True)
        c = self.conv_bn(f"{prefix}_c", b, "out", width * EXPANSION, 1, 1, relu=False)
        if project:
            shortcut, shortcut_port = (
                self.conv_bn(f"{prefix}_proj", src, src_port, width * EXPANSION, 1, stride, False),
                "out",
            )
        else:
            shortcut, shortcut_port = src, src_port
        add = self.node(f"{prefix}_add", "Add")
        self.edge(c, add)
        self.edge(shortcut, add, shortcut_port)
        out = self.node(f"{prefix}_relu", "ReLU")
        self.edge(add, out)
        return out

    def document(self, name: str, blocks: dict | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "format": "torchloom.graph/1",
            "name": name,
            "nodes": self.nodes,
            "edges": self.edges,
        }
        if blocks:
            doc["blocks"] = blocks
        return doc


def _imagenet_data(b: _Builder, num_classes: int, image_shape) -> str:
    return b.node(
        "data",
        "Dataset",
        source="random_images",
        image_shape=list(image_shape),
        num_classes=num_classes,
        samples=1000,
    )


def _stem(b: _Builder, data: str) -> str:
    stem = b.conv_bn("stem", data, "x", 64, 7, 2, relu=True)
    pool = b.node("stem_pool", "MaxPool2d", kernel_size=3, stride=2, padding=1)
    b.edge(stem, pool)
    return pool


def _head(b: _Builder, src: str, data: str, num_classes: int, optimizer: str = "SGD") -> None:
    pool = b.node("avgpool", "AdaptiveAvgPool2d", output_size=1)
    b.edge(src, pool)
    flat = b.node("flatten", "Flatten")
    b.edge(pool, flat)
    fc = b.node("fc", "Linear", out_features=num_classes)
    b.edge(flat, fc)
    loss = b.node("loss", "CrossEntropyLoss")
    b.edge(fc, loss, target_port="input")
    b.edge(data, loss, "y", "target")
    opt = b.node("opt", optimizer, **({"lr": 0.1, "momentum": 0.9} if optimizer == "SGD" else {}))
    b.edge(loss, opt, "loss", "loss")
    b.node("train", "Training", epochs=1, batch_size=32)


def resnet50_graph(num_classes: int = 1000, image_shape=(3, 224, 224)) -> dict[str, Any]:
    """A flat ResNet-50: every conv/bn/relu/add is its own top-level node (179 nodes)."""
    b = _Builder()
    data = _imagenet_data(b, num_classes, image_shape)
    x = _stem(b, data)
    for s, (width, count, stride) in enumerate(RESNET50_STAGES, start=1):
        for i in range(count):
            x = b.bottleneck(
                f"l{s}_{i}", x, "out", width, stride if i == 0 else 1, project=(i == 0)
            )
    _head(b, x, data, num_classes)
    return b.document("resnet50")


def resnet50_blocks_graph(num_classes: int = 1000, image_shape=(3, 224, 224)) -> dict[str, Any]:
    """ResNet-50 from reusable blocks: per stage one projecting block, then an identity block
    repeated. Block definitions have fixed widths and strides (a Block node takes no size
    arguments), so each stage has its own pair: 8 definitions, 19 top-level nodes."""
    blocks: dict[str, Any] = {}
    top = _Builder()
    data = _imagenet_data(top, num_classes, image_shape)
    x = _stem(top, data)
    for s, (width, count, stride) in enumerate(RESNET50_STAGES, start=1):
        for kind, project, repeat in (("Down", True, 1), ("", False, count - 1)):
            inner = _Builder()
            inp = inner.node("x", "Input")
            out = inner.bottleneck(
                "blk", inp, "out", width, stride if project else 1, project=project
            )
            result = inner.node("out", "Output")
            inner.edge(out, result)
            name = f"Bottleneck{kind}{width}"
            blocks[name] = {
                "description": f"ResNet bottleneck, width {width}"
                + (f", projection shortcut, stride {stride}" if project else ""),
                "nodes": inner.nodes,
                "edges": inner.edges,
            }
            node = top.node(
                f"layer{s}{kind.lower() or '_rest'}", "Block", block=name, repeat=repeat
            )
            top.edge(x, node, "out", "x")
            x = node
    _head(top, x, data, num_classes)
    return top.document("resnet50 blocks", blocks)


CHAIN_PATTERN = ("Linear", "ReLU", "LayerNorm")


def chain_graph(n: int = 1000, width: int = 64) -> dict[str, Any]:
    """`n` nodes in all: Dataset (digits, 64 features) → (Linear width / ReLU / LayerNorm)… →
    Linear 10 → CrossEntropyLoss → Adam, plus a Training node."""
    fixed = 5  # data, final linear, loss, optimizer, training
    if n < fixed + 1:
        raise ValueError(f"a chain needs at least {fixed + 1} nodes")
    b = _Builder()
    data = b.node("data", "Dataset", source="digits")
    prev, port = data, "x"
    for i in range(n - fixed):
        type_ = CHAIN_PATTERN[i % len(CHAIN_PATTERN)]
        params = {"out_features": width} if type_ == "Linear" else {}
        node = b.node(f"n{i}", type_, **params)
        b.edge(prev, node, port)
        prev, port = node, "out"
    fc = b.node("fc", "Linear", out_features=10)
    b.edge(prev, fc, port)
    loss = b.node("loss", "CrossEntropyLoss")
    b.edge(fc, loss, target_port="input")
    b.edge(data, loss, "y", "target")
    opt = b.node("opt", "Adam")
    b.edge(loss, opt, "loss", "loss")
    b.node("train", "Training", epochs=1)
    return b.document(f"chain {n}")


# GPT-2 small (vocab 50257, 1024 positions, 768 wide, 12 heads, 12 blocks, head tied to the
# token embedding): 124,439,808 parameters, as Hugging Face's gpt2 counts them
GPT2_SMALL_PARAMS = 124_439_808


def gpt_graph(
    layers: int = 12, width: int = 768, heads: int = 12, vocab: int = 50257, block: int = 1024
) -> dict[str, Any]:
    """A GPT with every node top-level (GPT-2 small by default: 8 nodes per block, 106 in
    all): token Embedding + PositionIds → position Embedding, pre-norm causal blocks (LayerNorm
    → causal MultiheadAttention → Add, LayerNorm → Linear 4× → GELU → Linear → Add), final
    LayerNorm, a Linear head tied to the token Embedding, CrossEntropy over (B, T, V), AdamW.
    Data: markov_text (its ids lie in a smaller vocabulary; T is what the shapes need)."""
    b = _Builder()
    data = b.node("data", "Dataset", source="markov_text", samples=1000, seq_len=block)
    tok = b.node("tok_emb", "Embedding", num_embeddings=vocab, embedding_dim=width)
    b.edge(data, tok, "x")
    ids = b.node("pos_ids", "PositionIds")
    b.edge(data, ids, "x")
    pos = b.node("pos_emb", "Embedding", num_embeddings=block, embedding_dim=width)
    b.edge(ids, pos)
    x = b.node("embed", "Add")
    b.edge(tok, x)
    b.edge(pos, x)
    for i in range(layers):
        ln1 = b.node(f"b{i}_ln1", "LayerNorm")
        b.edge(x, ln1)
        attn = b.node(f"b{i}_attn", "MultiheadAttention", num_heads=heads, causal=True)
        b.edge(ln1, attn, target_port="query")
        add1 = b.node(f"b{i}_add1", "Add")
        b.edge(attn, add1)
        b.edge(x, add1)
        ln2 = b.node(f"b{i}_ln2", "LayerNorm")
        b.edge(add1, ln2)
        fc = b.node(f"b{i}_fc", "Linear", out_features=4 * width)
        b.edge(ln2, fc)
        gelu = b.node(f"b{i}_gelu", "GELU")
        b.edge(fc, gelu)
        proj = b.node(f"b{i}_proj", "Linear", out_features=width)
        b.edge(gelu, proj)
        x = b.node(f"b{i}_add2", "Add")
        b.edge(proj, x)
        b.edge(add1, x)
    ln_f = b.node("ln_f", "LayerNorm")
    b.edge(x, ln_f)
    head = b.node("head", "Linear", out_features=vocab, bias=False, tie_weight=tok)
    b.edge(ln_f, head)
    loss = b.node("loss", "CrossEntropyLoss")
    b.edge(head, loss, target_port="input")
    b.edge(data, loss, "y", "target")
    opt = b.node("opt", "AdamW")
    b.edge(loss, opt, "loss", "loss")
    b.node("train", "Training", epochs=1, batch_size=8)
    return b.document(f"gpt {layers} blocks")


def gpt_mini_graph() -> dict[str, Any]:
    """examples/gpt_mini.json: two pre-norm causal blocks as one Block repeated."""
    path = Path(__file__).resolve().parent.parent / "examples" / "gpt_mini.json"
    return json.loads(path.read_text(encoding="utf-8"))


GRAPHS = {
    "resnet50": resnet50_graph,
    "resnet50_blocks": resnet50_blocks_graph,
    "chain1000": chain_graph,
    "gpt_mini": gpt_mini_graph,
    "gpt12": gpt_graph,
}

__all__ = [
    "GPT2_SMALL_PARAMS",
    "GRAPHS",
    "RESNET50_PARAMS",
    "chain_graph",
    "gpt_graph",
    "gpt_mini_graph",
    "resnet50_blocks_graph",
    "resnet50_graph",
]
