"""Deployment: `torchloom serve` (gunicorn, one gevent worker) under slow clients, faults and
SIGTERM; and the documented gunicorn entry (server/wsgi.py) with settings from the environment."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.serving import HEADER_TIMEOUT, connection_cap
from tests.served import Served, alive, children_of, thread_count
from tests.server_live import EXAMPLES, free_port

pytestmark = pytest.mark.slow


def get(url: str, token: str | None = None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_gunicorn_serves_the_wsgi_entry_with_the_gevent_worker(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "TORCHLOOM_DATA_DIR": str(tmp_path),
        "TORCHLOOM_TOKEN": "deploy-token",
        "TORCHLOOM_PORT": str(port),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [
            str(gunicorn),
            "-k",
            "server.serving.Worker",
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{port}",
            "server.wsgi:create()",
        ],
        env=env,
        stdout=subprocess.DEVNULL,  # an unread pipe would fill up and stall the server
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        status = None
        while time.time() < deadline:
            try:
                status, body = get(f"http://127.0.0.1:{port}/api/catalog", "deploy-token")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        assert status == 200 and len(body["nodes"]) > 80
        assert get(f"http://127.0.0.1:{port}/api/projects")[0] == 401  # no token
        status, body = get(f"http://127.0.0.1:{port}/api/projects", "deploy-token")
        seeded = len(list(EXAMPLES.glob("*.json")))
        assert status == 200 and len(body["projects"]) == seeded  # examples seeded
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_wsgi_needs_a_token_from_the_environment():
    from server.wsgi import config_from_env

    with pytest.raises(RuntimeError, match="TORCHLOOM_TOKEN"):
        config_from_env({})
    cfg = config_from_env({"TORCHLOOM_TOKEN": "x", "TORCHLOOM_CPU_SLOTS": "2"})
    assert cfg.cpu_slots == 2 and cfg.token == "x"


# --- `torchloom serve`: gunicorn with one gevent worker by default -------------------------------


def slow_clients(port: int, count: int) -> list[socket.socket]:
    """Connections that send part of a request's headers, then nothing (slow-loris)."""
    held = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /api/system HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        held.append(s)
    return held


