"""One typed event stream per run.

Every event has the run id, a monotonically increasing sequence number and a timestamp. The
engine only enqueues (never blocks); a dispatcher thread hands events to the subscribers, so a
slow consumer (a disk writer, a socket relay) delays nobody but itself.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal[
    "run_started", "step", "epoch", "checkpoint", "log", "finished", "failed", "stopped"
]
TERMINAL = ("finished", "failed", "stopped")


@dataclass(frozen=True)
class Event:
    type: EventType
    run_id: str
    seq: int
    time: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: it deep-copies `data`, which costs more than the event
        return {
            "type": self.type,
            "run_id": self.run_id,
            "seq": self.seq,
            "time": self.time,
            "data": self.data,
        }


Subscriber = Callable[[Event], None]
_CLOSE = object()
DISPATCH_INTERVAL = 0.005  # seconds between deliveries


class EventBus:
    def __init__(self, run_id: str, *, start_seq: int = 0):
        self.run_id = run_id
        self._seq = start_seq
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []  # subscriber failures (reported, never raised into the run)

    @property
    def seq(self) -> int:
        return self._seq

    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._dispatch, name="torchloom-events", daemon=True
            )
            self._thread.start()

    def emit(self, type_: EventType, **data: Any) -> Event:
        with self._lock:
            self._seq += 1
            event = Event(type_, self.run_id, self._seq, time.time(), data)
        if self._subscribers:
            self._queue.put(event)
        return event

    def close(self, timeout: float = 30.0) -> None:
        """Deliver everything emitted so far, then stop the dispatcher."""
        if self._thread is not None:
            self._queue.put(_CLOSE)
            self._thread.join(timeout)
            self._thread = None

    def _dispatch(self) -> None:
        # wake up at most every few milliseconds and hand over everything queued since: the
        # training thread is not interrupted for each of thousands of step events a second
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            closing = batch[-1] is _CLOSE
            events = batch[:-1] if closing else batch
            for callback in list(self._subscribers):
                try:
                    if getattr(callback, "batched", False):  # takes a list: one call per wake-up
                        callback(events)
                    else:
                        for event in events:
                            callback(event)
                except Exception as exc:  # a broken consumer must not take the run down
                    self.errors.append(f"{getattr(callback, '__name__', callback)}: {exc}")
            if closing:
                return
            time.sleep(DISPATCH_INTERVAL)
