"""The worker process: runs one training run and streams its events to the server.

Imports no Flask. Messages on the queue: {"kind": "events", "events": [...]}, {"kind":
"heartbeat", "time": t}, {"kind": "exit"}. A stop request arrives on the control queue.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any


def worker_main(job: dict[str, Any], queue, control) -> None:
    # first of all: a worker must never outlive its server (it would keep writing into a run
    # folder that a restarted server hands to a new worker)
    from server.lifeline import die_with_parent

    die_with_parent()
    # beating from the start: importing torch and loading the data can take seconds on a busy
    # machine, and the server must not take that for a hung worker
    alive = threading.Event()

    def heartbeat():
        while not alive.wait(job.get("heartbeat_seconds", 2.0)):
            queue.put({"kind": "heartbeat", "time": time.time(), "pid": os.getpid()})

    threading.Thread(target=heartbeat, name="torchloom-heartbeat", daemon=True).start()
    from server.runner.folder_lock import FolderBusy, FolderLock

    try:
        try:  # held until this process ends: no other process writes the run folder meanwhile
            lock = FolderLock(Path(job["out_dir"])).acquire()
        except (FolderBusy, OSError) as exc:
            _report_failure(job, queue, "run_folder_busy", str(exc))
            return
        try:
            _train(job, queue, control)
        finally:
            lock.release()
    finally:
        alive.set()
        queue.put({"kind": "exit"})


def _report_failure(job: dict[str, Any], queue, code: str, reason: str) -> None:
    from server.engine.events import EventBus

    event = EventBus(job["run_id"], start_seq=job.get("start_seq", 0)).emit(
        "failed", code=code, reason=reason
    )
    queue.put({"kind": "events", "events": [event.to_dict()]})


def _train(job: dict[str, Any], queue, control) -> None:
    # one thread pool per worker: several CPU runs side by side must not oversubscribe cores
    threads = job.get("threads")
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    from server.engine.checkpoint import CheckpointQuota
    from server.engine.trainer import Trainer

    quota = job.get("quota")
    trainer = Trainer(
        job["document"],
        run_id=job["run_id"],
        out_dir=Path(job["out_dir"]),
        overrides=job.get("overrides") or {},
        resume=job.get("resume"),
        allow_custom_code=job.get("allow_custom_code", False),
        start_seq=job.get("start_seq", 0),
        checkpoint_quota=CheckpointQuota(Path(quota["root"]), quota["limit"]) if quota else None,
        # the files a server run may read: its uploaded datasets (checked again in the worker)
        data_root=Path(job["data_root"]),
        data_names=job.get("data_names") or {},
    )

    class Forward:
        batched = True
        __name__ = "server relay"

        def __call__(self, events):
            queue.put({"kind": "events", "events": [e.to_dict() for e in events]})

    trainer.events.subscribe(Forward())

    def watch_stop():  # the trainer stops after its current step
        while control.get() != "stop":
            pass
        trainer.request_stop()

    threading.Thread(target=watch_stop, name="torchloom-stop", daemon=True).start()
    trainer.run()
