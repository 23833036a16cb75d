"""CrossEntropyLoss / NLLLoss over sequences: (B, T, V) scores against (B, T) ids, the class dim
resolved from the shapes, ignore_index, and a language model's token accuracy and perplexity in
the engine and in the exported train.py."""

import io
import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from graph_compiler.analysis import analyze
from graph_compiler.build import compile_graph
from graph_compiler.plan import build_plan
from server.engine.token_metrics import TokenMetrics
from server.engine.trainer import Trainer
from tests.helpers import chain, codes, edge, errors_with, node, run_unpacked
from tests.language_models import VOCAB, lm_doc


@pytest.mark.parametrize("loss", ["CrossEntropyLoss", "NLLLoss"])
def test_class_dim_is_resolved_from_the_shapes(loss):
    a = analyze(lm_doc(loss=loss))
    assert a.ok, [e.to_dict() for e in a.error_list]
    assert a.result("loss").params["class_dim"] == -1
    # a classifier keeps PyTorch's layout
    classifier = analyze(chain({"source": "digits"}, [("Linear", {"out_features": 10})]))
    assert classifier.ok and classifier.result("loss").params["class_dim"] == 1


@pytest.mark.parametrize(
    "loss",
    [
        torch.nn.CrossEntropyLoss(),
        torch.nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1),
        torch.nn.CrossEntropyLoss(weight=torch.rand(7) + 0.1, ignore_index=2),
        torch.nn.CrossEntropyLoss(reduction="none", ignore_index=0),
        torch.nn.NLLLoss(weight=torch.rand(7) + 0.1),
    ],
)
def test_classes_last_matches_the_loss_over_moved_classes(loss):
    # the loss runs over flattened (N·T, C) rows (fast), and must give what PyTorch gives
    # for the classes in dim 1, gradient included
    from graph_compiler.loss_layout import ClassesLast

    torch.manual_seed(0)
    scores = torch.randn(3, 5, 7, requires_grad=True)
    target = torch.randint(0, 7, (3, 5))
    target[0, 0] = 2  # some ignored positions
    ours = ClassesLast(loss)(scores, target)
    (grad,) = torch.autograd.grad(ours.sum(), scores)
    theirs = loss(scores.movedim(-1, 1), target)
    (want,) = torch.autograd.grad(theirs.sum(), scores)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-6) and torch.allclose(grad, want, atol=1e-6)


def test_targets_that_fit_neither_layout_name_both_shapes():
    doc = lm_doc()
    doc["nodes"].insert(3, node("cut", "Flatten", {}))
    doc["edges"] = [e for e in doc["edges"] if e["source"] != "head"]
    doc["edges"] += [edge("head", "cut"), edge("cut", "loss", target_port="input")]
    a = analyze(doc)
    [e] = errors_with(a, "shape_mismatch")
    assert (e.node, e.field) == ("loss", "target")
    assert "(B, 16)" in e.message and "(B, 352)" in e.message


def test_a_wrong_vocabulary_size_is_a_class_count_error():
    a = analyze(lm_doc(head=20))
    [e] = errors_with(a, "class_count")
    assert "20 class scores" in e.message and "22 classes" in e.message


def test_when_both_layouts_fit_the_user_says_which():
    ambiguous = lm_doc(seq_len=VOCAB)  # (B, 22, 22) against (B, 22)
    a = analyze(ambiguous)
    assert codes(a) == ["cannot_infer"]
    assert errors_with(a, "cannot_infer")[0].field == "class_dim"
    chosen = lm_doc(seq_len=VOCAB, loss_params={"class_dim": -1})
    assert analyze(chosen).ok


