"""GET /api/examples: the example graphs for the editor's gallery."""

from __future__ import annotations

import json
from pathlib import Path

from tests.server_app import AUTH, make_app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_examples_listed_with_documents(tmp_path):
    client = make_app(tmp_path).test_client()
    r = client.get("/api/examples", headers=AUTH)
    assert r.status_code == 200
    got = r.get_json()["examples"]
    files = sorted(EXAMPLES.glob("*.json"))
    assert [e["file"] for e in got] == [f.name for f in files]
    for entry, path in zip(got, files, strict=True):
        doc = json.loads(path.read_text())
        assert entry["document"] == doc
        assert entry["name"] == (doc.get("name") or path.stem)
        assert isinstance(entry["description"], str)
    # each opens as a project
    made = client.post(
        "/api/projects", json={"name": got[0]["name"], "document": got[0]["document"]}, headers=AUTH
    )
    assert made.status_code == 201


def test_examples_need_the_token(tmp_path):
    client = make_app(tmp_path).test_client()
    assert client.get("/api/examples").status_code == 401


def test_examples_skip_unreadable_files(tmp_path):
    folder = tmp_path / "ex"
    folder.mkdir()
    (folder / "a.json").write_text('{"name": "A", "nodes": []}')
    (folder / "b.json").write_text("not json")
    (folder / "c.json").write_text("[1, 2]")
    client = make_app(tmp_path / "data", examples_dir=folder).test_client()
    got = client.get("/api/examples", headers=AUTH).get_json()["examples"]
    assert [e["name"] for e in got] == ["A"]
