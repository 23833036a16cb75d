"""The full run log (the browser shows only its last lines) is downloaded from the stored
events without the step events: GET /runs/<id>/events?exclude=step, storage.runs.events_after."""

from __future__ import annotations

from server.storage import projects, runs
from server.storage.db import Database


def test_events_after_can_exclude_the_step_events(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    pid = projects.create(db, "p", {})["id"]
    runs.create(db, "r1", pid, 1, {}, {}, str(tmp_path / "r1"))
    kinds = ["run_started"] + ["step", "step", "log"] * 400 + ["epoch", "finished"]
    batch = [{"seq": i + 1, "type": t, "time": 0.0, "data": {}} for i, t in enumerate(kinds)]
    runs.append_events(db, "r1", batch)
    kept = runs.events_after(db, "r1", 0, 10000, exclude=("step",))
    assert [e["type"] for e in kept] == ["run_started"] + ["log"] * 400 + ["epoch", "finished"]
    assert len(runs.events_after(db, "r1", 0, 10000)) == len(kinds)
