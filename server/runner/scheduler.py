"""The run queue: worker processes (spawn) with slots per device, a relay per run, fault
handling (a worker that dies or stops sending heartbeats fails its run, the next one starts; a
run whose events cannot be stored, e.g. on a full disk, fails and the server keeps serving),
and recovery at start (runs left running become interrupted and resumable, after any leftover
worker of theirs is killed)."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..engine.checkpoint import latest_checkpoint
from ..storage import datasets as dataset_store
from ..storage import runs as store
from . import folder_lock, leftovers
from .relay import INTERRUPTED, Relay
from .worker import worker_main

log = logging.getLogger("torchloom.runner")

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
        # runs whose worker ended but whose end is not recorded yet: being finished (a relay
        # draining), or waiting for a write the store refused (a full disk), retried each tick
        self.finishing: dict[str, Relay] = {}
        self.busy_logged: set[str] = set()  # runs waiting for a leftover writer (logged once)
        self.wake = threading.Event()
        self.closing = False
        self._shutdown_once = threading.Lock()
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
        """'stopped' (was queued), 'stopping' (asked the worker, or its end is being recorded)
        or 'not_active'."""
        with self.lock:
            if run_id in self.finishing:
                return "stopping"
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

    def holds(self, run_id: str) -> bool:
        """Does this scheduler have the run (queued, running, or its end being recorded)? A run
        the database calls queued or running that it does not hold has no worker."""
        with self.lock:
            return run_id in self.pending or run_id in self.active or run_id in self.finishing

    def unrecorded_failure(self, run_id: str) -> str | None:
        """Why the run failed, while the store cannot take it yet (a full disk): the API shows
        it at once instead of a "running" that the database can no longer correct."""
        with self.lock:
            relay = self.finishing.get(run_id)
            if relay is not None:  # its end is being recorded: it failed to write, or not yet
                if relay.unrecorded_end is not None:
                    return relay.unrecorded_end[1]
                if relay.write_error is not None:
                    return relay.write_error
            active = self.active.get(run_id)
            return active.relay.write_error if active is not None else None

    def forget(self, run_id: str) -> None:
        """The run is deleted: stop retrying to record its end."""
        with self.lock:
            self.finishing.pop(run_id, None)

    def shutdown(self, timeout: float = 5.0) -> None:
        """The one way the server stops its runs: each worker is asked to stop (it writes a
        resumable checkpoint after its current step), killed if it has not ended after
        `timeout` seconds, and its run is recorded "interrupted" (resumable; queued runs stay
        queued for the next start). Safe to call twice, from several threads, from a signal
        handler or atexit: only the first call works, later ones return at once. (A signal
        handler must run on a thread that is not inside a database write: it writes the
        interrupted status; the serve loop's main thread never is.)"""
        if not self._shutdown_once.acquire(blocking=False):
            return
        self.closing = True
        self.wake.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(2)  # no reaping or launching from here on
        with self.lock:
            ending = list(self.active.values())
            for active in ending:
                active.relay.interrupted = True
                _tell(active.control, "stop")
        deadline = time.monotonic() + timeout
        for active in ending:
            active.process.join(max(0.05, deadline - time.monotonic()))
        for active in ending:
            if active.process.is_alive():
                active.process.kill()
                active.process.join(2)
        for active in ending:
            active.relay.exited.set()  # its stored events are all that counts now
            active.relay.thread.join(max(0.05, deadline + 1 - time.monotonic()))
            if active.relay.terminal is None:
                self._record(
                    active.run_id, status="interrupted", reason=INTERRUPTED, finished=time.time()
                )

    # --- internals ---------------------------------------------------------------------------

    def _record(self, run_id: str, **values) -> bool:
        try:
            store.update_run(self.services.db, run_id, **values)
        except Exception:
            log.exception("run %s: %s cannot be recorded", run_id, values)
            return False
        return True

    def _recover(self) -> None:
        """Runs left running by a previous server are interrupted (their leftover worker, if
        one still runs, killed first); queued ones queue again."""
        for run in store.active(self.services.db):
            if run["status"] == "running":
                outcome = leftovers.end_leftover(run["pid"], run["pid_started"])
                reason = INTERRUPTED
                if outcome == "survived":
                    reason += f"; its worker (pid {run['pid']}) could not be stopped"
                store.update_run(
                    self.services.db,
                    run["id"],
                    status="interrupted",
                    reason=reason,
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
                self._retry_unrecorded()
                self._launch()
            except Exception:  # the scheduler must outlive any one run's trouble
                log.exception("scheduler error")

    def _launch(self) -> None:
        with self.lock:
            if self.closing:  # shutdown() has taken stock of the workers: start no other
                return
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
                holder = folder_lock.holder(Path(run["out_dir"]))
                if holder is not None:  # a writer from before still runs: never two at once
                    if run_id not in self.busy_logged:
                        self.busy_logged.add(run_id)
                        log.warning("run %s waits: process %s holds its folder", run_id, holder)
                    continue
                self.busy_logged.discard(run_id)
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
            "resume": _resume_point(run),
            "allow_custom_code": self.cfg.allow_custom_code,
            "start_seq": run["last_seq"],
            "heartbeat_seconds": self.cfg.heartbeat_seconds,
            "threads": self.cpu_threads() if slot == "cpu" else None,
            "quota": {
                "root": str(self.services.data.root / "runs"),
                "limit": self.cfg.run_quota_bytes,
            },
        }
        process = self.ctx.Process(
            target=worker_main,
            args=(job, q, control),
            name=f"torchloom-run-{run['id']}",
            daemon=True,
        )
        process.start()
        # the Active entry keeps the Process object alive as long as the worker runs: dropping
        # it would close the pipe the worker's lifeline watches and end the worker
        relay = Relay(self.services, self.socketio, run["id"], q, self.cfg.step_emit_rate)
        self.active[run["id"]] = Active(run["id"], slot, process, q, control, relay)
        relay.on_heartbeat = lambda t, rid=run["id"]: self._beat(rid, t)
        relay.on_write_error = lambda reason, p=process: p.kill()
        try:
            store.update_run(
                self.services.db,
                run["id"],
                status="running",
                started=time.time(),
                pid=process.pid,
                pid_started=leftovers.start_ticks(process.pid),
                heartbeat=time.time(),
                reason=None,
                finished=None,
            )
        except Exception as exc:
            relay.storage_failed(exc, "starting the run")
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
            for active, _ in ended:
                self.finishing[active.run_id] = active.relay
        for active, reason in ended:
            try:
                active.relay.finish(failure=reason)
            finally:
                active.control.close()
                with self.lock:
                    if active.relay.unrecorded_end is None:
                        self.finishing.pop(active.run_id, None)
            self.wake.set()

    def _retry_unrecorded(self) -> None:
        """Runs whose end the store refused (a full disk): write it once there is room, so a
        run never stays "running" without a worker."""
        with self.lock:
            waiting = [r for r in self.finishing.values() if r.unrecorded_end is not None]
        for relay in waiting:
            if relay.record_end():
                with self.lock:
                    self.finishing.pop(relay.run_id, None)


def _resume_point(run: dict) -> str | None:
    """The checkpoint a resumed run continues from: the recorded one, or, if the worker
    deleted it (only the last few are kept) after its server stopped recording, the newest
    one in the run folder."""
    recorded = run["checkpoint"]
    if not recorded or Path(recorded).is_file():
        return recorded
    newest = latest_checkpoint(Path(run["out_dir"]))
    return str(newest) if newest else recorded


def _tell(control, message: str) -> None:
    with contextlib.suppress(ValueError, OSError):  # closed: the worker is gone already
        control.put_nowait(message)
