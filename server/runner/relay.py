"""The relay: a thread per running run that persists the worker's events, then emits them.

Persist first (SQLite), then emit to the run's Socket.IO room, so anything a browser has seen
is stored. Emission is throttled (at most `rate` messages a second per run, each carrying
every event since the previous one), so a fast run does not flood the browsers; nothing stored
is dropped, and a client that reconnects replays from the database.

With a Redis URL the emit goes through the Socket.IO message queue to every server process.
The relay stays the one emitter (the worker does not publish to Redis itself): a worker
emitting directly would let a browser see an event before it is stored, and a replay racing
it could then miss or repeat events; here persist-then-emit holds across processes too.
Each message carries `sent` (the relay's clock at emit), so a client can tell its lag.
"""

from __future__ import annotations

import queue as queue_module
import threading
import time
from collections.abc import Callable

from ..sockets import room
from ..storage import runs as store

TERMINAL = ("finished", "failed", "stopped")


class Relay:
    def __init__(self, services, socketio, run_id: str, q, rate: float):
        self.services, self.socketio, self.run_id, self.q = services, socketio, run_id, q
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.thread = threading.Thread(
            target=self._loop, name=f"torchloom-relay-{run_id}", daemon=True
        )
        self.unsent: list[dict] = []
        self.last_emit = 0.0
        self.terminal: str | None = None
        self.exited = threading.Event()
        self.on_heartbeat: Callable[[float], None] = lambda t: None
        self.best: float | None = None

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        while True:
            timeout = 0.25
            if self.unsent:  # wake up when the throttle lets the held events go
                due = self.last_emit + self.interval - time.monotonic()
                timeout = min(timeout, max(0.001, due))
            try:
                msg = self.q.get(timeout=timeout)
            except queue_module.Empty:
                self._emit(force=False)
                if self.exited.is_set():
                    return
                continue
            except (EOFError, OSError):  # the worker died mid-message
                self.exited.set()
                return
            kind = msg.get("kind")
            if kind == "events":
                self._store(msg["events"])
                self._emit(force=False)
            elif kind == "heartbeat":
                store.update_run(self.services.db, self.run_id, heartbeat=msg["time"])
                self.on_heartbeat(msg["time"])
            elif kind == "exit":
                self._emit(force=True)
                self.exited.set()
                return

    def _store(self, events: list[dict]) -> None:
        store.append_events(self.services.db, self.run_id, events)
        updates: dict = {}
        for e in events:
            d = e["data"]
            if e["type"] == "run_started":
                updates["device"] = d.get("device_name") or d.get("device")
            elif e["type"] == "epoch":
                for name, better in (("val_accuracy", max), ("val_r2", max), ("val_loss", min)):
                    if name in d:
                        value = d[name]
                        self.best = value if self.best is None else better(self.best, value)
                        updates["best_metric"], updates["best_metric_name"] = self.best, name
                        break
            elif e["type"] == "checkpoint":
                updates["checkpoint"] = d["path"]
            elif e["type"] in TERMINAL:
                self.terminal = e["type"]
                updates["status"] = e["type"]
                updates["finished"] = time.time()
                updates["reason"] = d.get("reason")
                if d.get("checkpoint"):
                    updates["checkpoint"] = d["checkpoint"]
        if updates:
            store.update_run(self.services.db, self.run_id, **updates)
        self.unsent += events

    def _emit(self, force: bool) -> None:
        if not self.unsent:
            return
        now = time.monotonic()
        # every message counts against the rate, not only step events: a small model ends
        # dozens of epochs a second, and each message costs every watcher a wake-up; only the
        # end of the run goes out at once
        urgent = self.unsent[-1]["type"] in TERMINAL
        if not (force or urgent or now - self.last_emit >= self.interval):
            return
        batch, self.unsent = self.unsent, []
        self.last_emit = now
        message = {"run_id": self.run_id, "sent": time.time(), "events": batch}
        self.socketio.emit("events", message, to=room(self.run_id))

    def finish(self, failure: str | None) -> None:
        """The worker has exited: drain what it sent, then record a failure it could not."""
        self.thread.join(10)
        if self.thread.is_alive():  # the worker died without its exit message
            self.exited.set()
            self.thread.join(2)
        try:
            while True:
                msg = self.q.get_nowait()
                if msg.get("kind") == "events":
                    self._store(msg["events"])
        except (queue_module.Empty, EOFError, OSError):
            pass
        if self.terminal is None:
            reason = failure or "the worker process ended without reporting a result"
            run = store.get(self.services.db, self.run_id)
            seq = (run["last_seq"] if run else 0) + 1
            event = {
                "run_id": self.run_id,
                "seq": seq,
                "type": "failed",
                "time": time.time(),
                "data": {"code": "worker_died", "reason": reason},
            }
            self._store([event])
        self._emit(force=True)
