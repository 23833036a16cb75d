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
    # one thread pool per worker: several CPU runs side by side must not oversubscribe cores
    threads = job.get("threads")
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    from server.engine.trainer import Trainer

    trainer = Trainer(
        job["document"],
        run_id=job["run_id"],
        out_dir=Path(job["out_dir"]),
        overrides=job.get("overrides") or {},
        resume=job.get("resume"),
        allow_custom_code=job.get("allow_custom_code", False),
        start_seq=job.get("start_seq", 0),
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
    alive = threading.Event()

    def heartbeat():
        while not alive.wait(job.get("heartbeat_seconds", 2.0)):
            queue.put({"kind": "heartbeat", "time": time.time(), "pid": os.getpid()})

    def watch_stop():  # the trainer stops after its current step
        while control.get() != "stop":
            pass
        trainer.request_stop()

    threading.Thread(target=heartbeat, name="torchloom-heartbeat", daemon=True).start()
    threading.Thread(target=watch_stop, name="torchloom-stop", daemon=True).start()
    try:
        trainer.run()
    finally:
        alive.set()
        queue.put({"kind": "exit"})
