"""Runs through the real server: worker processes, persisted events, live Socket.IO with exact
replay, stop and resume, a killed worker, a restarted server."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.server_live import TOKEN, LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def live(tmp_path):
    server = LiveServer(tmp_path / "data", seed_examples=False)
    yield server
    server.close()


class Watcher:
    """A socket client that subscribes to one run and keeps every event it is sent."""

    def __init__(self, live: LiveServer, run_id: str, after: int = 0):
        self.events: list[dict] = []
        self.done = threading.Event()
        self.client = live.socket_client()

        @self.client.on("events")
        def on_events(message):
            if message["run_id"] == run_id:
                self.take(message["events"])

        reply = self.client.call("subscribe", {"run_id": run_id, "after": after}, timeout=10)
        assert reply["ok"], reply
        self.take(reply["events"])

    def take(self, events: list[dict]) -> None:
        last = self.events[-1]["seq"] if self.events else 0
        for e in events:
            if e["seq"] > last:  # the documented client rule: drop what it already has
                self.events.append(e)
                last = e["seq"]
            if e["type"] in ("finished", "failed", "stopped"):
                self.done.set()

    def close(self) -> None:
        self.client.disconnect()


def seqs(events: list[dict]) -> list[int]:
    return [e["seq"] for e in events]


def test_a_run_streams_every_stored_event_exactly_once(live):
    project = live.project_for("digits_mlp")
    run = live.start_run(project, epochs=3)
    watcher = Watcher(live, run["id"])
    assert watcher.done.wait(120), watcher.events[-3:]
    watcher.close()
    final = live.wait(run["id"], lambda r: r["status"] == "finished")
    stored = live.call("GET", f"/api/runs/{run['id']}/events?limit=10000")[1]["events"]
    assert seqs(watcher.events) == seqs(stored) == list(range(1, len(stored) + 1))
    assert watcher.events[0]["type"] == "run_started" and stored[-1]["type"] == "finished"
    assert final["best_metric_name"] == "val_accuracy" and final["best_metric"] > 0.8
    epochs = live.call("GET", f"/api/runs/{run['id']}/metrics")[1]["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    page = live.call("GET", f"/api/runs/{run['id']}/events?after=5&limit=7")[1]
    assert seqs(page["events"]) == list(range(6, 13)) and page["next_after"] == 12


def test_reconnect_mid_run_replays_exactly_the_missing_events(live):
    project = live.project_for("digits_mlp")
    run = live.start_run(project, epochs=6)
    first = Watcher(live, run["id"])
    deadline = time.time() + 60
    while len(first.events) < 10 and time.time() < deadline:
        time.sleep(0.05)
    first.close()  # the connection drops mid-run
    got = list(first.events)
    second = Watcher(live, run["id"], after=got[-1]["seq"])
    second.events = got + second.events  # what the client already had, then the replay
    assert second.done.wait(120)
    second.close()
    stored = live.call("GET", f"/api/runs/{run['id']}/events?limit=10000")[1]["events"]
    assert seqs(second.events) == seqs(stored)


def test_stop_then_resume_continues_the_sequence(live):
    # How fast a stop lands is a measurement, not a check here: with the server, the worker and
    # the test on 2 shared cores, any bound tight enough to mean something also flakes. The
    # 30 s wait only catches a stop that never lands (a 300-epoch run would go on for minutes).
    project = live.project_for("digits_cnn")
    run = live.start_run(project, epochs=300)
    live.wait(run["id"], lambda r: r["last_seq"] > 5)
    status, body = live.call("POST", f"/api/runs/{run['id']}/stop")
    assert status == 200 and body["outcome"] == "stopping"
    stopped = live.wait(run["id"], lambda r: r["status"] == "stopped", timeout=30)
    assert stopped["checkpoint"]
    last = stopped["last_seq"]
    status, body = live.call("POST", f"/api/runs/{run['id']}/resume")
    assert status == 200, body
    live.wait(run["id"], lambda r: r["status"] == "running" and r["last_seq"] > last + 3)
    live.call("POST", f"/api/runs/{run['id']}/stop")
    live.wait(run["id"], lambda r: r["status"] == "stopped", timeout=30)
    stored = live.call("GET", f"/api/runs/{run['id']}/events?limit=100000")[1]["events"]
    assert seqs(stored) == list(range(1, len(stored) + 1))
    assert [e["type"] for e in stored].count("run_started") == 2


def test_sigkill_of_a_worker_fails_the_run_and_the_next_one_starts(live):
    project = live.project_for("digits_cnn")
    doomed = live.start_run(project, epochs=300)
    running = live.wait(doomed["id"], lambda r: r["status"] == "running" and r["last_seq"] > 3)
    queued = live.start_run(project, epochs=1)  # one CPU run at a time: this one waits
    assert live.run(queued["id"])["queue_position"] == 1
    pid = live.services.runner.active[doomed["id"]].process.pid
    os.kill(pid, signal.SIGKILL)
    failed = live.wait(doomed["id"], lambda r: r["status"] == "failed", timeout=30)
    assert "SIGKILL" in failed["reason"]
    assert failed["last_seq"] >= running["last_seq"]  # its metrics are kept
    live.wait(queued["id"], lambda r: r["status"] == "finished", timeout=120)
    assert live.call("GET", "/api/catalog")[0] == 200  # still serving


def test_restart_mid_run_marks_it_interrupted_and_it_resumes(tmp_path):
    first = LiveServer(tmp_path / "data", seed_examples=False)
    project = first.project_for("digits_mlp")
    # long enough never to finish while the test looks (200 epochs resumed and finished
    # between two polls on an idle machine)
    run = first.start_run(project, epochs=100_000)
    first.wait(run["id"], lambda r: r["checkpoint"] is not None)
    pid = first.services.runner.active[run["id"]].process.pid
    # the server dies: its scheduler first (a dead server records nothing: the loop must not
    # reap the killed worker and write its failure over the resumed run), then the worker
    first.services.runner.closing = True
    first.services.runner.thread.join(10)
    assert not first.services.runner.thread.is_alive()
    os.kill(pid, signal.SIGKILL)
    first.server.shutdown()
    second = LiveServer(tmp_path / "data", seed_examples=False)
    try:
        interrupted = second.run(run["id"])
        assert interrupted["status"] == "interrupted"
        status, _ = second.call("POST", f"/api/runs/{run['id']}/resume")
        assert status == 200
        second.wait(
            run["id"],
            lambda r: r["status"] == "running" and r["last_seq"] > interrupted["last_seq"],
        )
        second.call("POST", f"/api/runs/{run['id']}/stop")
        second.wait(run["id"], lambda r: r["status"] == "stopped", timeout=30)
    finally:
        second.close()


def test_socket_needs_the_token_and_an_allowed_origin(live):
    import socketio

    with pytest.raises(socketio.exceptions.ConnectionError):
        live.socket_client(token="wrong")
    with pytest.raises(socketio.exceptions.ConnectionError):
        live.socket_client(headers={"Origin": "http://evil.example"})
    client = live.socket_client(token=TOKEN)
    assert client.connected
    client.disconnect()


def test_invalid_graph_and_bad_overrides_are_refused(live):
    project = live.project_for("digits_mlp")
    status, body = live.call("POST", f"/api/projects/{project}/runs", {"overrides": {"epochs": 0}})
    assert status == 422 and body["error"]["code"] == "invalid_graph"
    status, body = live.call(
        "POST", f"/api/projects/{project}/runs", {"overrides": {"learning_rate": 1}}
    )
    assert status == 400 and body["error"]["code"] == "invalid_override"


def test_a_hung_worker_is_detected_by_its_missing_heartbeats(tmp_path):
    server = LiveServer(tmp_path / "data", seed_examples=False, worker_timeout=3.0)
    try:
        project = server.project_for("digits_cnn")
        run = server.start_run(project, epochs=300)
        server.wait(run["id"], lambda r: r["status"] == "running" and r["last_seq"] > 3)
        pid = server.services.runner.active[run["id"]].process.pid
        os.kill(pid, signal.SIGSTOP)  # alive but silent
        failed = server.wait(run["id"], lambda r: r["status"] == "failed", timeout=30)
        assert "heartbeat" in failed["reason"]
    finally:
        server.close()


FAULTS = {
    "cuda_oom": (
        "raise torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 9 GiB')",
        ("out of memory", "batch size 64"),
    ),
    "memory_error": ("raise MemoryError('cannot allocate 9 GiB')", ("MemoryError",)),
    "segfault": ("__import__('ctypes').string_at(0)", ("segmentation fault",)),
    "non_finite": ("return x * float('nan')", ("non-finite loss at epoch 1 step 1",)),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_worker_fails_its_run_with_the_reason(tmp_path, fault):
    from tests.helpers import chain, set_params

    statement, says = FAULTS[fault]
    doc = chain(
        "digits",
        [
            ("fc1", "Linear", {"out_features": 16}),
            ("act", "ReLU", {}),
            ("fc2", "Linear", {"out_features": 10}),
        ],
    )
    set_params(doc, "train", epochs=2, batch_size=64)
    # the fault happens in training, not on the meta device that shape inference uses
    code = f"if x.device.type != 'meta':\n    {statement}\nreturn x"
    doc["nodes"].append(
        {"id": "boom", "type": "CustomLayer", "params": {"code": code, "parameters": []}}
    )
    for e in doc["edges"]:
        if e["source"] == "fc2":
            e["source"] = "boom"
    doc["edges"].append(
        {"source": "fc2", "source_port": "out", "target": "boom", "target_port": "x"}
    )
    server = LiveServer(tmp_path / "data", seed_examples=False, allow_custom_code=True)
    try:
        status, project = server.call("POST", "/api/projects", {"document": doc})
        assert status == 201, project
        run = server.start_run(project["id"])
        failed = server.wait(run["id"], lambda r: r["status"] == "failed", timeout=60)
        for text in says:
            assert text in failed["reason"], failed["reason"]
        assert server.call("GET", "/api/catalog")[0] == 200  # the server keeps serving
    finally:
        server.close()


def test_custom_code_is_refused_unless_the_server_allows_it(live):
    from tests.helpers import chain

    doc = chain("digits", [("c", "CustomLayer", {}), ("fc", "Linear", {"out_features": 10})])
    for e in doc["edges"]:
        if e["target"] == "c":
            e["target_port"] = "x"  # a CustomLayer's inputs are its forward's argument names
    status, project = live.call("POST", "/api/projects", {"document": doc})
    assert status == 201
    status, body = live.call("POST", f"/api/projects/{project['id']}/runs", {})
    assert status == 422
    assert any(d["code"] == "custom_code_disabled" for d in body["error"]["details"])


def _threads_of_a_cpu_run(data_dir, **config) -> int:
    """The threads torch had in the worker, as the run's first event reports them."""
    server = LiveServer(data_dir, seed_examples=False, **config)
    try:
        run = server.start_run(server.project_for("digits_mlp"), epochs=1)
        server.wait(run["id"], lambda r: r["status"] == "finished")
        events = server.call("GET", f"/api/runs/{run['id']}/events?limit=1")[1]["events"]
        assert events[0]["type"] == "run_started"
        return events[0]["data"]["cpu_threads"]
    finally:
        server.close()


def test_cpu_threads_chooses_the_threads_of_a_cpu_run(tmp_path, monkeypatch):
    """The README: a CPU run gets the cores but one, `--cpu-threads` to choose."""
    import torch

    import server.serving
    from server.cli import main

    served = []
    monkeypatch.setattr(server.serving, "exec_server", lambda cfg, announce: served.append(cfg))
    assert main(["serve", "--data-dir", str(tmp_path / "cli"), "--cpu-threads", "3"]) == 0
    assert served[0].cpu_threads == 3
    cores = torch.get_num_threads()
    assert _threads_of_a_cpu_run(tmp_path / "default") == max(1, cores - 1)
    chosen = cores + 1  # a number the default never gives
    assert _threads_of_a_cpu_run(tmp_path / "chosen", cpu_threads=chosen) == chosen
