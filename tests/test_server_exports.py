"""Exports of a finished run over HTTP: state_dict.pt, model.safetensors, code.zip (with a
standalone train.py that runs), model.onnx (checked, compared with onnxruntime, dynamic batch),
predictions; 409 for runs without weights, 404/400 for unknown names and traversal, and no
checkpoint ever unpickled beyond weights_only."""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_safetensors

from graph_compiler import analyze, compile_graph
from graph_compiler.codegen import model_class_name, model_interface
from graph_compiler.plan import build_plan
from server.app import create_app
from server.config import ServerConfig
from server.engine.data import load_data, split
from server.engine.trainer import Trainer
from server.storage import runs as store
from tests.helpers import add, edge, mlp, node
from tests.run_folders import fabricated_run

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TOKEN = "export-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RUN = "0123456789abcdef"
STOPPED = "00000000000005a0"
QUEUED = "00000000000000a1"


def _app(data_dir: Path, **kw):
    cfg = ServerConfig(
        data_dir=data_dir, token=TOKEN, start_runner=False, seed_examples=False, **kw
    )
    return create_app(cfg)


def _insert(services, run_id: str, document: dict, status: str, checkpoint=None) -> None:
    out_dir = services.data.run_dir(run_id)
    store.create(services.db, run_id, "project", 1, document, {}, str(out_dir))
    store.update_run(services.db, run_id, status=status, checkpoint=checkpoint)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """One tiny finished run (digits MLP, one epoch, CPU), a stopped copy of it without the final
    weights, and a queued run with no folder at all."""
    data_dir = tmp_path_factory.mktemp("exports")
    app = _app(data_dir)
    services = app.extensions["torchloom"]
    document = json.loads((EXAMPLES / "digits_mlp.json").read_text())
    trainer = Trainer(
        document,
        run_id=RUN,
        out_dir=services.data.run_dir(RUN),
        overrides={"epochs": 1, "device": "cpu"},
    )
    result = trainer.run()
    assert result.status == "finished", result.reason
    _insert(services, RUN, document, "finished", result.checkpoint)

    stopped_dir = services.data.run_dir(STOPPED)
    shutil.copytree(services.data.run_dir(RUN), stopped_dir)
    (stopped_dir / "model.safetensors").unlink()
    _insert(services, STOPPED, document, "stopped", result.checkpoint)
    _insert(services, QUEUED, document, "queued")

    model = trainer.plan.model.cpu().eval()
    raw = trainer.raw_document
    loaded = load_data(next(n for n in raw["nodes"] if n["type"] == "Dataset")["params"])
    _, (x_val, y_val) = split(loaded, trainer.settings["val_split"], trainer.settings["seed"])
    return {
        "app": app,
        "client": app.test_client(),
        "services": services,
        "folder": services.data.run_dir(RUN),
        "model": model,
        "history": result.history,
        "x_val": x_val,
        "y_val": y_val,
        "normalizer": trainer.normalizer,
        "tmp": tmp_path_factory.mktemp("unzipped"),
    }


def get(env, path: str):
    return env["client"].get(path, headers=AUTH)


