"""/api/validate answered by analysis processes: the same answers as in the web process, custom
code never executed in the web process, and a killed pool replaced without a failed request."""

from __future__ import annotations

import os

from tests.helpers import chain, mlp
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
    app = make_app(tmp_path / "custom", allow_custom_code=True)  # analysis_workers=0 asked
    try:
        assert app.extensions["torchloom"].analysis.workers == 1
        analysis = validate(app.test_client(), doc)
        assert analysis["ok"], analysis["errors"]
        pids = {int(p) for p in witness.read_text().split()}
        assert pids and os.getpid() not in pids
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
        assert pool._pool is not None and all(p.is_alive() for p in pool._pool._processes.values())
    finally:
        pool.close()
