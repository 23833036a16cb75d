"""examples/gpt_mini.json: a char GPT on markov_text — its parts (one repeated pre-norm causal
Block, a head tied to the token embedding, GPT's small embedding init) and a short training run
whose validation loss must fall well below what any context-free model can reach. The figure
against the exact floor is measured by bench/gpt_quality.py."""

import json
from pathlib import Path

import torch

from graph_compiler import build_module, generate
from graph_compiler.analysis import analyze
from server.engine.data.markov_text import chain
from server.engine.trainer import Trainer
from tests.helpers import find_node, set_params
from tests.language_models import lm_doc

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "gpt_mini.json"


def gpt() -> dict:
    return json.loads(EXAMPLE.read_text())


def test_gpt_mini_is_one_repeated_block_with_a_tied_head():
    doc = gpt()
    a = analyze(doc)
    assert a.ok and not a.errors, [e.to_dict() for e in a.errors]
    [block] = [n for n in doc["nodes"] if n["type"] == "Block"]
    assert block["params"]["repeat"] >= 2
    assert a.result("loss").params["class_dim"] == -1  # (B, T, V) logits against (B, T) ids
    model = build_module(doc, seed=0)
    assert model.head.weight is model.token_embedding.weight
    assert "self.head.weight = self.token_embedding.weight" in generate(doc)
    assert a.totals()["params"] == sum(p.numel() for p in model.parameters())


def test_embedding_init_std_draws_small_vectors_and_keeps_the_padding_row_zero():
    doc = set_params(lm_doc(), "emb", init_std=0.02, padding_idx=0)
    source = generate(doc)
    assert "nn.init.normal_(self.emb.weight, std=0.02)" in source
    weight = build_module(doc, seed=0).emb.weight.detach()
    assert torch.all(weight[0] == 0)
    assert 0.015 < float(weight[1:].std()) < 0.025
    default = build_module(lm_doc(), seed=0).emb.weight.detach()
    assert 0.8 < float(default.std()) < 1.2  # PyTorch's N(0, 1) when unset


def test_gpt_mini_learns_the_context_in_a_few_epochs():
    """A few epochs on less data: the validation loss falls far below the unigram entropy (the
    best loss without looking at the context), and stays above the exact floor."""
    doc = gpt()
    find_node(doc, "data")["params"]["samples"] = 1500
    result = Trainer(doc, overrides={"epochs": 5, "device": "cpu"}).run()
    assert result.status == "finished", result.reason
    source = chain(0)
    floor = source.window_floor(find_node(doc, "data")["params"]["seq_len"])
    last = result.history[-1]["val_loss"]
    assert last < source.unigram_entropy() - 0.5, last
    assert last > floor - 0.05  # nothing beats the source itself (small validation noise)