def error(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


@pytest.fixture(scope="module")
def unzipped(env) -> Path:
    r = get(env, f"/api/runs/{RUN}/export/code.zip")
    assert r.status_code == 200, r.get_json(silent=True)
    assert r.mimetype == "application/zip"
    target = env["tmp"] / "code"
    zipfile.ZipFile(io.BytesIO(r.data)).extractall(target)
    return target


def import_model_class(folder: Path):
    spec = importlib.util.spec_from_file_location(
        f"exported_model_{id(folder)}", folder / "model.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DigitsMLP


def outputs_of(model, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


# --- weights ------------------------------------------------------------------------------------


def test_weights_load_into_the_exported_model_class_and_match_the_run(env, unzipped):
    cls = import_model_class(unzipped)
    x = env["normalizer"].apply(env["x_val"][:32])
    expected = outputs_of(env["model"], x)

    r = get(env, f"/api/runs/{RUN}/export/state_dict.pt")
    assert r.status_code == 200
    disposition = r.headers["Content-Disposition"]
    assert (
        disposition.startswith("attachment;") and "Digits_MLP-01234567-state_dict.pt" in disposition
    )
    state = torch.load(io.BytesIO(r.data), weights_only=True)
    assert set(state) == set(env["model"].state_dict())
    fresh = cls()
    fresh.load_state_dict(state)
    assert torch.equal(outputs_of(fresh, x), expected)

    r = get(env, f"/api/runs/{RUN}/export/model.safetensors")
    assert r.status_code == 200
    assert "Digits_MLP-01234567-model.safetensors" in r.headers["Content-Disposition"]
    fresh = cls()
    fresh.load_state_dict(load_safetensors(r.data))
    assert torch.equal(outputs_of(fresh, x), expected)


def test_a_stopped_run_exports_its_latest_checkpoint(env):
    r = get(env, f"/api/runs/{STOPPED}/export/model.safetensors")
    assert r.status_code == 200, r.get_json(silent=True)
    state = load_safetensors(r.data)
    for key, value in env["model"].state_dict().items():
        assert torch.equal(state[key], value), key
    r = get(env, f"/api/runs/{STOPPED}/export/state_dict.pt")
    assert r.status_code == 200
    assert set(torch.load(io.BytesIO(r.data), weights_only=True)) == set(state)


# --- code.zip ------------------------------------------------------------------------------------


def test_code_zip_holds_the_run_files(env, unzipped):
    folder = env["folder"]
    names = {p.name for p in unzipped.iterdir()}
    assert names == {"model.py", "graph.json", "preprocess.json", "README.md", "train.py"}
    for name in ("model.py", "graph.json", "preprocess.json"):
        assert (unzipped / name).read_bytes() == (folder / name).read_bytes(), name
    readme = (unzipped / "README.md").read_text()
    assert (
        "preprocess.json" in readme and "load_state_dict" in readme and "(x - mean) / std" in readme
    )


def test_train_py_imports_nothing_from_torchloom(unzipped):
    tree = ast.parse((unzipped / "train.py").read_text())
    imported = set()
    for item in ast.walk(tree):
        if isinstance(item, ast.Import):
            imported |= {a.name.split(".")[0] for a in item.names}
        elif isinstance(item, ast.ImportFrom):
            imported.add((item.module or "").split(".")[0])
    standard = {"__future__", "argparse", "gc", "json", "math", "os", "time", "pathlib"}
    allowed = standard | {"numpy", "torch"}
    assert imported <= allowed | {"sklearn", "model"}, imported


def _run_script(folder: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_train_py_help_and_one_epoch_reproduce_the_run(env, unzipped):
    done = _run_script(unzipped, "--help")
    assert done.returncode == 0, done.stderr
    assert "--epochs" in done.stdout and "--out" in done.stdout

    done = _run_script(unzipped, "--epochs", "1", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["epoch"] for r in records] == [1]
    engine = env["history"][0]
    # the same data, split, normalization, init, order and optimizer: the same numbers (CPU)
    assert records[0]["train_loss"] == pytest.approx(engine["train_loss"], rel=1e-5)
    assert records[0]["val_loss"] == pytest.approx(engine["val_loss"], rel=1e-5)
    assert records[0]["val_accuracy"] == pytest.approx(engine["val_accuracy"], abs=1e-9)
    saved = torch.load(unzipped / "trained_state_dict.pt", weights_only=True)
    import_model_class(unzipped)().load_state_dict(saved)
    stats = json.loads((unzipped / "trained_state_dict.pt.preprocess.json").read_text())
    expected_mean = json.loads((unzipped / "preprocess.json").read_text())["normalizer"]["mean"]
    assert np.allclose(stats["normalizer"]["mean"], expected_mean)


# --- ONNX ----------------------------------------------------------------------------------------


def test_onnx_export_is_checked_compared_and_has_a_dynamic_batch(env):
    import onnx
    import onnxruntime as ort

    r = get(env, f"/api/runs/{RUN}/export/model.onnx")
    assert r.status_code == 200, r.get_json(silent=True)
    assert "Digits_MLP-01234567-model.onnx" in r.headers["Content-Disposition"]
    opset = int(r.headers["X-Torchloom-Opset"])
    diff = float(r.headers["X-Torchloom-Onnx-Max-Abs-Diff"])
    assert opset >= 17 and 0 <= diff <= 1e-4
    proto = onnx.load_from_string(r.data)
    onnx.checker.check_model(proto, full_check=True)
    assert (env["folder"] / "exports" / "model.onnx").read_bytes() == r.data

    session = ort.InferenceSession(r.data, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x"]
    for batch in (1, 7):
        x = env["normalizer"].apply(env["x_val"][:batch])
        (got,) = session.run(None, {"x": x.numpy()})
        expected = outputs_of(env["model"], x).numpy()
        assert got.shape == expected.shape == (batch, 10)
        assert np.abs(got - expected).max() <= 1e-4

    side = get(env, f"/api/runs/{RUN}/export/model.onnx.json")
    assert side.status_code == 200
    report = side.get_json()
    assert {"opset", "max_abs_diff", "samples", "input_names", "output_names"} <= set(report)
    assert report["opset"] == opset and report["max_abs_diff"] == diff
    assert report["samples"] == 64 and report["sample_source"] == "validation"
    assert report["input_names"] == ["x"] and report["output_names"] == ["fc3"]

    written = (env["folder"] / "exports" / "model.onnx").stat().st_mtime_ns
    again = get(env, f"/api/runs/{RUN}/export/model.onnx")  # cached now: no second export
    assert again.status_code == 200 and again.data == r.data
    assert (env["folder"] / "exports" / "model.onnx").stat().st_mtime_ns == written


def _fabricated_run(app, run_id: str, document: dict, *, allow_custom_code=False) -> Path:
    return fabricated_run(app, run_id, document, allow_custom_code=allow_custom_code)[0]


def test_an_untraceable_custom_layer_is_a_422_naming_the_node(tmp_path):
    app = _app(tmp_path, allow_custom_code=True)
    code = (
        'if x.device.type == "meta":\n'
        "    return x\n"
        "if x.sum().item() > 0:\n"
        "    return x * 2\n"
        "return x - 1"
    )
    doc = mlp()
    add(doc, node("branchy", "CustomLayer", {"code": code, "parameters": []}, label="Branchy"))
    for e in doc["edges"]:
        if e["source"] == "fc2":
            e["source"] = "branchy"
    add(doc, edge("fc2", "branchy", "out", "x"))
    _fabricated_run(app, "00000000000000cc", doc, allow_custom_code=True)
    client = app.test_client()
    r = client.get("/api/runs/00000000000000cc/export/model.onnx", headers=AUTH)
    assert r.status_code == 422, r.get_json()
    err = error(r)
    assert err["code"] == "not_traceable"
    assert '"Branchy" (branchy)' in err["message"]
    assert err["details"]["nodes"][0]["node"] == "branchy"
    # the failure is remembered for these weights: the sidecar answers the same at once
    side = client.get("/api/runs/00000000000000cc/export/model.onnx.json", headers=AUTH)
    assert side.status_code == 422 and error(side)["code"] == "not_traceable"
    # the other exports still work
    r = client.get("/api/runs/00000000000000cc/export/model.safetensors", headers=AUTH)
    assert r.status_code == 200


def test_a_model_that_fails_when_run_says_so_instead_of_blaming_tracing(tmp_path):
    """The custom layer traces on its own, but what it returns breaks the next layer on real
    data: the eager forward's error is the reason (it was swallowed by `except: pass`)."""
    app = _app(tmp_path, allow_custom_code=True)
    code = 'if x.device.type == "meta":\n    return x\nreturn x[:, :1]'
    doc = mlp()
    add(doc, node("narrow", "CustomLayer", {"code": code, "parameters": []}, label="Narrow"))
    for e in doc["edges"]:
        if e["source"] == "fc1" and e["target"] != "narrow":
            e["source"] = "narrow"
    add(doc, edge("fc1", "narrow", "out", "x"))
    _fabricated_run(app, "00000000000000cd", doc, allow_custom_code=True)
    r = app.test_client().get("/api/runs/00000000000000cd/export/model.onnx", headers=AUTH)
    assert r.status_code == 422, r.get_json()
    err = error(r)
    assert err["code"] == "model_fails", err
    assert "fails on its validation samples" in err["message"]
    assert "narrow" in err["message"] and "mat1 and mat2" in err["message"]


def test_generated_data_ships_as_data_npz_and_trains(tmp_path):
    app = _app(tmp_path)
    doc = mlp(training={"epochs": 2})
    data = next(n for n in doc["nodes"] if n["type"] == "Dataset")
    data["params"] = {"source": "moons", "samples": 300}
    for n in doc["nodes"]:
        if n["id"] == "fc2":
            n["params"]["out_features"] = 2
    _fabricated_run(app, "00000000000000dd", doc)
    r = app.test_client().get("/api/runs/00000000000000dd/export/code.zip", headers=AUTH)
    assert r.status_code == 200, r.get_json(silent=True)
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(r.data)).extractall(folder)
    with np.load(folder / "data.npz") as npz:
        loaded = load_data({"source": "moons", "samples": 300})
        assert np.array_equal(npz["x"], loaded.x.numpy())
        assert np.array_equal(npz["y"], loaded.y.numpy())
    assert "moons generator" in (folder / "train.py").read_text()
    done = _run_script(folder, "--epochs", "1", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert '"epoch": 1' in done.stdout


def test_scheduler_sizes_follow_the_epochs_as_the_compiler_infers_them():
    from server.exports.artifacts import RunFiles
    from server.exports.package import generate_train_py

    doc = mlp(training={"epochs": 4})
    add(
        doc,
        node("warm", "LinearLR", {"total_iters": 2}),
        node("cos", "CosineAnnealingLR", {"interval": "step"}),
        node("seq", "SequentialLR", {"milestone": 3, "interval": "step"}),
        edge("opt", "warm", "optimizer", "optimizer"),
        edge("opt", "cos", "optimizer", "optimizer"),
        edge("warm", "seq", "scheduler", "first"),
        edge("cos", "seq", "scheduler", "then"),
    )
    one_cycle = mlp(scheduler="OneCycleLR", training={"epochs": 3})
    for document, inner in ((doc, lambda s: s._schedulers[1].T_max), (one_cycle, None)):
        a = analyze(document)
        assert a.ok, a.error_list
        files = RunFiles(
            "r", "finished", Path("."), "", document, {"task": "classification"}, Path("w"), ""
        )
        source = generate_train_py(files, a, model_interface(a), model_class_name(a), False)
        start = source.index("def make_scheduler")
        namespace: dict = {}
        exec(
            "import torch\nfrom torch.optim import lr_scheduler\n"
            + source[start : source.index("def forward")],
            namespace,
        )
        for epochs, per_epoch in ((a.settings["epochs"], 23), (7, 5)):
            optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
            ours = namespace["make_scheduler"](optimizer, epochs, per_epoch)
            document["nodes"] = [
                {**n, "params": {**n["params"], "epochs": epochs}} if n["type"] == "Training" else n
                for n in document["nodes"]
            ]
            plan = build_plan(compile_graph(document), steps_per_epoch=per_epoch)
            assert type(ours) is type(plan.scheduler)
            if inner is not None:
                assert inner(ours) == inner(plan.scheduler)
            else:
                assert ours.total_steps == plan.scheduler.total_steps == epochs * per_epoch


# --- predictions ---------------------------------------------------------------------------------


def predict(env, body, run_id=RUN):
    return env["client"].post(f"/api/runs/{run_id}/predict", json=body, headers=AUTH)


def test_predict_a_validation_sample_by_index(env):
    r = predict(env, {"index": 5})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    x = env["normalizer"].apply(env["x_val"][5:6])
    expected = outputs_of(env["model"], x)[0]
    assert np.allclose(body["outputs"][0], expected.tolist(), atol=1e-6)
    assert body["prediction"] == int(expected.argmax())
    assert body["true"] == int(env["y_val"][5])
    assert len(body["probabilities"]) == 10 and sum(body["probabilities"]) == pytest.approx(1.0)
    assert body["class_names"] == [str(i) for i in range(10)]
    assert body["task"] == "classification" and body["index"] == 5


def test_predict_the_first_sample_and_get_its_raw_input_back(env):
    body = predict(env, {"index": 0}).get_json()
    assert body["index"] == 0 and body["true"] == int(env["y_val"][0])
    assert np.allclose(body["input"], env["x_val"][0].tolist())
    resent = predict(env, {"input": body["input"]}).get_json()
    assert np.allclose(resent["outputs"][0], body["outputs"][0], atol=1e-6)


def test_predict_raw_input_is_normalized_like_the_run(env):
    raw = env["x_val"][5].tolist()
    by_input = predict(env, {"input": raw}).get_json()
    by_index = predict(env, {"index": 5}).get_json()
    assert np.allclose(by_input["outputs"][0], by_index["outputs"][0], atol=1e-6)
    assert by_input["prediction"] == by_index["prediction"]
    assert "true" not in by_input


def test_predict_a_random_sample(env):
    body = predict(env, {"random": True}).get_json()
    n = len(env["x_val"])
    assert 0 <= body["index"] < n
    assert body["true"] == int(env["y_val"][body["index"]])
    assert isinstance(body["prediction"], int)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"input": [1.0, 2.0]}, "bad_input_shape"),
        ({"input": [[0.0] * 64]}, "bad_input_shape"),
        ({"input": [[1, 2], [3]]}, "bad_input"),
        ({"input": ["a"] * 64}, "bad_input"),
        ({"index": 10**6}, "index_out_of_range"),
        ({"index": -1}, "index_out_of_range"),
        ({"index": "3"}, "bad_index"),
        ({"index": 1, "random": True}, "bad_predict_request"),
        ({}, "bad_predict_request"),
    ],
)
def test_predict_rejects_bad_requests(env, body, code):
    r = predict(env, body)
    assert r.status_code == 400, r.get_json()
    err = error(r)
    assert err["code"] == code, err
    if code == "bad_input_shape":
        assert err["details"]["expected"] == [64]
        assert "[64]" in err["message"]


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["state_dict.pt", "model.safetensors", "code.zip", "model.onnx", "model.onnx.json"]
)
def test_a_queued_run_has_nothing_to_export(env, name):
    r = get(env, f"/api/runs/{QUEUED}/export/{name}")
    assert r.status_code == 409
    assert error(r)["code"] == "run_not_exportable"
    assert "queued" in error(r)["message"]


