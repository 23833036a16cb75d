"""Inputs that once ended in a 500, a server traceback or a crash later on (issue 11, item 9):
each now gets a specific 4xx, an error reply or a quiet exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graph_compiler.document import MAX_DEPTH, parse_document
from server.extensions import socketio
from server.storage import runs as run_store
from tests.helpers import mlp
from tests.server_app import AUTH, TOKEN

ROOT = Path(__file__).resolve().parent.parent


def nested(depth: int) -> dict:
    top: dict = {}
    inner = top
    for _ in range(depth - 1):
        inner["a"] = {}
        inner = inner["a"]
    return top


def post(client, path: str, body: dict):
    # json.dumps keeps lone surrogates as \ud800 escapes, as a browser's JSON.stringify does
    data = json.dumps(body)
    return client.post(path, data=data, headers={**AUTH, "Content-Type": "application/json"})


BAD_DOCUMENTS = {
    # "²".isdigit() is True, int("²") raises
    "superscript_format": ({**mlp(), "format": "torchloom.graph/²"}, "format_unknown", "format"),
    "huge_format_number": (
        {**mlp(), "format": "torchloom.graph/" + "9" * 5000},
        "format_unknown",
        "format",
    ),
    # pydantic gives up serializing past ~250 levels: validated, then 500 when stored
    # (950 in the issue; 800 here, as pytest's deeper stack makes json.loads give up sooner)
    "deep_ui": ({**mlp(), "ui": nested(800)}, "document_too_deep", "ui"),
    # a NUL cannot be in model.py; a lone surrogate cannot be written as UTF-8
    "nul_description": ({**mlp(), "description": "digits\x00"}, "invalid_text", "description"),
    "surrogate_description": (
        {**mlp(), "description": "digits \ud800"},
        "invalid_text",
        "description",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
def test_unreadable_documents_are_validation_errors_not_500s(client, case):
    doc, code, field = BAD_DOCUMENTS[case]
    r = post(client, "/api/validate", {"document": doc})
    assert r.status_code == 200, r.get_json()
    analysis = r.get_json()
    assert analysis["ok"] is False
    assert (code, field) in {(e["code"], e["field"]) for e in analysis["errors"]}, analysis

    r = post(client, "/api/projects", {"name": "x", "document": doc})
    assert r.status_code == 422, r.get_json()
    details = r.get_json()["error"]["details"]
    assert (code, field) in {(e["code"], e["field"]) for e in details}


def test_depth_limit_names_the_node_and_allows_real_documents():
    doc = mlp()
    doc["nodes"][1]["params"]["units"] = nested(MAX_DEPTH + 5)
    _, problems = parse_document(doc)
    [problem] = problems
    where = (problem.code, problem.node, problem.field)
    assert where == ("document_too_deep", "fc1", "params.units")
    assert str(MAX_DEPTH) in problem.message
    # every example nests far less than the limit
    for path in (ROOT / "examples").glob("*.json"):
        assert parse_document(path.read_text())[0] is not None, path.name


def test_bad_text_in_an_id_or_key_is_named_printably():
    doc = mlp()
    doc["nodes"][1]["id"] = "fc\ud83d"
    doc["nodes"][2]["params"]["bad\x00key"] = 1
    _, problems = parse_document(doc)
    assert {(p.code, p.node, p.field) for p in problems} == {
        ("invalid_text", "fc\\ud83d", "id"),
        ("invalid_text", doc["nodes"][2]["id"], "params"),
    }
    for p in problems:  # printable and storable: the error itself must not fail
        json.dumps(p.to_dict(), ensure_ascii=False).encode("utf-8")
        assert "\x00" not in p.message


# --- Socket.IO ---------------------------------------------------------------------------------


@pytest.fixture
def socket(app):
    services = app.extensions["torchloom"]
    run_store.create(services.db, "r1", "p1", 1, {}, {}, str(services.data.run_dir("r1")))
    client = socketio.test_client(app, auth={"token": TOKEN})
    yield client
    client.disconnect()


@pytest.mark.parametrize(
    "message, says",
    [
        ("r1", "not a string"),
        (["r1"], "not an array"),
        (None, "not null"),
        ({"run_id": 7}, "run_id is an integer"),
        ({"run_id": "r1", "after": True}, "after is a boolean"),  # bool is an int in Python
        ({"run_id": "r1", "after": 2**63}, f"after is {2**63}"),  # past SQLite's integers
        ({"run_id": "r1", "after": -1}, "after is -1"),
        ({"run_id": "r1", "after": 1.5}, "after is a number"),
    ],
)
def test_bad_subscribe_messages_get_an_error_reply(socket, message, says):
    reply = socket.emit("subscribe", message, callback=True)
    assert reply["ok"] is False and says in reply["error"], reply
    assert "run_id" in reply["error"] and "after" in reply["error"]  # says what is expected


def test_good_subscribe_still_replays(socket):
    assert socket.emit("subscribe", {"run_id": "r1", "after": 2**63 - 1}, callback=True) == {
        "ok": True,
        "events": [],
    }
    assert socket.emit("unsubscribe", "r1", callback=True) == {"ok": True}


@pytest.mark.parametrize(
    "message, says",
    [
        ("r1", "generate needs {run_id"),
        ({"run_id": 7, "prompt": "a"}, "run_id"),
        ({"run_id": "r1", "prompt": 5}, "prompt"),
        ({"run_id": "r1", "prompt": "a" * 10_001}, "prompt"),
        ({"run_id": "r1", "prompt": "a", "max_new_tokens": True}, "max_new_tokens"),
        ({"run_id": "r1", "prompt": "a", "temperature": "hot"}, "temperature"),
        ({"run_id": "r1", "prompt": "a", "top_k": 1.5}, "top_k"),
        ({"run_id": "r1", "prompt": "a", "seed": 2**63}, "seed"),
        ({"run_id": "r1", "prompt": "a"}, "exports need a finished or stopped run"),  # queued
        ({"run_id": "r9", "prompt": "a"}, "run r9 does not exist"),
    ],
)
def test_bad_generate_messages_get_an_error_reply(socket, message, says):
    reply = socket.emit("generate", message, callback=True)
    assert reply["ok"] is False and says in reply["error"], reply
    for message in (None, "x", {"id": 5}, {"id": "not-running"}):
        assert socket.emit("generate_stop", message, callback=True) == {"ok": False}


@pytest.mark.parametrize("token", [12345, ["x"], {"t": 1}, True, "\ud800"])
def test_a_non_string_socket_token_is_refused(app, token):
    assert not socketio.test_client(app, auth={"token": token}).is_connected()


# --- the command line --------------------------------------------------------------------------


def test_output_cut_off_by_the_reader_ends_quietly(tmp_path):
    """`torchloom shapes --json … | head`: the reader leaves; no BrokenPipe traceback."""
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(mlp()))
    read_end, write_end = os.pipe()
    os.close(read_end)  # a reader that already left: the first write fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "server.cli", "shapes", "--json", str(graph)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert done.stderr == "", done.stderr
    assert done.returncode == 141  # 128 + SIGPIPE, what the shell reports for `cat | head`
