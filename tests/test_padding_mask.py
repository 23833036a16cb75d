"""Key-padding masks: PaddingMask (token ids → bool, True at the pad id) into
MultiheadAttention's key_padding_mask and TransformerEncoderLayer's src_key_padding_mask — the
generated forward against hand-written torch, and padding that changes nothing it should not."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graph_compiler import analyze, build_module, generate
from tests.helpers import document, edge, node

T, E, V = 12, 16, 30
DATA = {
    "source": "file",
    "path": "reviews.csv",
    "x_shape": [T],
    "x_dtype": "int64",
    "vocab_size": V,
    "pad_id": 0,
    "num_classes": 2,
}


def _doc(layer: str, params: dict, mask_port: str) -> dict:
    """data.x → Embedding "emb" → the layer "att" (mask from PaddingMask "pad") → pooling."""
    nodes = [
        node("data", "Dataset", DATA),
        node("emb", "Embedding", {"num_embeddings": V, "embedding_dim": E, "padding_idx": 0}),
        node("pad", "PaddingMask", {"pad_id": 0}),
        node("att", layer, params),
        node("flat", "Flatten"),
        node("head", "Linear", {"out_features": 2}),
        node("loss", "CrossEntropyLoss"),
        node("opt", "Adam"),
        node("train", "Training"),
    ]
    first = "query" if layer == "MultiheadAttention" else "in"
    edges = [
        edge("data", "emb", "x", "in"),
        edge("data", "pad", "x", "in"),
        edge("emb", "att", "out", first),
        edge("pad", "att", "out", mask_port),
        edge("att", "flat"),
        edge("flat", "head"),
        edge("head", "loss", "out", "input"),
        edge("data", "loss", "y", "target"),
        edge("loss", "opt", "loss", "loss"),
    ]
    return document(nodes, edges)


CASES = [
    ("MultiheadAttention", {"num_heads": 4}, "key_padding_mask"),
    ("MultiheadAttention", {"num_heads": 4, "causal": True}, "key_padding_mask"),
    ("TransformerEncoderLayer", {"nhead": 4, "dim_feedforward": 32}, "src_key_padding_mask"),
]


def _att_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    seen = []
    hook = model.flat.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad():
        model(x)
    hook.remove()
    return seen[0]


def _ids() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, V, (3, T), generator=g)
    x[0, 7:] = 0  # padded rows of different lengths
    x[1, 3:] = 0
    return x


@pytest.mark.parametrize("layer, params, port", CASES)
def test_mask_matches_hand_written_torch(layer, params, port):
    doc = _doc(layer, params, port)
    a = analyze(doc)
    assert a.ok, [str(e) for e in a.errors]
    assert a.result("pad").outputs["out"].dtype == "bool"
    assert f"{port}=" in generate(doc)
    model = build_module(doc, seed=0).eval()
    x = _ids()
    got = _att_output(model, x)
    with torch.no_grad():
        h = model.emb(x)
        mask = x == 0
        if layer == "MultiheadAttention":
            causal = None
            if params.get("causal"):
                causal = nn.Transformer.generate_square_subsequent_mask(T)
            want = model.att(h, h, h, key_padding_mask=mask, attn_mask=causal, need_weights=False)
            want = want[0]
        else:
            want = model.att(h, src_key_padding_mask=mask)
    keep = ~mask
    assert torch.allclose(got[keep], want[keep], atol=1e-6)


@pytest.mark.parametrize("layer, params, port", CASES)
def test_padding_does_not_change_the_real_positions(layer, params, port):
    """What the padded positions hold (here: the pad row of the embedding, moved) changes
    nothing at the real positions; without the mask it would."""
    model = build_module(_doc(layer, params, port), seed=0).eval()
    x = _ids()
    real = x != 0
    before = _att_output(model, x)
    with torch.no_grad():
        unmasked_before = _unmasked(model, layer, x)
        model.emb.weight[0] += torch.randn(E, generator=torch.Generator().manual_seed(1))
        unmasked_after = _unmasked(model, layer, x)
    after = _att_output(model, x)
    assert torch.allclose(before[real], after[real], atol=1e-6)
    if not params.get("causal"):  # the check above can fail: unmasked, padding leaks in
        assert not torch.allclose(unmasked_before[real], unmasked_after[real], atol=1e-4)


def _unmasked(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    h = model.emb(x)
    return (
        model.att(h, h, h, need_weights=False)[0] if layer == "MultiheadAttention" else model.att(h)
    )


def test_a_float_tensor_into_the_mask_port_is_a_dtype_error():
    doc = _doc("MultiheadAttention", {"num_heads": 4}, "key_padding_mask")
    for e in doc["edges"]:
        if e["target"] == "att" and e["target_port"] == "key_padding_mask":
            e["source"] = "emb"
    a = analyze(doc)
    errs = [e for e in a.error_list if e.node == "att"]
    assert errs and errs[0].code in ("dtype_mismatch", "rank_mismatch")


def _pool_doc(mode: str) -> dict:
    nodes = [
        node("data", "Dataset", DATA),
        node("emb", "Embedding", {"num_embeddings": V, "embedding_dim": E, "padding_idx": 0}),
        node("gru", "GRU", {"hidden_size": 8, "output": "sequence"}),
        node("pad", "PaddingMask", {"pad_id": 0}),
        node("pool", "MaskedPool", {"mode": mode}),
        node("head", "Linear", {"out_features": 2}),
        node("loss", "CrossEntropyLoss"),
        node("opt", "Adam"),
    ]
    edges = [
        edge("data", "emb", "x", "in"),
        edge("data", "pad", "x", "in"),
        edge("emb", "gru"),
        edge("gru", "pool", "out", "in"),
        edge("pad", "pool", "out", "mask"),
        edge("pool", "head"),
        edge("head", "loss", "out", "input"),
        edge("data", "loss", "y", "target"),
        edge("loss", "opt", "loss", "loss"),
    ]
    return document(nodes, edges)


@pytest.mark.parametrize("mode", ["mean", "max", "last"])
def test_masked_pool_uses_the_real_positions_only(mode):
    doc = _pool_doc(mode)
    assert analyze(doc).ok
    model = build_module(doc, seed=0).eval()
    x = _ids()
    seen = []
    model.head.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad():
        model(x)
        seq = model.gru(model.emb(x))[0]
    want = []
    for b in range(len(x)):
        n = int((x[b] != 0).sum())
        real = seq[b, :n]
        want.append({"mean": real.mean(0), "max": real.amax(0), "last": real[-1]}[mode])
    assert torch.allclose(seen[0], torch.stack(want), atol=1e-6)
