"""Learned tensors (Parameter), Expand to the batch, PositionIds: a ViT-style mini model built,
trained one step and compared with the same model written by hand; codegen, state_dict keys,
freezing, inits, and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graph_compiler import analyze, build_plan, compile_graph, generate
from graph_compiler.weights import compare, node_owners
from tests.helpers import document, edge, errors_with, node, set_params
from tests.learned_tensors import PATCHES, WIDTH, positions, vit


class HandViT(nn.Module):
    """The ViT-style mini model as a careful person writes it."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(1, WIDTH, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, WIDTH))
        self.pos_embed = nn.Parameter(torch.empty(1, PATCHES + 1, WIDTH))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.encoder = nn.TransformerEncoderLayer(
            WIDTH, 2, dim_feedforward=32, dropout=0.0, batch_first=True
        )
        self.head = nn.Linear(WIDTH, 10)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1) + self.pos_embed
        return self.head(self.encoder(h)[:, 0])


def _batch(size: int = 6) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {
        "x": torch.randn(size, 1, 8, 8, generator=gen),
        "y": torch.randint(0, 10, (size,), generator=gen),
    }


def test_vit_matches_hand_written_and_trains_the_same():
    plan = build_plan(vit())
    model = plan.model
    hand = HandViT()
    with torch.no_grad():  # a non-zero class token, so that its gradient path is exercised
        model.cls_token.normal_(generator=torch.Generator().manual_seed(2))
    hand.load_state_dict(model.state_dict())  # strict: the same keys and shapes
    batch = _batch()
    model.train(), hand.train()
    outputs = plan.forward(batch)
    ours = outputs[0]
    theirs = hand(batch["x"])
    assert ours.shape == (6, 10)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)

    total, _ = plan.compute_loss(outputs, batch)
    plan.optimizer.zero_grad()
    total.backward()
    plan.optimizer.step()
    hand_opt = torch.optim.SGD(hand.parameters(), lr=0.1)
    nn.functional.cross_entropy(theirs, batch["y"]).backward()
    hand_opt.step()
    assert model.cls_token.grad is not None and model.cls_token.grad.abs().sum() > 0
    assert model.pos_embed.grad.abs().sum() > 0
    for (name, a), (_, b) in zip(
        model.state_dict().items(), hand.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    torch.testing.assert_close(plan.forward(batch)[0], hand(batch["x"]), rtol=0, atol=1e-6)


def test_vit_codegen_reads_like_hand_written():
    source = generate(vit())
    assert "self.cls_token = nn.Parameter(torch.zeros(1, 1, 16))" in source
    assert "self.pos_embed = nn.Parameter(torch.empty(1, 5, 16))" in source
    assert "nn.init.trunc_normal_(self.pos_embed, std=0.02)" in source
    assert "self.cls_token.expand(x.size(0), -1, -1)  # (B, 1, 16)" in source
    assert "+ self.pos_embed  # (B, 5, 16)" in source
    # no forward line just to read the parameter
    assert "= self.cls_token  #" not in source and "= self.pos_embed  #" not in source
    compile(source, "<model>", "exec")


def test_state_dict_keys_and_parameter_counts():
    compiled = compile_graph(vit())
    model = compiled.instantiate(seed=0)
    keys = list(model.state_dict())
    assert "cls_token" in keys and "pos_embed" in keys
    assert model.cls_token.shape == (1, 1, WIDTH) and isinstance(model.cls_token, nn.Parameter)
    a = compiled.analysis
    assert a.result("cls_token").num_params == WIDTH
    assert a.result("pos_embed").num_params == (PATCHES + 1) * WIDTH
    assert a.result("cls_batch").num_params == 0
    assert a.totals()["params"] == sum(p.numel() for p in model.parameters())
    # weights files name the node that owns each key
    state = model.state_dict()
    given = {k: v for k, v in state.items() if k != "cls_token"}
    report = compare(state, given, node_owners(compiled.attributes))
    assert report.missing == [{"key": "cls_token", "node": "cls_token", "expected": [1, 1, 16]}]


def test_a_frozen_parameter_stays_put():
    plan = build_plan(vit(frozen_pos=True))
    a = plan.compiled.analysis
    total = a.totals()
    assert total["params"] - total["trainable_params"] == (PATCHES + 1) * WIDTH
    assert not plan.model.pos_embed.requires_grad and plan.model.cls_token.requires_grad
    ids = {id(p) for g in plan.optimizer.param_groups for p in g["params"]}
    assert id(plan.model.pos_embed) not in ids and id(plan.model.cls_token) in ids
    before = plan.model.pos_embed.detach().clone()
    batch = _batch()
    total_loss, _ = plan.compute_loss(plan.forward(batch), batch)
    plan.optimizer.zero_grad()
    total_loss.backward()
    plan.optimizer.step()
    assert torch.equal(plan.model.pos_embed, before)


@pytest.mark.parametrize(
    ("params", "line", "check"),
    [
        ({}, "nn.Parameter(torch.zeros(4, 500))", lambda t: torch.equal(t, torch.zeros(4, 500))),
        (
            {"init": "normal", "std": 0.5},
            "nn.init.normal_(self.w, std=0.5)",
            lambda t: abs(t.std().item() - 0.5) < 0.05,
        ),
        (
            {"init": "trunc_normal", "std": 1.0},
            "nn.init.trunc_normal_(self.w, std=1.0)",
            lambda t: t.abs().max() <= 2.0 and t.std() < 0.95,
        ),
        (
            {"init": "uniform", "a": 2.0, "b": 3.0},
            "nn.init.uniform_(self.w, a=2.0, b=3.0)",
            lambda t: t.min() >= 2.0 and t.max() <= 3.0 and t.std() > 0.2,
        ),
    ],
)
def test_inits(params, line, check):
    doc = vit()
    doc["nodes"].append({"id": "w", "type": "Parameter", "params": {"shape": [4, 500], **params}})
    doc["edges"].append(
        {"source": "w", "source_port": "out", "target": "loss2", "target_port": "input"}
    )
    doc["nodes"].append({"id": "loss2", "type": "MSELoss", "params": {}})
    doc["edges"] += [
        {"source": "w", "source_port": "out", "target": "loss2", "target_port": "target"},
        {"source": "loss2", "source_port": "loss", "target": "opt", "target_port": "loss"},
    ]
    compiled = compile_graph(doc)
    assert line in compiled.source
    model = compiled.instantiate(seed=0)
    assert check(model.w.detach())
    assert compiled.analysis.result("w").num_params == 2000


@pytest.mark.parametrize("batch_dim", [True, False])
def test_position_ids_feed_an_embedding_table(batch_dim):
    a = analyze(positions(batch_dim))
    assert a.ok, [str(e) for e in a.errors]
    ids = a.result("pos_ids").outputs["out"]
    assert ids.dtype == "int64"
    assert str(ids) == ("(1, 64)" if batch_dim else "(64,)")
    compiled = compile_graph(a)
    expected = "torch.arange(x.size(1), device=x.device)" + (".unsqueeze(0)" if batch_dim else "")
    assert expected + "  # " in compiled.source
    model = compiled.instantiate(seed=0)
    x = torch.randn(5, 64)
    proj = model.proj(x.unsqueeze(2))
    hand = model.head((proj + model.pos_table.weight).mean(dim=1))
    torch.testing.assert_close(model(x), hand, rtol=0, atol=1e-6)


def test_bad_input_is_a_structured_error():
    # a class token without its leading 1 cannot be expanded to the batch
    a = analyze(vit(cls_shape=[2, 1, WIDTH]))
    (err,) = errors_with(a, "expand_not_one")
    assert (err.node, err.field) == ("cls_batch", "in")
    assert "dim 0 of its input (2, 1, 16) is 2" in err.message
    (err,) = errors_with(analyze(vit(cls_shape=[WIDTH])), "expand_not_one")
    assert "shape [1, 16]" in err.message
    # a class token of the wrong rank: (1, 16) → (B, 16) cannot join (B, 4, 16) patches
    (err,) = errors_with(analyze(vit(cls_shape=[1, WIDTH])), "shape_mismatch")
    assert err.node == "cat" and "(B, 16) from cls_batch" in err.message
    # a position embedding of the wrong length
    (err,) = errors_with(analyze(vit(pos_shape=[1, PATCHES, WIDTH])), "shape_mismatch")
    assert err.node == "add_pos"
    # uniform with a >= b
    doc = set_params(vit(), "pos_embed", init="uniform", a=1.0, b=1.0)
    (err,) = errors_with(analyze(doc), "param_range")
    assert (err.node, err.field) == ("pos_embed", "b")
    # shape values are sizes
    (err,) = errors_with(analyze(set_params(vit(), "cls_token", shape=[1, 0, 16])), "param_range")
    assert (err.node, err.field) == ("cls_token", "shape")
    # position ids are int64: fed to a Linear they are refused like any token ids
    doc = positions()
    for n in doc["nodes"]:
        if n["id"] == "pos_table":
            n["type"], n["params"] = "Linear", {"out_features": 8}
    (err,) = errors_with(analyze(doc), "dtype_mismatch")
    assert err.node == "pos_table" and "int64" in err.message


def test_a_parameter_in_a_repeated_block_is_one_per_repeat():
    """LayerScale-style: x * gamma inside a block used twice, gamma frozen."""
    res = {
        "nodes": [
            node("x", "Input"),
            node("fc", "Linear", {"out_features": 64}),
            node(
                "gamma", "Parameter", {"shape": [64], "init": "normal", "std": 0.1}, trainable=False
            ),
            node("mul", "Multiply"),
            node("out", "Output"),
        ],
        "edges": [edge("x", "fc"), edge("fc", "mul"), edge("gamma", "mul"), edge("mul", "out")],
    }
    nodes = [
        node("data", "Dataset", {"source": "digits"}),
        node("blk", "Block", {"block": "Scaled", "repeat": 2}),
        node("head", "Linear", {"out_features": 10}),
        node("loss", "CrossEntropyLoss"),
        node("opt", "Adam"),
        node("train", "Training", {"epochs": 1}),
    ]
    edges = [
        edge("data", "blk", "x", "x"),
        edge("blk", "head", "out", "in"),
        edge("head", "loss", "out", "input"),
        edge("data", "loss", "y", "target"),
        edge("loss", "opt", "loss", "loss"),
    ]
    compiled = compile_graph(document(nodes, edges, blocks={"Scaled": res}))
    assert "x = x * self.gamma  # (B, 64)" in compiled.source
    totals = compiled.analysis.totals()
    assert totals["params"] - totals["trainable_params"] == 2 * 64
    model = compiled.instantiate(seed=0)
    frozen = [k for k, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ["blk.0.gamma", "blk.1.gamma"]
    assert not torch.equal(model.blk[0].gamma, model.blk[1].gamma)  # initialised each
    x = torch.randn(3, 64)
    h = x
    for i in range(2):
        h = model.blk[i].fc(h) * model.blk[i].gamma
    torch.testing.assert_close(model(x), model.head(h), rtol=0, atol=1e-6)
