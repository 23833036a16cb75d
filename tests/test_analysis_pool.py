"""/api/validate answered by analysis processes: the same answers as in the web process, custom
code never executed in the web process, and a killed pool replaced without a failed request."""

from __future__ import annotations

import os

from tests.helpers import chain, mlp
from tests.run_folders import fabricated_run
from tests.server_app import AUTH, make_app


def validate(client, doc) -> dict:
    r = client.post("/api/validate", json={"document": doc}, headers=AUTH)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_the_pool_answers_exactly_what_the_web_process_answers(tmp_path):
    inline = make_app(tmp_path / "inline").test_client()
    pooled_app = make_app(tmp_path / "pooled", analysis_workers=2)
    try:
        pooled = pooled_app.test_client()
        broken = mlp()
        broken["nodes"][1]["params"]["out_features"] = -3
        for doc in (mlp(), broken, {"format": "torchloom.graph/1", "nodes": "nope"}):
            assert validate(pooled, doc) == validate(inline, doc)
    finally:
        pooled_app.extensions["torchloom"].analysis.close()


def test_custom_code_runs_in_an_analysis_process_never_in_the_web_process(tmp_path):
    """Validation, code generation and the check before a run: the layer's code records the
    process it runs in (a different code text each time: analyses of the same code are cached)."""
    witness = tmp_path / "pids"

    def doc(tag: str) -> dict:
        code = (
            f"open({str(witness)!r}, 'a').write('{tag}:' + str(__import__('os').getpid()) + ' ')"
            "\nreturn x * 2"
        )
        d = chain(
            "digits",
            [
                ("cl", "CustomLayer", {"code": code, "parameters": []}),
                ("fc", "Linear", {"out_features": 10}),
            ],
        )
        d["edges"][0]["target_port"] = "x"
        return d

    app = make_app(tmp_path / "custom", allow_custom_code=True)  # analysis_workers=0 asked
    try:
        assert app.extensions["torchloom"].analysis.workers == 1
        client = app.test_client()
        analysis = validate(client, doc("validate"))
        assert analysis["ok"], analysis["errors"]
        r = client.post("/api/codegen", json={"document": doc("codegen")}, headers=AUTH)
        assert "class" in r.json["source"]
        r = client.post("/api/projects", json={"document": doc("run")}, headers=AUTH)
        started = client.post(f"/api/projects/{r.json['id']}/runs", json={}, headers=AUTH)
        assert started.status_code == 503  # checked, then refused: this app runs no trainings
        seen = dict(item.split(":") for item in witness.read_text().split())
        assert set(seen) == {"validate", "codegen", "run"}
        assert str(os.getpid()) not in seen.values()
    finally:
        app.extensions["torchloom"].analysis.close()


def test_a_killed_pool_is_replaced_and_no_request_fails(tmp_path):
    app = make_app(tmp_path / "killed", analysis_workers=1)
    pool = app.extensions["torchloom"].analysis
    try:
        client = app.test_client()
        first = validate(client, mlp())
        for process in list(pool._executor()._processes.values()):
            process.kill()
            process.join()
        assert validate(client, mlp()) == first  # answered in the web process meanwhile
        assert validate(client, mlp()) == first  # by a fresh pool
        fresh = pool._pools["warm"]
        assert fresh is not None and all(p.is_alive() for p in fresh._processes.values())
    finally:
        pool.close()


def test_a_custom_code_runs_model_is_loaded_only_in_an_analysis_process(tmp_path):
    """Predictions, evaluation and exports of a run with custom code: its forward records the
    process it runs in, and that is never the web process."""
    witness = tmp_path / "pids"
    code = f"open({str(witness)!r}, 'a').write(str(__import__('os').getpid()) + ' ')\nreturn x * 2"
    doc = chain(
        "digits",
        [
            ("cl", "CustomLayer", {"code": code, "parameters": []}),
            ("fc", "Linear", {"out_features": 10}),
        ],
    )
    doc["edges"][0]["target_port"] = "x"
    app = make_app(tmp_path / "custom-run", allow_custom_code=True)
    try:
        fabricated_run(app, "00000000000c0de1", doc, allow_custom_code=True)
        witness.unlink(missing_ok=True)  # what building the run here in the test wrote
        client = app.test_client()
        base = "/api/runs/00000000000c0de1"
        r = client.post(f"{base}/predict", json={"index": 0}, headers=AUTH)
        assert r.status_code == 200 and isinstance(r.json["prediction"], int), r.json
        r = client.get(f"{base}/evaluation", headers=AUTH)
        assert r.status_code == 200 and r.json["task"] == "classification", r.json
        r = client.get(f"{base}/export/code.zip", headers=AUTH)
        assert r.status_code == 200 and r.data[:2] == b"PK"
        pids = {int(p) for p in witness.read_text().split()}
        assert pids and os.getpid() not in pids
    finally:
        app.extensions["torchloom"].analysis.close()
