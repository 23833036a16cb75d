"""No path from a client reaches the engine (issue 11, item 1).

The attack: a graph with an uploaded CSV and `"val_path": "/some/server/file.csv"` trained on
that file, and its values came back in code.zip's data.npz, /predict's input and failure
reasons. Every file param the catalog marks (`Param.file_ref`) is enumerated here, so a future
path-like param cannot be forgotten."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest

from graph_compiler.catalog import CATALOG
from server.engine.data import DataError
from server.engine.data.contain import contain_document
from server.engine.trainer import Trainer
from server.errors import ApiError
from server.storage import datasets as dataset_store
from server.storage import runs as run_store
from tests.helpers import chain, find_node, set_params
from tests.server_app import AUTH

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]

CSV = b"a,b,color,label\n1,2,red,x\n3,4,blue,y\n5,6,red,x\n7,8,blue,y\n9,1,red,y\n2,2,red,x\n"
# a server file the attacker wants: same columns, so the engine would read it happily
SECRET = b"a,b,color,label\n1,2,red,hunter2\n3,4,blue,y\n5,6,red,x\n"
# text params whose names say they name a file: each must carry a file_ref in the catalog
FILE_LIKE = re.compile(r"(path|file|dir|folder|dataset_id)$")


def upload(client, data: bytes = CSV, filename: str = "mine.csv") -> dict:
    r = client.post(
        "/api/datasets",
        data={"file": (io.BytesIO(data), filename)},
        headers=AUTH,
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def graph(dataset_params: dict, **extra) -> dict:
    doc = chain({**dataset_params, **extra}, [("fc", "Linear", {"out_features": 2})])
    set_params(doc, "train", epochs=1, batch_size=4, device="cpu", val_split=0.25)
    return doc


@pytest.fixture
def secret(tmp_path_factory):
    path = tmp_path_factory.mktemp("outside") / "creds.csv"
    path.write_bytes(SECRET)
    return path


# --- the catalog: every file param is marked, resolved and contained ------------------------


def file_params():
    return [(spec, p) for spec in CATALOG.values() for p in spec.params if p.file_ref]


def test_every_param_that_names_a_file_is_marked():
    unmarked = [
        f"{spec.type}.{p.name}"
        for spec in CATALOG.values()
        for p in spec.params
        if p.kind in ("str", "json") and FILE_LIKE.search(p.name) and not p.file_ref
    ]
    assert unmarked == [], "mark these params with file_ref (graph_compiler/catalog/spec.py)"
    kinds = {(spec.type, p.name): p.file_ref for spec, p in file_params()}
    assert kinds == {
        ("Dataset", "dataset_id"): "dataset_id",
        ("Dataset", "path"): "path",
        ("Dataset", "val_dataset_id"): "dataset_id",
        ("Dataset", "val_path"): "path",
    }
    as_json = {p["name"]: p.get("file_ref") for p in CATALOG["Dataset"].to_json()["params"]}
    assert as_json["val_dataset_id"] == "dataset_id" and as_json["val_path"] == "path"


@pytest.mark.parametrize(
    "spec,param",
    [(s, p) for s, p in file_params() if p.file_ref == "path"],
    ids=lambda v: getattr(v, "name", getattr(v, "type", "")),
)
def test_each_path_param_is_refused_from_clients_resolved_and_contained(
    app, client, secret, spec, param
):
    services = app.extensions["torchloom"]
    made = upload(client)
    # the resolver fills it from the dataset-id param that names it ...
    source = spec.param(param.path_from)
    assert source is not None and source.file_ref == "dataset_id", param.path_from
    params = {**made["dataset_params"], param.path_from: made["id"]}
    doc = {"nodes": [{"id": "n1", "type": spec.type, "params": dict(params)}]}
    resolved = dataset_store.resolve_files(services, doc)["nodes"][0]["params"]
    stored = (services.data.datasets_root / f"{made['id']}.csv").resolve()
    assert resolved[param.name] == str(stored)
    # ... refuses it from a client, naming the node and the field ...
    for value in (str(secret), "../../creds.csv", "/dev/zero"):
        doc = {"nodes": [{"id": "n1", "type": spec.type, "params": {**params, param.name: value}}]}
        with pytest.raises(ApiError) as exc:
            dataset_store.resolve_files(services, doc)
        assert exc.value.status == 422 and exc.value.code == "client_path"
        assert "'n1'" in exc.value.message and param.name in exc.value.message
        assert "upload" in exc.value.message
        assert exc.value.details == [{"node": "n1", "field": param.name, "block": None}]
    # ... and the worker's check refuses anything outside the datasets folder, in blocks too
    for value in (str(secret), "relative.csv", str(services.data.root / "torchloom.db")):
        node = {"id": "n1", "type": spec.type, "params": {param.name: value}}
        for doc in ({"nodes": [node]}, {"nodes": [], "blocks": {"B": {"nodes": [node]}}}):
            with pytest.raises(DataError, match=f"'n1'.*{param.name}"):
                contain_document(doc, services.data.datasets_root)
    contain_document(
        {"nodes": [{"id": "n1", "type": spec.type, "params": {param.name: str(stored)}}]},
        services.data.datasets_root,
    )


# --- the attack over HTTP -------------------------------------------------------------------


def _project(client, doc: dict) -> str:
    r = client.post("/api/projects", json={"document": doc}, headers=AUTH)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


@pytest.mark.parametrize("field", ["val_path", "path"])
def test_a_run_with_a_server_path_is_refused_with_a_specific_422(client, secret, field):
    made = upload(client)
    pid = _project(client, graph(made["dataset_params"], **{field: str(secret)}))
    r = client.post(f"/api/projects/{pid}/runs", json={}, headers=AUTH)
    assert r.status_code == 422, r.get_json()
    err = r.get_json()["error"]
    assert err["code"] == "client_path"
    assert "'data'" in err["message"] and field in err["message"]
    assert "upload the file and pick it" in err["message"]
    assert err["details"] == [{"node": "data", "field": field, "block": None}]
    assert "hunter2" not in r.get_data(as_text=True)


def test_an_unknown_validation_dataset_id_is_a_404_naming_the_field(client):
    made = upload(client)
    pid = _project(client, graph(made["dataset_params"], val_dataset_id="ffffffffffffffff"))
    r = client.post(f"/api/projects/{pid}/runs", json={}, headers=AUTH)
    assert r.status_code == 404
    assert "val_dataset_id" in r.get_json()["error"]["message"]


# --- the worker: nothing outside the datasets folder is opened ------------------------------


def _resolved(app, client, **extra) -> tuple[dict, dict]:
    services = app.extensions["torchloom"]
    made = upload(client)
    doc = dataset_store.resolve_files(services, graph(made["dataset_params"], **extra))
    return doc, made


def test_the_worker_refuses_a_path_outside_the_datasets_folder(app, client, secret, tmp_path):
    """What a tampered stored run (or a bug in the web process) would hand the worker."""
    doc, _ = _resolved(app, client)
    set_params(doc, "data", val_path=str(secret))
    root = app.extensions["torchloom"].data.datasets_root
    result = Trainer(doc, out_dir=tmp_path / "run", data_root=root).run()
    assert result.status == "failed" and result.epochs_done == 0
    assert "'data'" in result.reason and "val_path" in result.reason
    assert "hunter2" not in result.reason and str(secret) not in result.reason


def test_a_validation_dataset_picked_by_id_trains_and_errors_show_upload_names(
    app, client, tmp_path
):
    services = app.extensions["torchloom"]
    val = upload(client, b"a,b,color,label\n1,1,red,x\n2,2,blue,y\n", "holdout.csv")
    doc, _ = _resolved(app, client, val_dataset_id=val["id"])
    assert find_node(doc, "data")["params"]["val_path"].endswith(f"{val['id']}.csv")
    result = Trainer(doc, out_dir=tmp_path / "ok", data_root=services.data.datasets_root).run()
    assert result.status == "finished", result.reason
    # a failing read names the user's upload, never the stored path
    bad = upload(client, b"a,b,color,label\n1,1,red,zebra\n2,2,red,x\n", "holdout-bad.csv")
    doc, _ = _resolved(app, client, val_dataset_id=bad["id"])
    names = dataset_store.display_names(services, doc)
    assert names == {f"{bad['id']}.csv": "holdout-bad.csv", **names}
    result = Trainer(
        doc, out_dir=tmp_path / "bad", data_root=services.data.datasets_root, data_names=names
    ).run()
    assert result.status == "failed"
    assert "holdout-bad.csv" in result.reason, result.reason
    assert str(services.data.root) not in result.reason and bad["id"] not in result.reason


# --- exports, predictions and evaluation re-read only contained files -----------------------


def test_code_zip_names_uploads_by_id_never_by_their_server_path(app, client, tmp_path):
    services = app.extensions["torchloom"]
    val = upload(client, b"a,b,color,label\n1,1,red,x\n2,2,blue,y\n", "holdout.csv")
    doc, made = _resolved(app, client, val_dataset_id=val["id"])
    run_id = "00000000000000c2"
    out_dir = services.data.run_dir(run_id)
    result = Trainer(doc, run_id=run_id, out_dir=out_dir).run()
    assert result.status == "finished", result.reason
    run_store.create(services.db, run_id, "project", 1, doc, {}, str(out_dir))
    run_store.update_run(services.db, run_id, status="finished", checkpoint=result.checkpoint)
    r = client.get(f"/api/runs/{run_id}/export/code.zip", headers=AUTH)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    with zipfile.ZipFile(io.BytesIO(r.get_data())) as archive:
        exported = archive.read("graph.json").decode()
    assert str(services.data.root) not in exported
    params = find_node(json.loads(exported), "data")["params"]
    assert params["path"] == params["val_path"] == ""
    assert (params["dataset_id"], params["val_dataset_id"]) == (made["id"], val["id"])


def test_exports_of_a_tampered_run_never_read_the_outside_file(app, client, secret, tmp_path):
    services = app.extensions["torchloom"]
    doc, _ = _resolved(app, client)
    run_id = "00000000000000c1"
    out_dir = services.data.run_dir(run_id)
    result = Trainer(doc, run_id=run_id, out_dir=out_dir).run()
    assert result.status == "finished", result.reason
    run_store.create(services.db, run_id, "project", 1, doc, {}, str(out_dir))
    run_store.update_run(services.db, run_id, status="finished", checkpoint=result.checkpoint)
    # a run stored before the fix: val_path points at a server file
    graph_json = json.loads((out_dir / "graph.json").read_text())
    find_node(graph_json, "data")["params"]["val_path"] = str(secret)
    (out_dir / "graph.json").write_text(json.dumps(graph_json))
    answers = [
        client.get(f"/api/runs/{run_id}/export/code.zip", headers=AUTH),
        client.post(f"/api/runs/{run_id}/predict", json={"index": 0}, headers=AUTH),
        client.get(f"/api/runs/{run_id}/evaluation", headers=AUTH),
    ]
    for r in answers:
        assert r.status_code == 409, r.get_data(as_text=True)[:300]
        assert r.get_json()["error"]["code"] == "data_unavailable"
        assert "val_path" in r.get_json()["error"]["message"]
        body = r.get_data()
        assert b"hunter2" not in body and str(secret).encode() not in body