def test_a_queued_run_cannot_predict(env):
    r = predict(env, {"index": 0}, run_id=QUEUED)
    assert r.status_code == 409


def test_a_stopped_run_without_checkpoints_is_a_409(env):
    run_id = "00000000000000ee"
    services = env["services"]
    folder = services.data.run_dir(run_id)
    folder.mkdir()
    for name in ("model.py", "graph.json", "preprocess.json"):
        shutil.copy(env["folder"] / name, folder / name)
    _insert(services, run_id, {"nodes": []}, "stopped")
    r = get(env, f"/api/runs/{run_id}/export/model.safetensors")
    assert r.status_code == 409 and error(r)["code"] == "no_weights"


def test_unknown_runs_and_exports_are_404(env):
    assert get(env, f"/api/runs/{RUN}/export/weights.bin").status_code == 404
    assert error(get(env, f"/api/runs/{RUN}/export/graph.json"))["code"] == "unknown_export"
    assert get(env, "/api/runs/ffffffffffffffff/export/code.zip").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        f"/api/runs/{RUN}/export/../../torchloom.db",
        f"/api/runs/{RUN}/export/..%2f..%2ftorchloom.db",
        f"/api/runs/{RUN}/export/%2e%2e",
        f"/api/runs/{RUN}/export/%2e%2e%2fmodel.py",
        f"/api/runs/{RUN}/export/model.onnx%00",
        f"/api/runs/{RUN}/export/model.py",
        f"/api/runs/{RUN}/export/preprocess.json",
        "/api/runs/..%2f..%2f/export/state_dict.pt",
        "/api/runs/%2e%2e/export/code.zip",
        "/api/runs/..%00/export/code.zip",
        f"/api/runs/{RUN}%2f..%2f{STOPPED}/export/code.zip",
    ],
)
def test_traversal_never_reaches_a_file(env, path):
    r = get(env, path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert b"SQLite" not in r.data and b"class DigitsMLP" not in r.data


class _Payload:
    """Unpickling this calls os.mkdir(marker): proof that a checkpoint was fully unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_payload_in_a_checkpoint_is_never_executed(env, tmp_path):
    run_id = "00000000000000ff"
    services = env["services"]
    folder = services.data.run_dir(run_id)
    folder.mkdir()
    for name in ("model.py", "graph.json", "preprocess.json"):
        shutil.copy(env["folder"] / name, folder / name)
    marker = tmp_path / "pwned"
    (folder / "checkpoints").mkdir()
    torch.save(
        {"format": "torchloom.checkpoint/1", "model": _Payload(marker)},
        folder / "checkpoints" / "epoch-0001.pt",
    )
    _insert(services, run_id, {"nodes": []}, "stopped")
    for name in ("state_dict.pt", "model.safetensors", "model.onnx", "code.zip"):
        r = get(env, f"/api/runs/{run_id}/export/{name}")
        assert r.status_code == 409, (name, r.get_json())
        assert error(r)["code"] == "bad_checkpoint"
    assert predict(env, {"index": 0}, run_id=run_id).status_code == 409
    assert not marker.exists()


def test_every_torch_load_in_the_server_is_weights_only():
    calls = []
    for path in sorted((ROOT / "server").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for item in ast.walk(tree):
            if not isinstance(item, ast.Call):
                continue
            func = item.func
            name = (
                f"{func.value.id}.{func.attr}"
                if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                else getattr(func, "id", "")
            )
            if name in ("torch.load", "pickle.load", "pickle.loads"):
                safe = any(
                    k.arg == "weights_only"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is True
                    for k in item.keywords
                )
                calls.append((f"{path.relative_to(ROOT)}:{item.lineno}", name, safe))
    assert calls, "expected at least the checkpoint loader"
    unsafe = [c for c in calls if not c[2]]
    assert not unsafe, unsafe
