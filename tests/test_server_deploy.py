"""Deployment: `torchloom serve` (gunicorn, one gevent worker) under slow clients, faults and
SIGTERM; and the documented gunicorn entry (server/wsgi.py) with settings from the environment."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from server.serving import HEADER_TIMEOUT, connection_cap
from tests.served import Served, thread_count
from tests.server_live import free_port

pytestmark = pytest.mark.slow


def get(url: str, token: str | None = None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_gunicorn_serves_the_app_with_one_threaded_worker(tmp_path):
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
            "-w",
            "1",
            "--threads",
            "8",
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
        assert status == 200 and len(body["projects"]) == 8  # examples seeded
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
    """With 256 file descriptors and 300 slow connections (the old server: accept() failed with
    EMFILE and normal requests timed out), the worker holds at most connection_cap(256) of them;
    the others wait in the listen backlog, and a normal request is answered as soon as the
    header timeout frees connections."""

    def few_descriptors():
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        )

    served = Served(
        tmp_path / "data", "--analysis-workers", "0", preexec_fn=few_descriptors
    ).ready()
    held = []
    try:
        worker = served.worker_pid()
        cap = connection_cap(256)
        assert cap < 256
        held = slow_clients(served.port, 300)
        time.sleep(1)
        assert len(os.listdir(f"/proc/{worker}/fd")) < 256
        status, took = timed_get(served, timeout=HEADER_TIMEOUT + 30)
        assert status == 200 and took < HEADER_TIMEOUT + 20, took
        assert "Too many open files" not in served.tail()
    finally:
        for s in held:
            s.close()
        assert served.close() == 0, served.tail()
