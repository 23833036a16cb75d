"""The analysis processes under hostile or stuck work: user code that patches modules never
changes another graph's answer (its process is retired), a task past the time limit has its
process killed and replaced, every failure logs a line, and the processes watch the server."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest
import torch

from server.analysis_pool import AnalysisPool, AnalysisTimeout
from tests.helpers import chain
from tests.server_app import AUTH, make_app

# forward code of a CustomLayer that patches torch and the compiler for the whole process
PATCHING_CODE = """import torch
torch.nn.Linear.forward = lambda self, input: input
import graph_compiler.codegen as codegen
codegen._Generator.source = lambda self: "# patched"
return x * 2"""


def custom_graph(code: str) -> dict:
    doc = chain(
        "digits",
        [
            ("cl", "CustomLayer", {"code": code, "parameters": []}),
            ("fc", "Linear", {"out_features": 10}),
        ],
    )
    doc["edges"][0]["target_port"] = "x"
    return doc


def unrelated_graph(width: int) -> dict:
    return chain(
        "digits",
        [("fc1", "Linear", {"out_features": width}), ("fc2", "Linear", {"out_features": 10})],
    )


def answers(client, doc: dict) -> tuple:
    validated = client.post("/api/validate", json={"document": doc}, headers=AUTH)
    generated = client.post("/api/codegen", json={"document": doc}, headers=AUTH)
    return validated.status_code, validated.get_json(), generated.status_code, generated.get_json()


def test_custom_code_that_patches_modules_leaves_other_graphs_answers_alone(tmp_path):
    """Before: the one shared process kept the patches, and every later answer changed (the MLP
    read as 64 class scores, code generation gave "# patched")."""
    inline = make_app(tmp_path / "inline").test_client()  # the reference: no user code ever ran
    app = make_app(tmp_path / "custom", allow_custom_code=True)  # one analysis process
    try:
        client = app.test_client()
        for width in (37, 41, 43):  # widths no earlier analysis cached
            r = client.post(
                "/api/validate", json={"document": custom_graph(PATCHING_CODE)}, headers=AUTH
            )
            assert r.status_code == 200 and r.json["ok"], r.json  # the patch ran (and was allowed)
            got = answers(client, unrelated_graph(width))
            assert got == answers(inline, unrelated_graph(width))
            assert got[3]["source"] != "# patched" and "class_count" not in str(got[1]["errors"])
    finally:
        app.extensions["torchloom"].analysis.close()


def test_a_custom_layer_that_never_returns_is_stopped_and_the_server_keeps_answering(tmp_path):
    app = make_app(tmp_path / "loop", allow_custom_code=True, analysis_timeout=8)
    try:
        client = app.test_client()
        started = time.monotonic()
        r = client.post(
            "/api/validate",
            json={"document": custom_graph("while True:\n    pass\nreturn x")},
            headers=AUTH,
        )
        assert r.status_code == 422 and r.json["error"]["code"] == "analysis_timeout", r.json
        assert "longer than 8 s" in r.json["error"]["message"]
        assert time.monotonic() - started < 60
        r = client.post("/api/validate", json={"document": unrelated_graph(16)}, headers=AUTH)
        assert r.status_code == 200 and r.json["ok"]
    finally:
        app.extensions["torchloom"].analysis.close()


def _thread_names() -> list[str]:
    return [t.name for t in threading.enumerate()]


def test_a_task_past_the_time_limit_has_its_process_killed_and_replaced(caplog):
    pool = AnalysisPool(1, allow_custom_code=False, timeout=3)
    try:
        pool.start(wait=True)
        (old,) = pool._pools["warm"]._processes.values()
        # the processes end with the server (server/lifeline.py), however it ends
        assert "torchloom-lifeline" in pool.run(_thread_names)
        with (
            caplog.at_level(logging.WARNING, logger="torchloom.analysis"),
            pytest.raises(AnalysisTimeout) as raised,
        ):
            pool.run(time.sleep, 600)
        assert raised.value.status == 422 and raised.value.code == "analysis_timeout"
        assert any("still running after 3s" in r.getMessage() for r in caplog.records)
        old.join(10)
        assert not old.is_alive()
        pool.start(wait=True)  # the limit counts from submission: let the replacement warm up
        assert pool.run(os.getpid) not in (old.pid, os.getpid())  # a fresh process answers
    finally:
        pool.close()


def test_a_broken_pool_falls_back_with_a_log_line(tmp_path, caplog):
    pool = AnalysisPool(1, allow_custom_code=False)
    try:
        pool.start(wait=True)
        for process in list(pool._pools["warm"]._processes.values()):
            process.kill()
            process.join()
        with caplog.at_level(logging.WARNING, logger="torchloom.analysis"):
            assert pool.analysis_json(unrelated_graph(16))["ok"]
        lines = [r.getMessage() for r in caplog.records]
        assert any("stopped" in line and "answered in the web process" in line for line in lines)
    finally:
        pool.close()


def test_weights_and_warm_start_for_a_custom_code_graph_run_in_a_retired_process(tmp_path):
    """The README: the check of uploaded weights and of a warm start builds the model in an
    analysis process, and for a graph with custom code in one retired right after. Were it the
    shared process, the patches would change the next graph's answers (as in the test above)."""
    import io
    import types

    from safetensors.torch import save

    inline = make_app(tmp_path / "inline").test_client()
    app = make_app(tmp_path / "custom", allow_custom_code=True)  # one analysis process
    queued: list[str] = []
    app.extensions["torchloom"].runner = types.SimpleNamespace(
        enqueue=queued.append, position=lambda run_id: None, unrecorded_failure=lambda r: None
    )
    try:
        client = app.test_client()
        # torch only: a graph whose code patches the compiler cannot build its own model
        doc = custom_graph(PATCHING_CODE.split("import graph_compiler")[0] + "return x * 2")
        r = client.post("/api/projects", json={"name": "custom", "document": doc}, headers=AUTH)
        assert r.status_code == 201, r.get_json()
        pid = r.get_json()["id"]
        # written by hand: building the model here would run the patches in this process
        state = {"fc.weight": torch.zeros(10, 64), "fc.bias": torch.zeros(10)}
        r = client.post(
            f"/api/projects/{pid}/weights",
            data={"file": (io.BytesIO(save(state)), "w.safetensors")},
            headers=AUTH,
            content_type="multipart/form-data",
        )
        assert r.status_code == 201, r.get_json()
        assert r.get_json()["report"]["matched"] == 2  # the model was built: the patch ran
        got = answers(client, unrelated_graph(47))
        assert got == answers(inline, unrelated_graph(47))
        r = client.post(
            f"/api/projects/{pid}/runs", json={"init_weights": r.get_json()["id"]}, headers=AUTH
        )
        assert r.status_code == 201, r.get_json()
        assert len(queued) == 1  # the warm start was checked and the run queued
        got = answers(client, unrelated_graph(53))
        assert got == answers(inline, unrelated_graph(53))
    finally:
        app.extensions["torchloom"].analysis.close()
