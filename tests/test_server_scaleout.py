"""Scale-out: two server processes share one database and one real redis-server; a run trained
by the one with the scheduler streams, through the Socket.IO message queue, to clients of the
other, and every stored event reaches them exactly once, in order."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from server.storage import projects
from server.storage.db import Database
from tests.server_live import EXAMPLES, TOKEN, free_port, ordered_client

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]

ROOT = Path(__file__).resolve().parent.parent


def _wait_until(check, timeout: float, what: str, proc=None, expected=(OSError,)):
    """Poll check() until true; `expected` errors mean not yet (the port is not open)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode}")
        try:
            if check():
                return
        except expected:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out: {what}")


@pytest.fixture
def redis_url(tmp_path):
    import redis

    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_until(
            lambda: redis.Redis.from_url(url).ping(),
            10,
            "redis-server",
            proc,
            expected=(redis.exceptions.ConnectionError,),
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


class Served:
    """`torchloom serve` in its own process (its own Socket.IO server, as in a deployment)."""

    def __init__(self, data_dir: Path, redis_url: str, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"serve-{self.port}.log"  # read when a check fails
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port),
                 "--data-dir", str(data_dir), "--token", TOKEN, "--redis-url", redis_url, *extra],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def ready(self, timeout: float = 60) -> Served:
        what = f"{self.url} (log: {self.log})"
        _wait_until(lambda: self.call("GET", "/api/system")[0] == 200, timeout, what, self.proc)
        return self

    def call(self, method: str, path: str, body=None):
        req = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Watcher:
    """A client that follows the documented rule: live events that arrive before the subscribe
    reply wait for it; then the replay, then live ones, dropping any sequence it already has."""

    def __init__(self, url: str, run_id: str, after: int = 0):
        self.after = after
        self.replayed: list[int] = []
        self.live: list[dict] = []  # every live event as received, before deduplication
        self.events: list[dict] = []
        self.early: list[dict] = []
        self.replied = False
        self.done = threading.Event()
        self.client = ordered_client()

        @self.client.on("events")
        def on_events(message):
            if message["run_id"] != run_id:
                return
            self.live += message["events"]
            if self.replied:
                self.take(message["events"])
            else:
                self.early += message["events"]

        def on_reply(reply):  # handled in arrival order, like the events (ordered_client)
            self.reply = reply
            self.replayed = [e["seq"] for e in reply["events"]]
            self.replied = True
            self.take(reply["events"] + self.early)

        self.client.connect(url, transports=["websocket"], auth={"token": TOKEN}, wait_timeout=10)
        self.client.emit("subscribe", {"run_id": run_id, "after": after}, callback=on_reply)

    def take(self, events: list[dict]) -> None:
        for e in events:
            last = self.events[-1]["seq"] if self.events else self.after
            if e["seq"] > last:
                self.events.append(e)
            if e["type"] in ("finished", "failed", "stopped"):
                self.done.set()


def test_clients_of_a_second_server_process_get_every_event_through_redis(tmp_path, redis_url):
    data = tmp_path / "data"
    data.mkdir()
    # the database and a project exist before either server starts, so the two can start side
    # by side (neither seeds the examples, neither migrates)
    db = Database(f"sqlite:///{data / 'torchloom.db'}")
    doc = json.loads((EXAMPLES / "digits_mlp.json").read_text())
    project = projects.create(db, "digits", doc, "test")
    db.engine.dispose()
    runner = Served(data, redis_url)
    other = Served(data, redis_url, "--no-runner")
    watchers = []
    try:
        runner.ready(), other.ready()
        status, body = other.call("POST", f"/api/projects/{project['id']}/runs", {})
        assert (status, body["error"]["code"]) == (503, "runner_off")  # only one scheduler

        status, run = runner.call(
            "POST", f"/api/projects/{project['id']}/runs", {"overrides": {"epochs": 12}}
        )
        assert status == 201, run
        first = Watcher(other.url, run["id"])  # while the worker starts: nearly all live
        _wait_until(lambda: len(first.events) >= 10, 60, "the first live events")
        mid = Watcher(other.url, run["id"], after=first.events[4]["seq"])  # replay, then live
        watchers = [first, mid]
        for w in watchers:
            assert w.done.wait(120), w.events[-3:]
        status, page = other.call("GET", f"/api/runs/{run['id']}/events?limit=100000")
        stored = [e["seq"] for e in page["events"]]
        assert stored == list(range(1, len(stored) + 1)) and page["events"][-1]["type"] == (
            "finished"
        )
        assert [e["seq"] for e in first.events] == stored
        assert [e["seq"] for e in mid.events] == stored[5:]
        for w in watchers:
            live = [e["seq"] for e in w.live]
            # the message queue delivers in order and once: a live sequence never repeats or
            # goes back, and everything stored after the replay came live (the replay may
            # overlap the live stream, which the client's rule absorbs)
            assert w.reply["ok"] and live == sorted(set(live)), live
            after_replay = max(w.replayed, default=w.after)
            assert [s for s in stored if s > after_replay] == [s for s in live if s > after_replay]
        # the first subscribed while the worker was starting: the end reached it live, sent by
        # the other process through Redis; the second began with a replay from the database
        assert first.live[-1]["type"] == "finished"
        assert mid.replayed[:1] == [6]
        assert runner.call("GET", f"/api/runs/{run['id']}")[1]["status"] == "finished"
    finally:
        for w in watchers:
            w.client.disconnect()
        other.close()
        runner.close()
