"""Weights into a project: upload (.safetensors / .pt, weights_only), key and shape mismatches
listed per node, partial loading only when asked, a run that starts from them, freezing per node
honoured by the engine and by the exported train.py."""

from __future__ import annotations

import io
import json
import os
import types
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save

from graph_compiler import compile_graph
from graph_compiler.weights import (
    WeightsError,
    check,
    compare,
    node_owners,
    read_weights,
)
from server.engine.trainer import Trainer, prepare_document
from server.storage import runs as run_store
from tests.helpers import find_node, mlp, run_unpacked, set_params
from tests.server_app import AUTH, make_app

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def graph(**training) -> dict:
    doc = mlp(training={"epochs": 2, "device": "cpu", "seed": 3, **training})
    find_node(doc, "fc1")["label"] = "Encoder"
    return doc


def model_of(doc: dict, seed: int = 11):
    compiled = compile_graph(prepare_document(doc))
    return compiled, compiled.instantiate(seed=seed)


def pt_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


class _Payload:
    """Unpickling this calls os.mkdir(marker): proof that a file was fully unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


# --- reading and comparing -------------------------------------------------------------------


def test_read_weights_takes_safetensors_pt_and_checkpoint_wrappers():
    _, model = model_of(graph())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for data, name in (
        (save(state), "w.safetensors"),
        (pt_bytes(state), "w.pt"),
        (pt_bytes({"state_dict": state, "epoch": 3}), "ckpt.pt"),
        (pt_bytes({"format": "torchloom.checkpoint/1", "model": state, "step": 4}), "c.pt"),
    ):
        got = read_weights(data, name)
        assert got.keys() == state.keys(), name
        assert all(torch.equal(got[k], state[k]) for k in state), name


def test_read_weights_never_unpickles_code(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(WeightsError) as err:
        read_weights(pt_bytes({"fc1.weight": _Payload(marker)}), "evil.pt")
    assert err.value.code == "bad_weights" and "weights_only" in str(err.value)
    assert not marker.exists()
    with pytest.raises(WeightsError, match="not tensors: epoch"):
        read_weights(pt_bytes({"fc1.weight": torch.zeros(2), "epoch": 3}), "mixed.pt")
    with pytest.raises(WeightsError, match=r"not a readable \.safetensors"):
        read_weights(b"garbage" * 10, "w.safetensors")


def test_mismatches_are_listed_per_node():
    compiled, model = model_of(graph())
    state = dict(model.state_dict())
    owners = node_owners(compiled.attributes)
    given = {k: v.clone() for k, v in state.items()}
    del given["fc2.bias"]
    given["encoder.weight"] = torch.zeros(7, 64)  # fc1 is labelled Encoder: submodule "encoder"
    given["head.weight"] = torch.zeros(3)
    report = compare(state, given, owners)
    assert report.missing == [{"key": "fc2.bias", "node": "fc2", "expected": [10]}]
    assert report.wrong_shape == [
        {"key": "encoder.weight", "node": "fc1", "expected": [32, 64], "got": [7, 64]}
    ]
    assert report.unexpected == [{"key": "head.weight", "node": None, "got": [3]}]
    assert report.by_node() == {
        "fc1": {"wrong_shape": ["encoder.weight"]},
        "fc2": {"missing": ["fc2.bias"]},
        "(no node)": {"unexpected": ["head.weight"]},
    }
    with pytest.raises(WeightsError) as err:
        check(state, given, owners, partial=False)
    message = str(err.value)
    assert "node fc1: encoder.weight: the model expects shape [32, 64], the file has [7, 64]" in (
        message
    )
    assert "node fc2: fc2.bias (shape [10]) is missing from the file" in message
    assert "head.weight is in the file but not in the model" in message
    selected, _ = check(state, given, owners, partial=True)
    assert set(selected) == {"encoder.bias", "fc2.weight"}


# --- the engine ------------------------------------------------------------------------------


def test_engine_starts_from_the_weights_and_keeps_frozen_nodes(tmp_path):
    doc = graph()
    find_node(doc, "fc1")["trainable"] = False
    _, source = model_of(doc, seed=99)
    initial = {k: v.clone() for k, v in source.state_dict().items()}
    (tmp_path / "w.safetensors").write_bytes(save(initial))
    trainer = Trainer(
        doc,
        out_dir=tmp_path / "run",
        overrides={"init_weights": str(tmp_path / "w.safetensors")},
    )
    result = trainer.run()
    assert result.status == "finished", result.reason
    final = load_file(str(tmp_path / "run" / "model.safetensors"))
    # the frozen node kept the uploaded weights exactly; the others trained from them
    assert torch.equal(final["encoder.weight"], initial["encoder.weight"])
    assert torch.equal(final["encoder.bias"], initial["encoder.bias"])
    assert not torch.equal(final["fc2.weight"], initial["fc2.weight"])
    # the uploaded weights, not the seeded init: a run without them ends elsewhere
    plain = Trainer(doc, out_dir=tmp_path / "plain").run()
    assert plain.status == "finished"
    seeded = load_file(str(tmp_path / "plain" / "model.safetensors"))
    assert torch.equal(
        seeded["encoder.weight"],
        trainer.plan.compiled.instantiate(seed=3).state_dict()["encoder.weight"],
    )
    assert not torch.equal(seeded["encoder.weight"], final["encoder.weight"])


def test_engine_refuses_weights_that_do_not_fit_unless_partial(tmp_path):
    doc = graph(epochs=1)
    _, source = model_of(doc)
    state = dict(source.state_dict())
    state["fc2.weight"] = torch.zeros(5, 32)
    (tmp_path / "w.pt").write_bytes(pt_bytes(state))
    failed = Trainer(
        doc, out_dir=tmp_path / "a", overrides={"init_weights": str(tmp_path / "w.pt")}
    ).run()
    assert failed.status == "failed"
    assert "node fc2: fc2.weight: the model expects shape [10, 32], the file has [5, 32]" in (
        failed.reason
    )
    partial = Trainer(
        doc,
        out_dir=tmp_path / "b",
        overrides={"init_weights": str(tmp_path / "w.pt"), "init_partial": True},
    )
    result = partial.run()
    assert result.status == "finished", result.reason
    missing = Trainer(
        doc, out_dir=tmp_path / "c", overrides={"init_weights": str(tmp_path / "nope.pt")}
    ).run()
    assert missing.status == "failed" and "nope.pt" in missing.reason


# --- the server ------------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path):
    app = make_app(tmp_path / "data")
    services = app.extensions["torchloom"]
    queued: list[str] = []
    services.runner = types.SimpleNamespace(
        enqueue=queued.append, position=lambda run_id: None, unrecorded_failure=lambda r: None
    )
    client = app.test_client()
    doc = graph()
    find_node(doc, "fc1")["trainable"] = False
    r = client.post("/api/projects", json={"name": "warm", "document": doc}, headers=AUTH)
    assert r.status_code == 201, r.get_json()
    return types.SimpleNamespace(
        app=app, client=client, services=services, pid=r.get_json()["id"], doc=doc, queued=queued
    )


def upload(server, data: bytes, name: str, **form):
    fields = {"file": (io.BytesIO(data), name), **{k: str(v) for k, v in form.items()}}
    return server.client.post(
        f"/api/projects/{server.pid}/weights",
        data=fields,
        headers=AUTH,
        content_type="multipart/form-data",
    )


def test_upload_lists_mismatches_and_loads_partially_only_when_asked(server):
    _, source = model_of(server.doc)
    state = dict(source.state_dict())
    r = upload(server, pt_bytes(state), "exact.pt")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["tensors"] == 4 and body["report"]["matched"] == 4 and not body["partial"]

    bad = {**state, "fc2.weight": torch.zeros(5, 32), "extra.bias": torch.zeros(2)}
    del bad["encoder.bias"]
    r = upload(server, save(bad), "bad.safetensors")
    assert r.status_code == 422
    err = r.get_json()["error"]
    assert err["code"] == "weights_mismatch"
    assert (
        "node fc2: fc2.weight: the model expects shape [10, 32], the file has [5, 32]"
        in (err["message"])
    )
    assert err["details"]["by_node"] == {
        "fc2": {"wrong_shape": ["fc2.weight"]},
        "fc1": {"missing": ["encoder.bias"]},
        "(no node)": {"unexpected": ["extra.bias"]},
    }
    r = upload(server, save(bad), "bad.safetensors", partial="true")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["tensors"] == 2 and r.get_json()["partial"] is True

    listed = server.client.get(f"/api/projects/{server.pid}/weights", headers=AUTH).get_json()
    assert [w["filename"] for w in listed["weights"]] == ["bad.safetensors", "exact.pt"]


@pytest.mark.parametrize(
    ("data", "name", "status", "code"),
    [
        (b"x" * 40, "w.onnx", 400, "bad_weights"),
        (b"not a zip" * 10, "w.pt", 422, "bad_weights"),
        (b"\x00" * 40, "w.safetensors", 422, "bad_weights"),
    ],
)
def test_upload_refuses_bad_files(server, data, name, status, code):
    r = upload(server, data, name)
    assert r.status_code == status and r.get_json()["error"]["code"] == code


def test_upload_never_unpickles(server, tmp_path):
    marker = tmp_path / "pwned"
    r = upload(server, pt_bytes({"encoder.weight": _Payload(marker)}), "evil.pt")
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "bad_weights"
    assert not marker.exists()


def test_upload_needs_a_file_a_project_and_a_clear_flag(server):
    r = server.client.post(f"/api/projects/{server.pid}/weights", data={}, headers=AUTH)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "missing_file"
    _, source = model_of(server.doc)
    r = upload(server, save(dict(source.state_dict())), "w.safetensors", partial="maybe")
    assert r.status_code == 400 and "partial" in r.get_json()["error"]["message"]
    r = server.client.post(
        "/api/projects/ffffffffffffffff/weights",
        data={"file": (io.BytesIO(b"x"), "w.pt")},
        headers=AUTH,
        content_type="multipart/form-data",
    )
    assert r.status_code == 404


def start(server, **body):
    return server.client.post(f"/api/projects/{server.pid}/runs", json=body, headers=AUTH)


def test_run_rejects_bad_weight_choices(server):
    r = start(server, overrides={"init_weights": "/etc/passwd"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_overrides"
    r = start(server, init_weights="../../x")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_weights_id"
    r = start(server, init_weights="0123456789abcdef")
    assert r.status_code == 404
    assert server.queued == []


def test_a_run_starts_from_uploaded_weights_and_train_py_follows(server, tmp_path):
    """Upload → run (as the worker runs it) → the frozen node ends with the uploaded weights;
    code.zip carries them and its train.py reproduces the run, frozen node included."""
    _, source = model_of(server.doc, seed=123)
    initial = {k: v.clone() for k, v in source.state_dict().items()}
    wid = upload(server, save(initial), "pretrained.safetensors").get_json()["id"]
    r = start(server, init_weights=wid)
    assert r.status_code == 201, r.get_json()
    run = r.get_json()
    assert server.queued == [run["id"]]
    assert run["overrides"] == {"init_weights": "initial.safetensors", "init_partial": False}
    internal = run_store.internal(server.services.db, run["id"])
    out_dir = Path(internal["out_dir"])
    assert (out_dir / "initial.safetensors").is_file()

    trainer = Trainer(  # what server.runner.worker does with the queued run
        internal["document"], run_id=run["id"], out_dir=out_dir, overrides=internal["overrides"]
    )
    result = trainer.run()
    assert result.status == "finished", result.reason
    run_store.update_run(server.services.db, run["id"], status="finished")
    final = load_file(str(out_dir / "model.safetensors"))
    assert torch.equal(final["encoder.weight"], initial["encoder.weight"])

    r = server.client.get(f"/api/runs/{run['id']}/export/code.zip", headers=AUTH)
    assert r.status_code == 200, r.get_json(silent=True)
    folder = tmp_path / "code"
    zipfile.ZipFile(io.BytesIO(r.data)).extractall(folder)
    assert "initial_state_dict.pt" in (folder / "README.md").read_text()
    source_py = (folder / "train.py").read_text()
    assert 'FROZEN = ["encoder"]' in source_py
    done = run_unpacked(folder, "train.py", "--device", "cpu", "--checkpoint-every", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    trained = torch.load(folder / "trained_state_dict.pt", weights_only=True)
    assert torch.equal(trained["encoder.weight"], initial["encoder.weight"])  # frozen
    assert not torch.equal(trained["fc2.weight"], initial["fc2.weight"])  # trained
    for key, value in final.items():  # the same run: the app's final weights
        torch.testing.assert_close(trained[key], value, atol=1e-5, rtol=0)


def test_weights_of_an_older_version_are_checked_against_the_run(server):
    """Weights checked at upload against one version are checked again when a run starts: a
    graph changed since then gets the per-node list, not a failed run."""
    _, source = model_of(server.doc)
    wid = upload(server, save(dict(source.state_dict())), "w.safetensors").get_json()["id"]
    changed = set_params(json.loads(json.dumps(server.doc)), "fc1", out_features=16)
    r = server.client.put(f"/api/projects/{server.pid}", json={"document": changed}, headers=AUTH)
    assert r.status_code == 200, r.get_json()
    r = start(server, init_weights=wid)
    assert r.status_code == 422
    err = r.get_json()["error"]
    assert err["code"] == "weights_mismatch" and "node fc1: encoder.weight" in err["message"]
    assert server.queued == []


def test_upload_is_parsed_outside_the_web_process(server, monkeypatch):
    """The file's tensors never reach the web process: a reader broken here changes nothing
    (the limited child has its own), and nothing of the upload is left beside the result."""
    import graph_compiler.weights as weights_module

    def broken(*_):
        raise AssertionError("weights parsed in the web process")

    monkeypatch.setattr(weights_module, "read_weights", broken)
    _, source = model_of(server.doc)
    r = upload(server, save(dict(source.state_dict())), "exact.safetensors")
    assert r.status_code == 201, r.get_json()
    folder = server.services.data.root / "uploads" / "weights"
    assert sorted(p.suffix for p in folder.iterdir()) == [".json", ".safetensors"]


def test_upload_over_the_readers_memory_limit_is_413_and_leaves_nothing(server, monkeypatch):
    import server.weights_file as weights_file

    monkeypatch.setattr(weights_file, "MEMORY_BYTES", 8 * 2**20)
    big = {"encoder.weight": torch.zeros(64, 2**16)}  # 16 MiB, read into memory by the child
    r = upload(server, save(big), "big.safetensors", partial="true")
    assert r.status_code == 413, r.get_json()
    assert "memory" in r.get_json()["error"]["message"]
    folder = server.services.data.root / "uploads" / "weights"
    assert list(folder.iterdir()) == []
