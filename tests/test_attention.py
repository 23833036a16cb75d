"""Causal attention and attention from parts: the generated forward against hand-written torch
(the same weights, equal outputs), and no output at position t that depends on an input after t."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graph_compiler import analyze, build_module, generate
from tests.helpers import document, edge, node

T, E = 32, 16  # sine_classify: x (B, 32, 1)


def _doc(layer: tuple[str, dict], ports: dict[str, str], extra=()) -> dict:
    """data.x → Linear(E) "emb" (+ extra nodes) → the layer "att" → Flatten "flat" → Linear(3)."""
    nodes = [
        node("data", "Dataset", {"source": "sine_classify"}),
        node("emb", "Linear", {"out_features": E}),
        *extra,
        node("att", layer[0], layer[1]),
        node("flat", "Flatten"),
        node("head", "Linear", {"out_features": 3}),
        node("loss", "CrossEntropyLoss"),
        node("opt", "Adam"),
        node("train", "Training"),
    ]
    edges = [
        edge("data", "emb", "x", "in"),
        *(edge(src, "att", "out", port) for port, src in ports.items()),
        edge("att", "flat"),
        edge("flat", "head"),
        edge("head", "loss", "out", "input"),
        edge("data", "loss", "y", "target"),
        edge("loss", "opt", "loss", "loss"),
    ]
    return document(nodes, edges)


def _attention_output(doc: dict, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """The model and what its attention node gives (B, T, E), read at the Flatten."""
    model = build_module(doc, seed=0).eval()
    seen = []
    hook = model.flat.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad():
        model(x)
    hook.remove()
    return model, seen[0]


def _future_independent(doc: dict) -> None:
    torch.manual_seed(1)
    x = torch.randn(4, T, 1)
    _, before = _attention_output(doc, x)
    for t in (0, 7, T - 2):
        changed = x.clone()
        changed[:, t + 1 :] = torch.randn_like(changed[:, t + 1 :]) * 5
        _, after = _attention_output(doc, changed)
        torch.testing.assert_close(after[:, : t + 1], before[:, : t + 1], rtol=0, atol=1e-6)
        assert not torch.allclose(after[:, t + 1 :], before[:, t + 1 :])


def _mask(x: torch.Tensor) -> torch.Tensor:
    return nn.Transformer.generate_square_subsequent_mask(x.size(1), device=x.device)


ENCODER = ("TransformerEncoderLayer", {"causal": True, "dim_feedforward": 32})
MHA = ("MultiheadAttention", {"causal": True, "num_heads": 2})
DECODER = ("TransformerDecoderLayer", {"causal": True, "dim_feedforward": 32})
BOTH = ("TransformerDecoderLayer", {"causal": True, "memory_causal": True, "dim_feedforward": 32})


def test_causal_encoder_layer_is_torch_with_the_causal_mask():
    doc = _doc(ENCODER, {"in": "emb"})
    x = torch.randn(5, T, 1)
    model, got = _attention_output(doc, x)
    with torch.no_grad():
        h = model.emb(x)
        want = model.att(h, src_mask=_mask(h), is_causal=True)
        unmasked = model.att(h)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert not torch.allclose(got, unmasked)
    _future_independent(doc)
    source = generate(doc)
    assert (
        "causal_mask = nn.Transformer.generate_square_subsequent_mask(x.size(1), device=x.device)"
        in source
    )
    assert "self.att(x, src_mask=causal_mask, is_causal=True)" in source


def test_causal_multihead_attention():
    doc = _doc(MHA, {"query": "emb"})
    x = torch.randn(5, T, 1)
    model, got = _attention_output(doc, x)
    with torch.no_grad():
        h = model.emb(x)
        mask = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
        want = model.att(h, h, h, need_weights=False, attn_mask=mask)[0]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    _future_independent(doc)


def test_causal_decoder_masks_tgt_self_attention():
    doc = _doc(DECODER, {"tgt": "emb", "memory": "emb"})
    x = torch.randn(5, T, 1)
    model, got = _attention_output(doc, x)
    with torch.no_grad():
        h = model.emb(x)
        want = model.att(h, h, tgt_mask=_mask(h), tgt_is_causal=True)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert "tgt_mask=causal_mask, tgt_is_causal=True" in generate(doc)
    _future_independent(_doc(BOTH, {"tgt": "emb", "memory": "emb"}))


def _parts(params: dict) -> dict:
    extra = [node(n, "Linear", {"out_features": E}) for n in ("q", "k", "v")]
    doc = _doc(
        ("ScaledDotProductAttention", params), {"query": "q", "key": "k", "value": "v"}, extra
    )
    doc["edges"] += [edge("emb", n) for n in ("q", "k", "v")]
    return doc


def test_scaled_dot_product_attention_from_parts():
    doc = _parts({"is_causal": True, "scale": 0.5})
    a = analyze(doc)
    assert a.ok, [str(e) for e in a.errors]
    assert str(a.result("att").outputs["out"]) == "(B, 32, 16)"
    x = torch.randn(5, T, 1)
    model, got = _attention_output(doc, x)
    with torch.no_grad():
        h = model.emb(x)
        q, k, v = model.q(h), model.k(h), model.v(h)
        scores = (q @ k.transpose(-2, -1)) * 0.5
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        want = scores.softmax(-1) @ v
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    _future_independent(doc)
    call = r"F\.scaled_dot_product_attention\(\w+, \w+, \w+, is_causal=True, scale=0\.5\)"
    assert re.search(call, generate(doc))


def test_sdpa_dropout_only_while_training():
    doc = _parts({"dropout_p": 0.5})
    source = generate(doc)
    assert "dropout_p=0.5 if self.training else 0.0" in source
    model = build_module(doc, seed=0)
    x = torch.randn(2, T, 1)
    model.eval()
    with torch.no_grad():
        h = model.emb(x)
        attended = F.scaled_dot_product_attention(model.q(h), model.k(h), model.v(h))
        want = model.head(model.flat(attended))
        torch.testing.assert_close(model(x), want)
    model.train()
    torch.manual_seed(0)
    assert not torch.allclose(model(x), model(x))


@pytest.mark.parametrize(
    "shapes, port",
    [
        (((T, E), (T, 8), (T, E)), "key"),  # q·kᵀ needs the same width
        (((T, E), (T, E), (16, E)), "value"),  # value as long as key
    ],
)
def test_sdpa_shapes_must_agree(shapes, port):
    extra = [node(n, "Linear", {"out_features": s[1]}) for n, s in zip("qkv", shapes, strict=True)]
    doc = _doc(("ScaledDotProductAttention", {}), {"query": "q", "key": "k", "value": "v"}, extra)
    doc["edges"] += [edge("emb", n) for n in "qkv"]
    if shapes[2][0] != T:  # a shorter value: a Slice of the sequence
        doc["nodes"].append(node("cut", "Slice", {"dim": 1, "start": 0, "end": shapes[2][0]}))
        doc["edges"] = [
            e for e in doc["edges"] if (e["target"], e["target_port"]) != ("att", "value")
        ]
        doc["edges"] += [edge("v", "cut"), edge("cut", "att", "out", "value")]
    errors = [e for e in analyze(doc).errors if e.code == "attention_shapes"]
    assert [(e.node, e.field) for e in errors] == [("att", port)], analyze(doc).errors


def test_causal_cross_attention_is_an_error():
    extra = [node("mem", "Slice", {"dim": 1, "start": 0, "end": 16})]
    doc = _doc(("MultiheadAttention", {"causal": True}), {"query": "emb", "key": "mem"}, extra)
    doc["edges"].append(edge("emb", "mem"))
    errors = [e for e in analyze(doc).errors if e.code == "causal_cross_attention"]
    assert [(e.node, e.field) for e in errors] == [("att", "causal")]
    assert "length 32" in errors[0].message and "length 16" in errors[0].message
    # the same keys without the causal mask: plain cross-attention is fine
    doc = _doc(("MultiheadAttention", {}), {"query": "emb", "key": "mem"}, extra)
    doc["edges"].append(edge("emb", "mem"))
    assert analyze(doc).ok


def _ruff_clean(source: str, tmp_path) -> None:
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    ruff = Path(sys.executable).with_name("ruff")
    ruff = str(ruff) if ruff.exists() else shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    path = tmp_path / "model.py"
    path.write_text(source, encoding="utf-8")
    config = Path(__file__).parents[1] / "pyproject.toml"
    for command in (["check", "--quiet"], ["format", "--check", "--diff"]):
        done = subprocess.run(
            [ruff, *command, "--config", str(config), "--no-cache", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{done.stdout}{done.stderr}\n{source}"


def test_generated_causal_code_passes_ruff(tmp_path):
    """A long call gets one argument per line, the shape comment after it; ruff-clean."""
    doc = _doc(BOTH, {"tgt": "emb", "memory": "emb"})
    source = generate(doc)
    assert "\n            memory_is_causal=True,\n        )  # (B, 32, 16)\n" in source
    _ruff_clean(source, tmp_path)
    _future_independent(doc)


@pytest.mark.parametrize("name", ["x", "target_sequence_projection"])
def test_the_mask_statement_wraps_as_ruff_format_does(name, tmp_path):
    from graph_compiler.catalog.attention import causal_mask

    body = "".join(f"        {line}\n" for line in causal_mask(name).splitlines())
    source = f"from torch import nn\n\n\ndef mask({name}):\n    if {name}:\n{body}"
    _ruff_clean(source + "        return causal_mask\n", tmp_path)
