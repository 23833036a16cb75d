"""Weight tying: a Linear head sharing an Embedding's weight (Linear.tie_weight) — the generated
model, parameter counts, errors, the safetensors files and ONNX."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from graph_compiler import build_module
from graph_compiler.analysis import analyze
from graph_compiler.codegen import generate
from graph_compiler.weights import savable
from server.engine.trainer import Trainer
from tests.helpers import errors_with, set_params
from tests.language_models import VOCAB, lm_doc, tied_doc

DIM = 24  # lm_doc's embedding_dim


def test_the_generated_model_shares_one_tensor():
    doc = tied_doc()
    source = generate(doc)
    assert "self.head.weight = self.emb.weight" in source
    # after both modules exist
    assert source.index("self.head = nn.Linear") < source.index("self.head.weight =")
    assert "tie_weight" not in source  # a torchloom setting, not a torch argument
    model = build_module(doc, seed=0)
    assert model.head.weight is model.emb.weight
    assert model.head.bias is not None  # bias allowed: the head keeps its own


@pytest.mark.parametrize("bias", [True, False])
def test_the_shared_weight_is_counted_once(bias):
    doc = tied_doc(bias=bias)
    a = analyze(doc)
    assert a.ok, [e.to_dict() for e in a.error_list]
    model = build_module(doc, seed=0)
    unique = sum(p.numel() for p in model.parameters())  # parameters() yields a tensor once
    assert a.totals()["params"] == a.totals()["trainable_params"] == unique
    assert a.result("head").num_params == (VOCAB if bias else 0)
    untied = analyze(set_params(lm_doc(epochs=1, samples=120), "head", bias=bias))
    assert untied.totals()["params"] - a.totals()["params"] == VOCAB * DIM


def test_ties_to_a_missing_node_a_non_embedding_or_another_shape_are_errors():
    [missing] = errors_with(analyze(tied_doc(tie_weight="nope")), "tie_missing")
    assert (missing.node, missing.field) == ("head", "tie_weight") and "'nope'" in missing.message
    [wrong] = errors_with(analyze(tied_doc(tie_weight="loss")), "tie_not_embedding")
    assert "CrossEntropyLoss" in wrong.message
    doc = tied_doc()
    set_params(doc, "emb", num_embeddings=30)  # more rows than the head has outputs
    [shape] = errors_with(analyze(doc), "tie_shape")
    assert f"({VOCAB}, {DIM})" in shape.message and f"(30, {DIM})" in shape.message


def test_safetensors_files_hold_the_tied_weight_under_both_keys(tmp_path):
    model = build_module(tied_doc(), seed=0)
    state = model.state_dict()
    with pytest.raises(RuntimeError):  # why savable exists: safetensors refuses shared memory
        save_file(state, str(tmp_path / "raw.safetensors"))
    save_file(savable(state), str(tmp_path / "w.safetensors"))
    loaded = load_file(str(tmp_path / "w.safetensors"))
    assert torch.equal(loaded["head.weight"], loaded["emb.weight"])
    fresh = build_module(tied_doc(), seed=1)
    fresh.load_state_dict(loaded)
    assert fresh.head.weight is fresh.emb.weight
    assert torch.equal(fresh.head.weight, model.emb.weight)


def test_a_tied_model_trains_and_writes_its_final_weights(tmp_path):
    result = Trainer(tied_doc(), out_dir=tmp_path).run()
    assert result.status == "finished", result.reason
    weights = load_file(str(tmp_path / "model.safetensors"))
    assert torch.equal(weights["head.weight"], weights["emb.weight"])


def test_a_tied_model_exports_to_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    from server.exports.onnx_export import TOLERANCE, _check_and_compare, _export

    model = build_module(tied_doc(), seed=0).eval()
    x = torch.randint(0, VOCAB, (3, 16))
    path = tmp_path / "model.onnx"
    _export(None, model, {"x": x}, ["x"], ["logits"], path)
    report = _check_and_compare(path, model, {"x": x}, ["x"], ["logits"])
    assert report["within_tolerance"] and report["max_abs_diff"] <= TOLERANCE, report
