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


class RunCalls:
    """Runs through the API, for any test server with `call(method, path, body)`."""

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


class LiveServer(RunCalls):
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

    def socket_client(self, token: str = TOKEN, **connect):
        client = ordered_client()
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
        self.services.analysis.close()


def ordered_client():
    """A python-socketio client that handles messages in arrival order, as a browser does.

    python-engineio's client hands each incoming message to a new thread, so two `events`
    messages (or a subscribe reply and an event) can be handled out of order, and a client that
    keeps only sequences above the last it holds would then lose the earlier batch. Handling
    them on the reader thread also saves a thread start per message.

    websocket-client checks each text frame's UTF-8 in pure Python before decoding it (strictly,
    in C) anyway: about 0.6 ms for a 3 kB message of events, which made 100 watchers cost the
    bench most of a core. A browser checks it natively, so the clients skip the pre-check.
    """
    import engineio
    import socketio

    class InOrder(engineio.Client):
        def _trigger_event(self, event, *args, **kwargs):
            if event == "message":
                kwargs["run_async"] = False
            return super()._trigger_event(event, *args, **kwargs)

    class Client(socketio.Client):
        def _engineio_client_class(self):
            return InOrder

    return Client(reconnection=False, websocket_extra_options={"skip_utf8_validation": True})