def closed_by_server(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def timed_get(served: Served, path: str = "/api/system", timeout: float = 60):
    start = time.monotonic()
    status, _ = served.call("GET", path, timeout=timeout)
    return status, time.monotonic() - start


def test_slow_clients_hold_no_threads_and_their_header_reads_are_cut(tmp_path):
    """300 slow-loris connections: normal requests are answered at once, the web process keeps
    its few threads (Werkzeug's server: a thread per connection), and each slow connection is
    closed once HEADER_TIMEOUT has passed without its headers."""
    served = Served(tmp_path / "data", "--analysis-workers", "0").ready()
    held = []
    try:
        worker = served.worker_pid()
        threads = thread_count(worker)
        opened = time.monotonic()
        held = slow_clients(served.port, 300)
        for _ in range(3):
            status, took = timed_get(served)
            assert status == 200 and took < 5.0, took  # milliseconds when idle
        assert thread_count(worker) <= threads + 2  # greenlets, not threads
        # every slow connection is cut after the header timeout (not before, not never)
        first = closed_by_server(held[0], HEADER_TIMEOUT + 20)
        cut_after = time.monotonic() - opened
        assert first and HEADER_TIMEOUT - 1 <= cut_after <= HEADER_TIMEOUT + 20, cut_after
        assert all(closed_by_server(s, 5) for s in held[1:])
        assert timed_get(served)[0] == 200
    finally:
        for s in held:
            s.close()
        assert served.close() == 0, served.tail()


def test_more_slow_clients_than_descriptors_do_not_starve_normal_requests(tmp_path):
    """With 256 file descriptors and 200 slow connections, the worker holds at most
    connection_cap(256) = 128 of them, the others wait in the listen backlog (no EMFILE), and a
    normal request behind them is answered once the header timeout has cut the first ones.
    Measured with the old Werkzeug server: 1,100 slow sockets at 1,024 descriptors, every
    normal request timed out (30 s); this server answered after 8 s, then at once."""

    def few_descriptors():
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    served = Served(
        tmp_path / "data", "--analysis-workers", "0", preexec_fn=few_descriptors
    ).ready()
    held = []
    try:
        worker = served.worker_pid()
        assert connection_cap(256) == 128
        held = slow_clients(served.port, 200)
        time.sleep(1)
        assert len(os.listdir(f"/proc/{worker}/fd")) < 256
        status, took = timed_get(served, timeout=HEADER_TIMEOUT + 30)
        assert status == 200 and took < HEADER_TIMEOUT + 15, took
        assert "Too many open files" not in served.tail()
    finally:
        for s in held:
            s.close()
        assert served.close() == 0, served.tail()


def multipart(filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "torchloom-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'
    )
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_runs_stream_stop_resume_and_survive_faults_under_the_gevent_worker(tmp_path):
    """The scheduler's threads, the relays' multiprocessing queues and the analysis processes
    under gevent's patch: a run streams every event live to a Socket.IO client while validations
    and an upload are answered; stop, resume and a SIGKILLed training worker behave as with
    threads."""
    served = Served(tmp_path / "data", "--analysis-workers", "2").ready()
    client = None
    try:
        project = served.project_for("digits_mlp")
        run = served.start_run(project, epochs=4)
        got: list[int] = []
        done = threading.Event()
        client = served.socket_client()

        @client.on("events")
        def on_events(message):
            if message["run_id"] == run["id"]:
                take(message["events"])

        def take(events):
            for e in events:
                if not got or e["seq"] > got[-1]:
                    got.append(e["seq"])
                if e["type"] in ("finished", "failed", "stopped"):
                    done.set()

        reply = client.call("subscribe", {"run_id": run["id"], "after": 0}, timeout=10)
        assert reply["ok"], reply
        take(reply["events"])
        # while it trains: concurrent validations (analysis processes) and an upload
        document = json.loads((EXAMPLES / "digits_cnn.json").read_text())
        with ThreadPoolExecutor(6) as pool:
            answers = list(
                pool.map(lambda _: served.call("POST", "/api/validate", {"document": document}),
                         range(6))
            )  # fmt: skip
        assert all(s == 200 and b["ok"] for s, b in answers), answers
        body, content_type = multipart("d.csv", b"a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n")
        status, made = served.call("POST", "/api/datasets", raw=body, content_type=content_type)
        assert status == 201 and made["format"] == "csv", made
        assert done.wait(180), got[-3:]
        stored = served.call("GET", f"/api/runs/{run['id']}/events?limit=100000")[1]["events"]
        assert got == [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
        assert stored[-1]["type"] == "finished"

        long = served.start_run(served.project_for("digits_cnn"), epochs=300)
        served.wait(long["id"], lambda r: r["last_seq"] > 5, timeout=120)
        assert served.call("POST", f"/api/runs/{long['id']}/stop")[0] == 200
        stopped = served.wait(long["id"], lambda r: r["status"] == "stopped", timeout=30)
        assert served.call("POST", f"/api/runs/{long['id']}/resume")[0] == 200
        served.wait(
            long["id"], lambda r: r["status"] == "running" and r["last_seq"] > stopped["last_seq"]
        )
        os.kill(served.stored_run(long["id"])["pid"], signal.SIGKILL)
        failed = served.wait(long["id"], lambda r: r["status"] == "failed", timeout=60)
        assert "SIGKILL" in failed["reason"]
        assert served.call("GET", "/api/catalog")[0] == 200
    finally:
        if client is not None:
            client.disconnect()
        assert served.close() == 0, served.tail()


def test_sigterm_stops_the_training_worker_and_the_server_exits_cleanly(tmp_path):
    served = Served(tmp_path / "data", "--analysis-workers", "1").ready()
    run = served.start_run(served.project_for("digits_cnn"), epochs=300)
    served.wait(run["id"], lambda r: r["status"] == "running" and r["last_seq"] > 3, timeout=120)
    pid = served.stored_run(run["id"])["pid"]
    web = served.worker_pid()
    children = children_of(web)  # the training worker and the analysis process
    assert alive(pid) and pid in children and len(children) >= 2
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(60) == 0, served.tail()
    deadline = time.time() + 10
    while time.time() < deadline and any(alive(p) for p in [web, *children]):
        time.sleep(0.1)
    assert not any(alive(p) for p in [web, *children]), served.tail()
    # Runner.shutdown() ended it: interrupted (resumable), never left "running"
    assert served.stored_run(run["id"])["status"] == "interrupted"


def test_a_request_body_that_trickles_past_its_deadline_is_answered_408():
    """Each read of a body waits IO_TIMEOUT at most (a socket timeout); BodyDeadline bounds the
    whole body, however slowly it trickles in (here 1 byte per 50 ms, deadline 0.5 s)."""
    import gevent
    from flask import Flask, request
    from werkzeug.test import EnvironBuilder

    from server.serving import BodyDeadline

    class Trickle:
        def read(self, size=-1):
            gevent.sleep(0.05)
            return b"x"

    app = Flask(__name__)
    app.post("/")(lambda: str(len(request.get_data())))
    environ = EnvironBuilder(path="/", method="POST", headers={"Content-Length": "1000"})
    environ = environ.get_environ() | {"wsgi.input": Trickle(), "CONTENT_LENGTH": "1000"}
    statuses = []
    start = time.monotonic()
    BodyDeadline(app, 0.5)(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["408 REQUEST TIMEOUT"] and time.monotonic() - start < 5