@pytest.mark.parametrize("loss", ["CrossEntropyLoss", "NLLLoss"])
def test_the_plans_loss_is_torchs_over_flattened_tokens_with_ignore_index(loss):
    pad = 3
    plan = build_plan(lm_doc(loss=loss, loss_params={"ignore_index": pad}))
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, VOCAB, (4, 16), generator=g)
    y = torch.randint(0, VOCAB, (4, 16), generator=g)
    y[:, :5] = pad  # padding contributes nothing
    batch = {"x": x, "y": y}
    outputs = plan.forward(batch)
    got, _ = plan.compute_loss(outputs, batch)
    scores = outputs[0].reshape(-1, VOCAB)
    fn = F.nll_loss if loss == "NLLLoss" else F.cross_entropy
    expected = fn(scores, y.reshape(-1), ignore_index=pad)
    torch.testing.assert_close(got, expected)
    # ...which differs from a loss that counts the padding
    assert not torch.allclose(got, fn(scores, y.reshape(-1)))


def test_token_metrics_match_hand_written_torch():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 7, 5, generator=g)
    target = torch.randint(0, 5, (3, 7), generator=g)
    target[0, :3] = 0  # ignore_index 0: the pad id
    keep = target != 0
    m = TokenMetrics(torch.device("cpu"), class_dim=-1, ignore_index=0)
    m.update(logits[:2], target[:2])
    m.update(logits[2:], target[2:])
    got = m.compute()
    ce = F.cross_entropy(logits.reshape(-1, 5), target.reshape(-1), ignore_index=0)
    assert got["perplexity"] == pytest.approx(math.exp(float(ce)), rel=1e-6)
    correct = ((logits.argmax(-1) == target) & keep).sum() / keep.sum()
    assert got["accuracy"] == pytest.approx(float(correct))
    # the same scores in PyTorch's layout (class dim 1) give the same figures
    first = TokenMetrics(torch.device("cpu"), class_dim=1, ignore_index=0)
    first.update(logits.movedim(-1, 1), target)
    assert first.compute() == pytest.approx(got)


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm_run")
    doc = lm_doc(epochs=3, loss_params={"label_smoothing": 0.0})
    result = Trainer(doc, out_dir=out).run()
    assert result.status == "finished", result.reason
    return doc, result, out


def test_a_language_model_trains_and_reports_perplexity(lm_run):
    _, result, out = lm_run
    first, last = result.history[0], result.history[-1]
    for record in result.history:
        # every validation window is full: the mean per sample is the mean per token
        assert record["val_perplexity"] == pytest.approx(math.exp(record["val_loss"]), rel=1e-5)
        assert 0 <= record["val_accuracy"] <= 1
    assert last["val_loss"] < first["val_loss"]
    assert last["val_perplexity"] < VOCAB  # better than a uniform guess
    assert (out / "tokenizer.json").is_file()


def test_exported_train_py_reproduces_the_language_model_figures(lm_run):
    from server.exports.artifacts import build_run_model, run_files
    from server.exports.package import build_zip

    _, result, out = lm_run
    files = run_files({"id": "lm", "status": "finished"}, out)
    rm = build_run_model(files, allow_custom_code=False)
    data = build_zip(files, rm.analysis, rm.interface, rm.class_name, out)
    folder = out / "code"
    zipfile.ZipFile(io.BytesIO(data)).extractall(folder)
    text = (folder / "train.py").read_text()
    assert "ClassesLast(nn.CrossEntropyLoss(" in text and "class TokenMetrics" in text
    ruff = Path(sys.executable).parent / "ruff"
    project = Path(__file__).resolve().parent.parent / "pyproject.toml"
    for config in ([], ["--config", str(project)]):
        linted = subprocess.run(
            [str(ruff), "check", "--no-cache", *config, "train.py"],
            cwd=folder,
            capture_output=True,
            text=True,
        )
        assert linted.returncode == 0, linted.stdout + linted.stderr
    done = run_unpacked(folder, "train.py", "--device", "cpu", "--epochs", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    final = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")][-1]
    expected = result.history[-1]
    for key in ("val_loss", "val_accuracy", "val_perplexity"):
        assert final[key] == pytest.approx(expected[key], abs=1e-4), key


def test_compiled_graph_keeps_the_loss_out_of_model_py():
    compiled = compile_graph(lm_doc())
    assert "movedim" not in compiled.source  # the loss lives in the plan / train.py
