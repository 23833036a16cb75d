"""The static part of the exported train.py (server/exports/train_py/runtime.py), called directly
as ordinary code and checked against independent references (numpy, hand-computed values); and
the generated train.py carries exactly that code."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from graph_compiler import analyze
from graph_compiler.codegen import model_class_name, model_interface
from server.exports.artifacts import RunFiles
from server.exports.train_py import generate_train_py, runtime
from tests.helpers import mlp

CPU = torch.device("cpu")


# --- split ------------------------------------------------------------------------------------


def test_split_holds_out_the_last_of_a_seeded_permutation():
    x, y = torch.arange(20.0)[:, None], torch.arange(20)
    (xt, yt), (_, yv) = runtime.split(x, y, None, 0.25, seed=3)
    order = torch.randperm(20, generator=torch.Generator().manual_seed(3)).tolist()
    assert yt.tolist() == order[:15] and yv.tolist() == order[15:]
    assert xt[:, 0].long().tolist() == yt.tolist()  # rows stay paired


@pytest.mark.parametrize(("n", "val_split", "n_val"), [(10, 0.01, 1), (10, 0.99, 9), (10, 0.0, 0)])
def test_split_keeps_one_sample_on_each_side(n, val_split, n_val):
    (xt, _), (xv, _) = runtime.split(torch.zeros(n, 2), torch.zeros(n), None, val_split, 0)
    assert (len(xt), len(xv)) == (n - n_val, n_val)


def test_an_explicit_validation_set_wins():
    x, y = torch.ones(4, 1), torch.zeros(4)
    validation = (torch.full((2, 1), 5.0), torch.ones(2))
    train, val = runtime.split(x, y, validation, 0.5, 0)
    assert train[0] is x and val is validation


# --- scaling ----------------------------------------------------------------------------------


def test_standardizer_per_feature_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(50, 4)).astype(np.float32)
    x[:, 2] = 7.0  # a constant feature: std 1
    mean, std = runtime.fit_standardizer(torch.from_numpy(x))
    expected_std = x.astype(np.float64).std(axis=0)
    expected_std[2] = 1.0
    np.testing.assert_allclose(mean.numpy()[0], x.astype(np.float64).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std.numpy()[0], expected_std, rtol=1e-6)
    scaled = runtime.scale(torch.from_numpy(x), (mean, std)).numpy()
    np.testing.assert_allclose(scaled[:, [0, 1, 3]].std(axis=0), 1.0, rtol=1e-4)


def test_standardizer_per_channel_for_images_and_none_for_token_ids():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3, 4, 4)).astype(np.float32)
    mean, std = runtime.fit_standardizer(torch.from_numpy(x))
    assert mean.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(mean.numpy().ravel(), x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(std.numpy().ravel(), x.std(axis=(0, 2, 3)), rtol=1e-5)
    assert runtime.fit_standardizer(torch.zeros(5, 3, dtype=torch.int64)) is None
    assert runtime.fit_standardizer(torch.zeros(5)) is None
    t = torch.ones(2, 2)
    assert runtime.scale(t, None) is t


def test_target_scaler_per_column_matches_numpy():
    y = np.array([[1.0, 10.0], [3.0, 10.0], [8.0, 10.0]], dtype=np.float32)
    mean, std = runtime.fit_target_scaler(torch.from_numpy(y))
    np.testing.assert_allclose(mean.numpy(), y.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), [y[:, 0].std(), 1.0], rtol=1e-6)
    mean1, std1 = runtime.fit_target_scaler(torch.tensor([2.0, 4.0]))
    assert mean1.shape == () and float(mean1) == 3.0 and float(std1) == 1.0


# --- the loss and the model's outputs -----------------------------------------------------------


def test_compute_loss_is_the_weighted_sum_of_its_terms():
    outputs = (torch.tensor([[2.0, 0.0]]),)
    batch = {"x": torch.tensor([[1.0, 1.0]]), "y": torch.tensor([[0.0, 0.0]])}
    losses = [
        ("mse", nn.MSELoss(), 1.0, [("output", 0), ("data", "y")]),  # (4 + 0) / 2 = 2
        ("l1", nn.L1Loss(), 0.5, [("output", 0), ("data", "x")]),  # (1 + 1) / 2 = 1
    ]
    total, parts = runtime.compute_loss(losses, outputs, batch)
    assert float(parts["mse"]) == 2.0 and float(parts["l1"]) == 1.0
    assert float(total) == 2.5


def test_forward_passes_the_model_inputs_by_name_and_always_returns_a_tuple(monkeypatch):
    monkeypatch.setattr(runtime, "MODEL_INPUTS", ("b", "a"))
    batch = {"a": torch.tensor(1.0), "b": torch.tensor(10.0)}
    assert runtime.forward(lambda b, a: b - a, batch) == (torch.tensor(9.0),)
    two = runtime.forward(lambda b, a: (b, a), batch)
    assert two == (torch.tensor(10.0), torch.tensor(1.0))


# --- precision, processes, checkpoints ----------------------------------------------------------


def test_autocast_dtype_follows_the_precision_and_the_device(monkeypatch):
    cuda = torch.device("cuda")
    assert runtime.autocast_dtype("fp32", CPU) == (None, False)
    assert runtime.autocast_dtype("bf16", CPU) == (torch.bfloat16, False)
    assert runtime.autocast_dtype("fp16", CPU) == (torch.bfloat16, False)  # no fp16 on the CPU
    assert runtime.autocast_dtype("fp16", cuda) == (torch.float16, True)  # with a GradScaler
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert runtime.autocast_dtype("bf16", cuda) == (torch.float16, True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert runtime.autocast_dtype("bf16", cuda) == (torch.bfloat16, False)


def test_one_process_needs_no_process_group(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert runtime.setup_processes("cpu") == (0, 1, CPU)
    assert runtime.mean_over_processes(0.25, 1, CPU) == 0.25


def test_a_checkpoint_holds_every_state_dict_and_loads_without_pickles(tmp_path):
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    path = runtime.save_checkpoint(tmp_path / "c", 3, model, optimizer, scheduler, scaler)
    assert path == tmp_path / "c" / "epoch-0003.pt"
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 3 and state["scaler"] is None
    assert torch.equal(state["model"]["weight"], model.weight.detach())
    assert state["scheduler"]["step_size"] == 2 and "param_groups" in state["optimizer"]


# --- validation ---------------------------------------------------------------------------------


def test_evaluate_reports_loss_accuracy_and_regression_figures_in_the_data_units(monkeypatch):
    monkeypatch.setattr(runtime, "MODEL_INPUTS", ("x",))
    monkeypatch.setattr(runtime, "CLASSIFICATION_TERMS", [0])
    monkeypatch.setattr(runtime, "REGRESSION_TERMS", [])
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    losses = [("ce", nn.CrossEntropyLoss(), 1.0, [("output", 0), ("data", "y")])]
    record = runtime.evaluate(nn.Identity(), losses, logits, labels, 2, CPU, "fp32", None)
    expected = float(nn.functional.cross_entropy(logits, labels, reduction="sum")) / 3
    assert record["val_accuracy"] == pytest.approx(2 / 3)
    assert record["val_loss"] == pytest.approx(expected, rel=1e-6)

    monkeypatch.setattr(runtime, "CLASSIFICATION_TERMS", [])
    monkeypatch.setattr(runtime, "REGRESSION_TERMS", [0])
    pred, target = torch.tensor([[0.0], [1.0], [-1.0]]), torch.tensor([[0.5], [1.0], [-2.0]])
    stats = (torch.tensor([10.0]), torch.tensor([2.0]))  # standardized: y = 10 + 2 * t
    losses = [("mse", nn.MSELoss(), 1.0, [("output", 0), ("data", "y")])]
    record = runtime.evaluate(nn.Identity(), losses, pred, target, 8, CPU, "fp32", stats)
    errors = np.abs((pred.numpy() - target.numpy()) * 2.0)  # in the data's units
    assert record["val_mae"] == pytest.approx(float(errors.mean()))
    assert record["val_rmse"] == pytest.approx(float(np.sqrt((errors**2).mean())))


def test_evaluate_reports_pixel_accuracy_and_mean_iou_of_a_per_pixel_classifier(monkeypatch):
    monkeypatch.setattr(runtime, "MODEL_INPUTS", ("x",))
    monkeypatch.setattr(runtime, "CLASSIFICATION_TERMS", [0])
    monkeypatch.setattr(runtime, "REGRESSION_TERMS", [])
    # 2 images of 1×2 pixels, 3 classes: predicted [[0, 1]], [[2, 2]]; targets [[0, 1]], [[2, 1]]
    ids = torch.tensor([[[0, 1]], [[2, 2]]])
    logits = nn.functional.one_hot(ids, 3).permute(0, 3, 1, 2).float()  # (2, 3, 1, 2)
    target = torch.tensor([[[0, 1]], [[2, 1]]])
    losses = [("ce", nn.CrossEntropyLoss(), 1.0, [("output", 0), ("data", "y")])]
    record = runtime.evaluate(nn.Identity(), losses, logits, target, 1, CPU, "fp32", None)
    # IoU: class 0 1/1, class 1 1/2 (one of its two target pixels), class 2 1/2
    assert record["val_accuracy"] == pytest.approx(3 / 4)
    assert record["val_miou"] == pytest.approx((1 + 0.5 + 0.5) / 3)


# --- main, end to end on a tiny problem ----------------------------------------------------------


def test_main_trains_checkpoints_and_saves_the_state_dict_and_its_scaling(
    monkeypatch, tmp_path, capsys
):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g) * 5 + 2
    y = (x[:, 0] > 2).long()
    monkeypatch.setattr(runtime, "load_data", lambda args: (x, y, None))
    monkeypatch.setattr(runtime, "Model", lambda: nn.Linear(3, 2))
    monkeypatch.setattr(
        runtime,
        "make_losses",
        lambda: [("loss", nn.CrossEntropyLoss(), 1.0, [("output", 0), ("data", "y")])],
    )
    monkeypatch.setattr(runtime, "make_optimizer", lambda p: torch.optim.SGD(p, lr=0.5))
    monkeypatch.setattr(runtime, "make_scheduler", lambda *_: None)
    monkeypatch.setattr(runtime, "CLASSIFICATION_TERMS", [0])
    out = tmp_path / "trained.pt"
    paths = ["--checkpoints", str(tmp_path / "ck"), "--step-log", str(tmp_path / "steps.jsonl")]
    runtime.main(
        ["--device", "cpu", "--epochs", "2", "--batch-size", "8", "--out", str(out), *paths]
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "{" in line]
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(0 <= r["val_accuracy"] <= 1 and r["lr"] == 0.5 for r in records)
    assert len((tmp_path / "steps.jsonl").read_text().splitlines()) == 2 * 4  # 32 / 8 per epoch
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["epoch-0001.pt", "epoch-0002.pt"]
    assert set(torch.load(out, weights_only=True)) == {"weight", "bias"}
    stats = json.loads(Path(str(out) + ".preprocess.json").read_text())
    (x_train, _), _ = runtime.split(x, y, None, runtime.VAL_SPLIT, runtime.SEED)
    np.testing.assert_allclose(stats["normalizer"]["mean"][0], x_train.double().mean(0), rtol=1e-5)
    assert stats["target_scaler"] is None


# --- the generated train.py carries this code ---------------------------------------------------


def test_the_generated_train_py_holds_the_runtime_functions_verbatim():
    document = mlp(training={"epochs": 2})
    a = analyze(document)
    files = RunFiles(
        "r", "finished", Path("."), "", document, {"task": "classification"}, Path("w"), ""
    )
    class_name = model_class_name(a)
    source = generate_train_py(files, a, model_interface(a), class_name, False)
    copied = (
        *runtime.BEFORE_CONSTRUCTORS,
        *runtime.AFTER_CONSTRUCTORS,
        *runtime.AFTER_METRICS,
    )
    for function in copied:
        text = inspect.getsource(function)
        if function is runtime.main:
            text = text.replace(
                "model = Model()  # the generator writes model.py's class here",
                f"model = {class_name}()",
            )
        assert text in source, function.__name__
    assert "NotImplementedError" not in source  # the slots' stand-ins stay here
    assert source.count("def load_data(") == source.count("def make_losses(") == 1
