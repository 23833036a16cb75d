"""Model builds the server does for a request (the weights check, a warm start) happen in the
analysis processes under their time limit, or are bounded by the validation limits: a 2 KB
graph of nested repeats no longer builds two million modules in the web process."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import torch
from safetensors.torch import save

from graph_compiler import build_module
from server.engine.trainer import prepare_document
from tests.helpers import chain, find_node
from tests.server_app import AUTH, make_app
from tests.test_validation import _nested_blocks

ROOT = Path(__file__).resolve().parent.parent

# the weights upload for the nested-repeats graph, in an app without analysis processes (the
# web process would build the model itself), reporting what it cost
BOMB_UPLOAD = textwrap.dedent(
    """
    import io, json, resource, sys, time
    from pathlib import Path
    import torch
    from safetensors.torch import save
    from tests.server_app import AUTH, make_app
    from tests.test_validation import _nested_blocks

    client = make_app(Path(sys.argv[1])).test_client()
    doc = _nested_blocks(2, 1000)  # 2 KB: two million Linear layers once expanded
    r = client.post("/api/projects", json={"name": "bomb", "document": doc}, headers=AUTH)
    pid = r.get_json()["id"]
    file = (io.BytesIO(save({"w": torch.zeros(1)})), "w.safetensors")
    started = time.perf_counter()
    r = client.post(f"/api/projects/{pid}/weights", data={"file": file}, headers=AUTH,
                    content_type="multipart/form-data")
    print(json.dumps({"status": r.status_code, "body": r.get_json(),
                      "seconds": time.perf_counter() - started,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
    """
)
ADDRESS_SPACE = 2 * 2**30  # torch's import maps about 0.8 GB; the build reached 5.6 GB before


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def test_weights_for_nested_repeats_are_refused_without_building_the_model(tmp_path):
    """Before: 160 s and 0.35 → 5.58 GB in the web process, then a 500 (here: MemoryError under
    the 2 GB address-space limit). Now: 422 graph_too_large, in about a second."""
    done = subprocess.run(
        [sys.executable, "-c", BOMB_UPLOAD, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=240,
        preexec_fn=_limited,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 422, result
    (problem,) = result["body"]["error"]["details"]
    assert problem["code"] == "graph_too_large" and "2,001,002 nodes" in problem["message"]
    assert result["seconds"] < 60  # about a second here; the margin is for a loaded machine


def _custom_graph(witness: Path) -> dict:
    code = f"open({str(witness)!r}, 'a').write(str(__import__('os').getpid()) + ' ')\nreturn x * 2"
    doc = chain(
        "digits",
        [
            ("cl", "CustomLayer", {"code": code, "parameters": []}),
            ("fc", "Linear", {"out_features": 10}),
        ],
    )
    doc["edges"][0]["target_port"] = "x"
    return doc


def _upload(client, pid: str, data: bytes):
    return client.post(
        f"/api/projects/{pid}/weights",
        data={"file": (io.BytesIO(data), "w.safetensors")},
        headers=AUTH,
        content_type="multipart/form-data",
    )


def test_weights_and_warm_start_of_a_custom_code_graph_are_checked_in_analysis_processes(
    tmp_path,
):
    """Before: refused with 409 (checking would have run the user's code in the web process)."""
    witness = tmp_path / "pids"
    doc = _custom_graph(witness)
    state = build_module(prepare_document(doc), allow_custom_code=True).state_dict()
    app = make_app(tmp_path / "data", allow_custom_code=True)
    services = app.extensions["torchloom"]
    queued: list[str] = []
    services.runner = types.SimpleNamespace(
        enqueue=queued.append, position=lambda run_id: None, unrecorded_failure=lambda r: None
    )
    try:
        client = app.test_client()
        pid = client.post("/api/projects", json={"document": doc}, headers=AUTH).json["id"]
        witness.unlink(missing_ok=True)
        r = _upload(client, pid, save({k: v.contiguous() for k, v in state.items()}))
        assert r.status_code == 201, r.get_json()
        r = client.post(
            f"/api/projects/{pid}/runs", json={"init_weights": r.json["id"]}, headers=AUTH
        )
        assert r.status_code == 201, r.get_json()
        assert r.json["overrides"]["init_weights"] == "initial.safetensors" and queued
        pids = [int(p) for p in witness.read_text().split()]
        assert pids and os.getpid() not in pids
        # the upload's check, the run's validation, the warm start's check: a fresh process each
        assert len(set(pids)) == 3
    finally:
        services.analysis.close()


def test_a_model_build_past_the_time_limit_is_stopped_and_its_process_replaced(tmp_path):
    # 49,952 nodes, under the validation limit: a build of several seconds, past a 2 s limit
    doc = _nested_blocks(2, 499)
    find_node(doc, "blk")["params"]["repeat"] = 50
    app = make_app(tmp_path / "data", analysis_workers=1, analysis_timeout=2)
    pool = app.extensions["torchloom"].analysis
    try:
        pool.start(wait=True)
        (old,) = pool._pools["warm"]._processes.values()
        client = app.test_client()
        pid = client.post("/api/projects", json={"document": doc}, headers=AUTH).json["id"]
        r = _upload(client, pid, save({"w": torch.zeros(1)}))
        assert r.status_code == 422 and r.json["error"]["code"] == "analysis_timeout", r.json
        old.join(10)
        assert not old.is_alive()
        pool.start(wait=True)  # the replacement answers the next request
        small = chain("digits", [("fc", "Linear", {"out_features": 10})])
        pid = client.post("/api/projects", json={"document": small}, headers=AUTH).json["id"]
        r = _upload(client, pid, save({"fc.weight": torch.zeros(10, 64)}))
        assert r.status_code == 422 and r.json["error"]["code"] == "weights_mismatch"
        assert "fc.bias" in r.json["error"]["message"]  # checked against the built model
    finally:
        pool.close()


def test_custom_code_that_breaks_the_compiler_gets_a_422_on_weights_upload(tmp_path):
    """The custom layer's code patches the code generator in its (retired) analysis process:
    the model cannot be built there, and the upload says so instead of a 500."""
    code = (
        "import graph_compiler.build as build\n"
        "build._Generator.source = lambda self: 'raise RuntimeError(\"sabotaged\")'\n"
        "return x * 2"
    )
    doc = _custom_graph(tmp_path / "unused")
    find_node(doc, "cl")["params"]["code"] = code
    app = make_app(tmp_path / "data", allow_custom_code=True)
    try:
        client = app.test_client()
        pid = client.post("/api/projects", json={"document": doc}, headers=AUTH).json["id"]
        r = _upload(client, pid, save({"fc.weight": torch.zeros(10, 64)}))
        assert r.status_code == 422, r.get_json()
        (problem,) = r.get_json()["error"]["details"]
        assert problem["code"] == "build_failed" and "sabotaged" in problem["message"]
    finally:
        app.extensions["torchloom"].analysis.close()
