"""Projects over HTTP: create, list, get, save (a version per save), versions, restore,
duplicate, rename, delete, import, export; examples seeded on first start; JSON errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import cnn, mlp, set_params
from tests.server_app import AUTH, make_app


def make_app_seeded(tmp_path, **kw):
    return make_app(tmp_path, **{"seed_examples": True, **kw})


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MISSING = "0123456789abcdef"


@pytest.fixture
def client(tmp_path):
    return make_app_seeded(tmp_path, seed_examples=False).test_client()


def error(resp) -> dict:
    body = resp.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def create(client, name="My net", doc=None):
    r = client.post("/api/projects", json={"name": name, "document": doc or mlp()}, headers=AUTH)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def nodes_of(doc: dict) -> dict[str, dict]:
    return {n["id"]: n for n in doc["nodes"]}


def test_examples_seeded_on_first_start_only(tmp_path):
    client = make_app_seeded(tmp_path).test_client()
    listed = client.get("/api/projects", headers=AUTH).get_json()["projects"]
    files = sorted(EXAMPLES.glob("*.json"))
    assert len(files) >= 9 and len(listed) == len(files)
    names = {json.loads(f.read_text()).get("name") or f.stem for f in files}
    assert {p["name"] for p in listed} == names
    for p in listed:
        got = client.get(f"/api/projects/{p['id']}", headers=AUTH).get_json()
        assert got["version"] == 1 and got["document"]["nodes"]
        versions = client.get(f"/api/projects/{p['id']}/versions", headers=AUTH).get_json()
        assert versions["versions"][0]["message"] == "example"
    # a second start on the same data dir adds nothing
    again = make_app_seeded(tmp_path).test_client()
    assert len(again.get("/api/projects", headers=AUTH).get_json()["projects"]) == len(files)


def test_create_list_get(client):
    assert client.get("/api/projects", headers=AUTH).get_json() == {"projects": []}
    made = create(client, "  My net  ")
    assert made["name"] == "My net"
    assert made["version"] == 1 and made["document_version"] == 1
    assert made["document"]["name"] == "My net"
    assert set(nodes_of(made["document"])) == set(nodes_of(mlp()))
    listed = client.get("/api/projects", headers=AUTH).get_json()["projects"]
    assert [p["id"] for p in listed] == [made["id"]]
    assert "document" not in listed[0]
    got = client.get(f"/api/projects/{made['id']}", headers=AUTH).get_json()
    assert got == made

    empty = client.post("/api/projects", json={}, headers=AUTH)
    assert empty.status_code == 201
    assert empty.get_json()["name"] == "Untitled"
    assert empty.get_json()["document"]["nodes"] == []


def test_save_versions_restore(client):
    made = create(client)
    pid = made["id"]
    wider = set_params(mlp(), "fc1", out_features=64)
    r = client.put(
        f"/api/projects/{pid}", json={"document": wider, "message": "wider"}, headers=AUTH
    )
    assert r.status_code == 200
    assert r.get_json()["version"] == 2
    r = client.put(f"/api/projects/{pid}", json={"document": cnn(), "name": "CNN"}, headers=AUTH)
    saved = r.get_json()
    assert saved["version"] == 3 and saved["name"] == "CNN"
    assert saved["document"]["name"] == "CNN"

    versions = client.get(f"/api/projects/{pid}/versions", headers=AUTH).get_json()["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [v["message"] for v in versions][1:] == ["wider", "created"]

    v2 = client.get(f"/api/projects/{pid}/versions/2", headers=AUTH).get_json()
    assert v2["document_version"] == 2 and v2["version"] == 3
    assert nodes_of(v2["document"])["fc1"]["params"]["out_features"] == 64
    for missing in (0, 4, 99):
        r = client.get(f"/api/projects/{pid}/versions/{missing}", headers=AUTH)
        assert r.status_code == 404, missing
        assert error(r)["code"] == "not_found"

    r = client.post(f"/api/projects/{pid}/versions/1/restore", headers=AUTH)
    assert r.status_code == 200
    restored = r.get_json()
    assert restored["version"] == 4
    assert nodes_of(restored["document"])["fc1"]["params"]["out_features"] == 32
    versions = client.get(f"/api/projects/{pid}/versions", headers=AUTH).get_json()["versions"]
    assert versions[0] == {**versions[0], "version": 4, "message": "restored version 1"}
    assert client.post(f"/api/projects/{pid}/versions/9/restore", headers=AUTH).status_code == 404
    assert client.post(f"/api/projects/{pid}/versions/0/restore", headers=AUTH).status_code == 404


def test_duplicate_rename_delete(client):
    made = create(client, "Base")
    pid = made["id"]
    r = client.post(f"/api/projects/{pid}/duplicate", headers=AUTH)
    assert r.status_code == 201
    copy = r.get_json()
    assert copy["id"] != pid and copy["name"] == "Base (copy)" and copy["version"] == 1
    assert copy["document"]["nodes"] == made["document"]["nodes"]
    named = client.post(f"/api/projects/{pid}/duplicate", json={"name": "Other"}, headers=AUTH)
    assert named.get_json()["name"] == "Other"

    r = client.patch(f"/api/projects/{pid}", json={"name": "Renamed"}, headers=AUTH)
    assert r.status_code == 200 and r.get_json()["name"] == "Renamed"
    assert r.get_json()["version"] == 1  # a rename is not a new version
    for bad in ("", "   ", "x" * 201, 42, None):
        r = client.patch(f"/api/projects/{pid}", json={"name": bad}, headers=AUTH)
        assert r.status_code == 400, bad
        assert error(r)["code"] == "bad_name"

    assert client.delete(f"/api/projects/{pid}", headers=AUTH).status_code == 204
    r = client.get(f"/api/projects/{pid}", headers=AUTH)
    assert r.status_code == 404 and error(r)["code"] == "not_found"
    assert client.get(f"/api/projects/{pid}/versions", headers=AUTH).status_code == 404
    assert client.delete(f"/api/projects/{pid}", headers=AUTH).status_code == 404
    left = {p["id"] for p in client.get("/api/projects", headers=AUTH).get_json()["projects"]}
    assert pid not in left and copy["id"] in left


def test_import_export(client):
    doc = {**mlp(), "name": "Imported net"}
    r = client.post("/api/projects/import", json=doc, headers=AUTH)
    assert r.status_code == 201
    made = r.get_json()
    assert made["name"] == "Imported net"
    versions = client.get(f"/api/projects/{made['id']}/versions", headers=AUTH).get_json()
    assert versions["versions"][0]["message"] == "imported"

    evil = '../../etc/passwd"; x=\r\nSet-Cookie: a=b'
    client.patch(f"/api/projects/{made['id']}", json={"name": evil}, headers=AUTH)
    r = client.get(f"/api/projects/{made['id']}/export", headers=AUTH)
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    disposition = r.headers["Content-Disposition"]
    m = re.fullmatch(r'attachment; filename="([A-Za-z0-9._-]+)"', disposition)
    assert m, disposition
    assert m.group(1).endswith(".json") and "/" not in m.group(1) and ".." not in m.group(1)
    assert "Set-Cookie" not in r.headers
    exported = json.loads(r.get_data(as_text=True))
    assert exported["nodes"] == made["document"]["nodes"]
    # the export imports back as an equal document
    again = client.post("/api/projects/import", json=exported, headers=AUTH).get_json()
    assert again["document"]["nodes"] == made["document"]["nodes"]
    assert again["document"]["edges"] == made["document"]["edges"]


def test_invalid_documents_are_refused_with_details(client):
    made = create(client)
    pid = made["id"]
    for bad in ({"format": "torchloom.graph/99"}, {"nodes": "x"}, {"nodes": [{"id": 1}]}, [1]):
        r = client.put(f"/api/projects/{pid}", json={"document": bad}, headers=AUTH)
        assert r.status_code == 422, bad
        err = error(r)
        assert err["code"] == "invalid_document"
        assert err["details"] and all("code" in d and "message" in d for d in err["details"])
        assert any(d["severity"] == "error" for d in err["details"])
    assert client.get(f"/api/projects/{pid}", headers=AUTH).get_json()["version"] == 1
    r = client.post("/api/projects", json={"document": {"nodes": 3}}, headers=AUTH)
    assert r.status_code == 422
    r = client.post("/api/projects/import", json={"format": "torchloom.graph/99"}, headers=AUTH)
    assert r.status_code == 422
    r = client.put(f"/api/projects/{pid}", json={"name": "x"}, headers=AUTH)
    assert r.status_code == 400 and error(r)["code"] == "missing_document"
    # an invalid *graph* (bad params) is still a readable document: saved, errors shown later
    r = client.put(
        f"/api/projects/{pid}",
        json={"document": set_params(mlp(), "fc1", out_features=-1)},
        headers=AUTH,
    )
    assert r.status_code == 200


def test_document_size_limit(tmp_path):
    client = make_app_seeded(tmp_path, seed_examples=False, max_document_bytes=4096).test_client()
    made = create(client)
    big = {**mlp(), "description": "x" * 5000}
    r = client.put(f"/api/projects/{made['id']}", json={"document": big}, headers=AUTH)
    assert r.status_code == 413 and error(r)["code"] == "document_too_large"
    r = client.post("/api/projects/import", json=big, headers=AUTH)
    assert r.status_code == 413


def test_missing_project_is_a_json_404(client):
    calls = [
        ("get", f"/api/projects/{MISSING}", None),
        ("put", f"/api/projects/{MISSING}", {"document": mlp()}),
        ("patch", f"/api/projects/{MISSING}", {"name": "x"}),
        ("delete", f"/api/projects/{MISSING}", None),
        ("get", f"/api/projects/{MISSING}/versions", None),
        ("get", f"/api/projects/{MISSING}/versions/1", None),
        ("post", f"/api/projects/{MISSING}/versions/1/restore", None),
        ("post", f"/api/projects/{MISSING}/duplicate", None),
        ("get", f"/api/projects/{MISSING}/export", None),
        ("get", "/api/projects/..%2f..%2fetc", None),
    ]
    for method, url, body in calls:
        kw = {"json": body} if body is not None else {}
        r = getattr(client, method)(url, headers=AUTH, **kw)
        assert r.status_code == 404, (method, url, r.status_code)
        err = error(r)
        assert err["code"] == "not_found" and err["message"]


def test_import_names_a_nameless_file_after_the_file_and_keeps_names_unique(client):
    nameless = {k: v for k, v in mlp().items() if k != "name"}
    r = client.post("/api/projects/import?filename=my%20net.json", json=nameless, headers=AUTH)
    assert r.status_code == 201
    made = r.get_json()
    assert made["name"] == "my net" and made["document"]["name"] == "my net"
    # a name another project has gets a suffix, in the project and in its document
    doc = {**mlp(), "name": "Twice"}
    names = [
        client.post("/api/projects/import", json=doc, headers=AUTH).get_json()["name"]
        for _ in range(3)
    ]
    assert names == ["Twice", "Twice (2)", "Twice (3)"]
    exported = client.get(f"/api/projects/{made['id']}/export", headers=AUTH).get_json()
    again = client.post("/api/projects/import", json=exported, headers=AUTH).get_json()
    assert again["name"] == "my net (2)" and again["document"]["name"] == "my net (2)"
    # no name and no file name: "Imported"; a folder part of the file name is dropped
    assert (
        client.post("/api/projects/import", json=nameless, headers=AUTH).get_json()["name"]
        == "Imported"
    )
    r = client.post("/api/projects/import?filename=a/b\\c.JSON", json=nameless, headers=AUTH)
    assert r.get_json()["name"] == "c"
