"""The run queue: worker processes (spawn) with slots per device, a relay per run, fault
handling (a worker that dies or stops sending heartbeats fails its run, the next one starts),
and recovery at start (runs left running become interrupted and resumable)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ..storage import datasets as dataset_store
from ..storage import runs as store
from .relay import Relay
from .worker import worker_main

SIGNALS = {
    -signal.SIGKILL: "killed (SIGKILL)",
    -signal.SIGSEGV: "crashed (segmentation fault)",
    -signal.SIGTERM: "terminated (SIGTERM)",
    -signal.SIGABRT: "aborted (SIGABRT)",
}


@dataclass
class Active:
    run_id: str
    slot: str
    process: Any
    queue: Any
    control: Any  # a queue to the worker: "stop" (an mp.Event would hang if the worker died)
    relay: Relay
    started: float = field(default_factory=time.time)
    last_beat: float = field(default_factory=time.time)
    stop_requested: float | None = None


class Runner:
    def __init__(self, services, socketio):
        self.services = services
        self.cfg = services.config
        self.socketio = socketio
        self.ctx = mp.get_context("spawn")
        self.lock = threading.RLock()
        self.active: dict[str, Active] = {}
        self.pending: list[str] = []  # queued run ids, in order
        self.wake = threading.Event()
        self.closing = False
        gpus = self.cfg.gpus
        if gpus is None:
            gpus = tuple(range(torch.cuda.device_count())) if torch.cuda.is_available() else ()
        self.slots = {"cpu": self.cfg.cpu_slots}
        for g in gpus:
            self.slots[f"cuda:{g}"] = self.cfg.runs_per_gpu
        self.thread = threading.Thread(target=self._loop, name="torchloom-runner", daemon=True)

    # --- public ------------------------------------------------------------------------------

    def start(self) -> None:
        self._recover()
        self.thread.start()

    def enqueue(self, run_id: str) -> None:
        with self.lock:
            # a resumed run may still be finishing its previous worker: it waits in the queue
            if run_id not in self.pending:
                self.pending.append(run_id)
        self.wake.set()

    def stop(self, run_id: str) -> str:
        """'stopped' (was queued), 'stopping' (asked the worker) or 'not_active'."""
        with self.lock:
            if run_id in self.pending:
                self.pending.remove(run_id)
                store.update_run(
                    self.services.db,
                    run_id,
                    status="stopped",
                    reason="stopped before it started",
                    finished=time.time(),
                )
                return "stopped"
            active = self.active.get(run_id)
            if active is None:
                return "not_active"
            _tell(active.control, "stop")
            active.stop_requested = time.time()
            return "stopping"

    def queue_state(self) -> dict:
        with self.lock:
            return {
                "queued": list(self.pending),
                "running": list(self.active),
                "slots": dict(self.slots),
            }

    def position(self, run_id: str) -> int | None:
        with self.lock:
            return self.pending.index(run_id) + 1 if run_id in self.pending else None

    def shutdown(self, timeout: float = 10.0) -> None:
        self.closing = True
        self.wake.set()
        with self.lock:
            for active in self.active.values():
                _tell(active.control, "stop")
        deadline = time.time() + timeout
        for active in list(self.active.values()):
            active.process.join(max(0.1, deadline - time.time()))
            if active.process.is_alive():
                active.process.kill()

    # --- internals ---------------------------------------------------------------------------

    def _recover(self) -> None:
        """Runs left running by a previous server are interrupted; queued ones queue again."""
        for run in store.active(self.services.db):
            if run["status"] == "running":
                store.update_run(
                    self.services.db,
                    run["id"],
                    status="interrupted",
                    reason="the server stopped while this run was running",
                    finished=time.time(),
                )
            else:
                self.pending.append(run["id"])

    def _slot_for(self, run: dict) -> str:
        device = (run.get("overrides") or {}).get("device") or run.get("device_setting") or "auto"
        if device == "cpu" or len(self.slots) == 1:
            return "cpu"
        if device.startswith("cuda:") and device in self.slots:
            return device
        # auto / cuda: the GPU with the fewest runs
        gpus = [s for s in self.slots if s != "cpu"]
        return min(gpus, key=lambda s: sum(a.slot == s for a in self.active.values()))

    def _free(self, slot: str) -> bool:
        used = sum(a.slot == slot for a in self.active.values())
        return used < self.slots.get(slot, 0)

    def _loop(self) -> None:
        while not self.closing:
            self.wake.wait(0.2)
            self.wake.clear()
            try:
                self._reap()
                self._launch()
            except Exception:  # the scheduler must outlive any one run's trouble
                import logging

                logging.getLogger("torchloom.runner").exception("scheduler error")

    def _launch(self) -> None:
        with self.lock:
            for run_id in list(self.pending):
                if run_id in self.active:
                    continue
                run = store.internal(self.services.db, run_id)
                if run is None or run["status"] != "queued":
                    self.pending.remove(run_id)
                    continue
                slot = self._slot_for(run)
                if not self._free(slot):
                    continue
                self.pending.remove(run_id)
                self._spawn(run, slot)

    def _spawn(self, run: dict, slot: str) -> None:
        q = self.ctx.Queue()
        control = self.ctx.Queue()
        overrides = dict(run["overrides"] or {})
        if slot != "cpu" and overrides.get("device", "auto") in ("auto", "cuda"):
            overrides["device"] = slot
        job = {
            "run_id": run["id"],
            "document": run["document"],
            "overrides": overrides,
            "out_dir": run["out_dir"],
            "data_root": str(self.services.data.datasets_root),
            "data_names": dataset_store.display_names(self.services, run["document"]),
            # a run that has a checkpoint is being resumed: it continues from there
            "resume": run["checkpoint"],
            "allow_custom_code": self.cfg.allow_custom_code,
            "start_seq": run["last_seq"],
            "heartbeat_seconds": self.cfg.heartbeat_seconds,
            "threads": self.cpu_threads() if slot == "cpu" else None,
        }
        process = self.ctx.Process(
            target=worker_main,
            args=(job, q, control),
            name=f"torchloom-run-{run['id']}",
            daemon=True,
        )
        process.start()
        store.update_run(
            self.services.db,
            run["id"],
            status="running",
            started=time.time(),
            pid=process.pid,
            heartbeat=time.time(),
            reason=None,
            finished=None,
        )
        relay = Relay(self.services, self.socketio, run["id"], q, self.cfg.step_emit_rate)
        self.active[run["id"]] = Active(run["id"], slot, process, q, control, relay)
        relay.on_heartbeat = lambda t, rid=run["id"]: self._beat(rid, t)
        relay.start()

    def cpu_threads(self) -> int:
        """Threads for each CPU run: the cores but one, shared by the CPU slots. The one left
        keeps this process responsive — it stores and sends every event to the watchers and
        validates on every edit — and a run whose threads all get cores does not stall
        waiting for one that lost its core to the web process (bench/server_load.py on 2
        cores: the digits MLP with 1 thread was as fast as with 2 unwatched, and faster while
        100 clients watched; bench/RESULTS.md)."""
        if self.cfg.cpu_threads:
            return self.cfg.cpu_threads
        return max(1, (torch.get_num_threads() - 1) // max(1, self.cfg.cpu_slots))

    def _beat(self, run_id: str, t: float) -> None:
        active = self.active.get(run_id)
        if active is not None:
            active.last_beat = time.time()

    def _reap(self) -> None:
        """Collect ended, hung and unstoppable workers; finish their runs outside the lock
        (draining a relay can take seconds and must not block the API)."""
        ended: list[tuple[Active, str | None]] = []
        with self.lock:
            for run_id, active in list(self.active.items()):
                proc = active.process
                hung = time.time() - active.last_beat > self.cfg.worker_timeout
                slow_stop = active.stop_requested and time.time() - active.stop_requested > 30
                if proc.is_alive() and not (hung or slow_stop):
                    continue
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)
                    reason = (
                        f"the worker stopped answering (no heartbeat for "
                        f"{self.cfg.worker_timeout:.0f} s) and was killed"
                        if hung
                        else "the worker did not stop within 30 s and was killed"
                    )
                else:
                    proc.join(1)
                    code = proc.exitcode
                    reason = None
                    if code not in (0, None):
                        what = SIGNALS.get(code, f"exited with code {code}")
                        reason = f"the worker process {what}"
                del self.active[run_id]
                ended.append((active, reason))
        for active, reason in ended:
            active.relay.finish(failure=reason)
            active.control.close()
            self.wake.set()


def _tell(control, message: str) -> None:
    with contextlib.suppress(ValueError, OSError):  # closed: the worker is gone already
        control.put_nowait(message)
