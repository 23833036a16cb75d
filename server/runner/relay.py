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

import logging
import queue as queue_module
import threading
import time
from collections.abc import Callable

from ..engine.checkpoint import better, monitored
from ..engine.diskspace import is_disk_full, write_error_reason
from ..sockets import room
from ..storage import runs as store

log = logging.getLogger("torchloom.runner")

TERMINAL = ("finished", "failed", "stopped")
INTERRUPTED = "the server stopped while this run was running"


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
        # a write failed (full disk, database error): the run cannot be recorded any more, so
        # the scheduler ends its worker; the relay drains the queue without storing, and the
        # run fails with this reason once it can be written
        self.write_error: str | None = None
        self.on_write_error: Callable[[str], None] = lambda reason: None
        # (code, reason) of a failure still to be written: retried until the store takes it
        self.unrecorded_end: tuple[str, str] | None = None
        self.interrupted = False  # the server is shutting down: the run ends "interrupted"
        self.best: tuple[str, float, bool] | None = None

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
            try:
                if kind == "events":
                    self._store(msg["events"])
                elif kind == "heartbeat":
                    if self.write_error is None:
                        store.update_run(self.services.db, self.run_id, heartbeat=msg["time"])
                    self.on_heartbeat(msg["time"])
            except Exception as exc:  # this thread must outlive a write error, or nobody
                self.storage_failed(exc)  # drains the worker and the run stays "running"
            if kind == "events":
                self._emit(force=False)
            elif kind == "exit":
                self._emit(force=True)
                self.exited.set()
                return

    def storage_failed(self, exc: BaseException, what: str = "storing the run's events") -> None:
        if self.write_error is None:
            self.write_error = write_error_reason(exc, what)
            log.error("run %s: %s", self.run_id, self.write_error)
            self.on_write_error(self.write_error)

    def _store(self, events: list[dict]) -> None:
        if self.write_error is not None:
            return  # the run is being failed; what it still sends cannot be stored
        updates: dict = {}
        best, terminal = self.best, None
        for e in events:
            d = e["data"]
            if e["type"] == "run_started":
                updates["device"] = d.get("device_name") or d.get("device")
            elif e["type"] == "epoch":
                metric = monitored(d)
                if metric is not None and better(metric, best):
                    best = metric
                    updates["best_metric"], updates["best_metric_name"] = metric[1], metric[0]
            elif e["type"] == "checkpoint":
                updates["checkpoint"] = d["path"]
            elif e["type"] in TERMINAL:
                terminal = e["type"]
                # stopped by the server's shutdown, not by the user: resumable, and said so
                interrupted = self.interrupted and terminal == "stopped"
                updates["status"] = "interrupted" if interrupted else terminal
                updates["finished"] = time.time()
                updates["reason"] = INTERRUPTED if interrupted else d.get("reason")
                if d.get("checkpoint"):
                    updates["checkpoint"] = d["checkpoint"]
        store.append_events(self.services.db, self.run_id, events)
        if updates:
            store.update_run(self.services.db, self.run_id, **updates)
        # only what is stored counts: a failed write leaves the run to be failed by finish()
        self.best = best
        self.terminal = terminal or self.terminal
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
        try:
            self.socketio.emit("events", message, to=room(self.run_id))
        except Exception:  # the events are stored: a client that reconnects replays them
            log.exception("run %s: events could not be sent", self.run_id)

    def finish(self, failure: str | None) -> None:
        """The worker has exited: drain what it sent, then record a failure it could not."""
        deadline = time.monotonic() + 10
        while self.thread.is_alive() and time.monotonic() < deadline:
            self.thread.join(0.25)
            # a worker that died sends no exit message: once what it wrote is read, stop
            # waiting (the queue's write end stays open here, so no EOF would come)
            if _drained(self.q):
                self.exited.set()
        if self.thread.is_alive():
            self.exited.set()
            self.thread.join(2)
        try:
            while True:
                msg = self.q.get_nowait()
                if msg.get("kind") == "events":
                    self._store(msg["events"])
        except (queue_module.Empty, EOFError, OSError):
            pass
        except Exception as exc:
            self.storage_failed(exc)
        if self.terminal is None:
            if self.write_error is not None:
                code = "disk_full" if self.write_error.startswith("disk full") else "storage_error"
                self.unrecorded_end = (code, self.write_error)
            else:
                reason = failure or "the worker process ended without reporting a result"
                self.unrecorded_end = ("worker_died", reason)
            self.record_end()
        self._emit(force=True)

    def record_end(self) -> bool:
        """Write the failure of a run whose worker could not report its own end (it died, or
        its events could not be stored). False: the write failed too (the disk is still full);
        the scheduler retries until it succeeds, so the run never stays "running"."""
        if self.unrecorded_end is None:
            return True
        code, reason = self.unrecorded_end
        blocked, self.write_error = self.write_error, None  # _store skips while it is set
        try:
            run = store.get(self.services.db, self.run_id)
            if run is not None:  # else deleted meanwhile: nothing left to record
                event = {
                    "run_id": self.run_id,
                    "seq": run["last_seq"] + 1,
                    "type": "failed",
                    "time": time.time(),
                    "data": {"code": code, "reason": reason},
                }
                self._store([event])
        except Exception as exc:
            self.write_error = blocked
            if not is_disk_full(exc):
                log.exception("run %s: its end cannot be recorded", self.run_id)
            return False
        self.unrecorded_end = None
        self._emit(force=True)
        return True


def _drained(q) -> bool:
    try:
        return q.empty()
    except (OSError, ValueError):  # closed
        return True
