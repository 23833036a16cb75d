"""A real server on 127.0.0.1 (threads, werkzeug) for tests that need sockets and workers."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

from werkzeug.serving import make_server

from server.app import create_app
from server.config import ServerConfig

TOKEN = "live-test-token"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, data_dir: Path, **config):
        self.port = free_port()
        self.cfg = ServerConfig(
            data_dir=data_dir, port=self.port, token=TOKEN, heartbeat_seconds=0.5, **config
        )
        self.app = create_app(self.cfg)
        self.services = self.app.extensions["torchloom"]
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.client = self.app.test_client()
        self.url = f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, body=None):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = self.client.open(
            path,
            method=method,
            headers=headers,
            data=json.dumps(body) if body is not None else None,
            content_type="application/json",
        )
        return response.status_code, response.get_json(silent=True)

    def project_for(self, example: str) -> str:
        doc = json.loads((EXAMPLES / f"{example}.json").read_text())
        status, body = self.call("POST", "/api/projects", {"document": doc})
        assert status == 201, body
        return body["id"]

    def start_run(self, project: str, **overrides) -> dict:
        status, body = self.call("POST", f"/api/projects/{project}/runs", {"overrides": overrides})
        assert status == 201, body
        return body

    def run(self, run_id: str) -> dict:
        return self.call("GET", f"/api/runs/{run_id}")[1]

    def wait(self, run_id: str, predicate, timeout: float = 120.0) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            run = self.run(run_id)
            if predicate(run):
                return run
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting on run {run_id}: {self.run(run_id)}")

    def socket_client(self, token: str = TOKEN, **connect):
        import socketio

        client = socketio.Client(reconnection=False)
        client.connect(
            self.url, transports=["websocket"], auth={"token": token}, wait_timeout=10, **connect
        )
        return client

    def close(self) -> None:
        runner = self.services.runner
        if runner is not None:
            runner.shutdown(timeout=5)
        self.server.shutdown()
        self.thread.join(5)
