"""Server load: many browsers watching one run, concurrent validation, and what watching costs.

    .venv/bin/python bench/server_load.py [--watchers 100] [--validators 50] [--epochs 6]

1. 100 Socket.IO clients (websocket transport) subscribe to one CPU run of the digits MLP:
   every client must receive every stored event exactly once; latency is measured from the
   event's timestamp (set in the worker when the event happens) to its receipt by the client —
   target p95 < 100 ms.
2. 50 concurrent POST /api/validate of a 100-node graph: p95 latency — target < 300 ms.
3. The run's training samples/s with the 100 watchers against the same run with none —
   target ≤ 5 % slower.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server_live import TOKEN, LiveServer


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Watcher:
    def __init__(self, live: LiveServer, run_id: str):
        self.seqs: list[int] = []
        self.latency: list[float] = []
        self.done = threading.Event()
        self.client = live.socket_client()

        @self.client.on("events")
        def on_events(message):
            self.take(message["events"])

        reply = self.client.call("subscribe", {"run_id": run_id, "after": 0}, timeout=30)
        self.take(reply["events"], replayed=True)

    def take(self, events: list[dict], replayed: bool = False) -> None:
        now = time.time()
        for e in events:
            if self.seqs and e["seq"] <= self.seqs[-1]:
                continue
            self.seqs.append(e["seq"])
            if not replayed:
                self.latency.append(now - e["time"])
            if e["type"] in ("finished", "failed", "stopped"):
                self.done.set()


def run_speed(live: LiveServer, run_id: str) -> float:
    epochs = live.call("GET", f"/api/runs/{run_id}/metrics")[1]["epochs"]
    timed = epochs[1:] or epochs
    return sum(e["samples_per_s"] for e in timed) / len(timed)


def watched_run(live: LiveServer, project: str, watchers: int, epochs: int) -> dict:
    run = live.start_run(project, epochs=epochs)
    clients = []
    with ThreadPoolExecutor(16) as pool:
        clients = list(pool.map(lambda _: Watcher(live, run["id"]), range(watchers)))
    for c in clients:
        c.done.wait(600)
    final = live.wait(run["id"], lambda r: r["status"] == "finished", timeout=600)
    stored = live.call("GET", f"/api/runs/{run['id']}/events?limit=100000")[1]["events"]
    expected = [e["seq"] for e in stored]
    complete = sum(c.seqs == expected for c in clients)
    latency = [x for c in clients for x in c.latency]
    for c in clients:
        c.client.disconnect()
    return {
        "run": final,
        "events": len(stored),
        "complete_clients": complete,
        "latency": latency,
        "speed": run_speed(live, run["id"]),
    }


def validate_load(live: LiveServer, n: int) -> list[float]:
    nodes = [{"id": "data", "type": "Dataset", "params": {"source": "digits"}}]
    edges = []
    prev, port = "data", "x"
    for i in range(97):
        kind = ("Linear", {"out_features": 64}) if i % 2 == 0 else ("ReLU", {})
        nodes.append({"id": f"n{i}", "type": kind[0], "params": kind[1]})
        edges.append({"source": prev, "source_port": port, "target": f"n{i}", "target_port": "in"})
        prev, port = f"n{i}", "out"
    nodes += [
        {"id": "head", "type": "Linear", "params": {"out_features": 10}},
        {"id": "loss", "type": "CrossEntropyLoss"},
        {"id": "opt", "type": "Adam"},
    ]
    edges += [
        {"source": prev, "source_port": port, "target": "head", "target_port": "in"},
        {"source": "head", "target": "loss", "target_port": "input"},
        {"source": "data", "source_port": "y", "target": "loss", "target_port": "target"},
        {"source": "loss", "source_port": "loss", "target": "opt", "target_port": "loss"},
    ]
    body = json.dumps(
        {"document": {"format": "torchloom.graph/1", "nodes": nodes, "edges": edges}}
    ).encode()

    def one(_):
        req = urllib.request.Request(
            f"{live.url}/api/validate",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        start = time.perf_counter()
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 200 and json.loads(r.read())["ok"]
        return time.perf_counter() - start

    one(0)  # warm caches once, as an editor session would have
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request log lines
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--validators", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=6)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        live = LiveServer(Path(tmp) / "data", seed_examples=False)
        try:
            project = live.project_for("digits_mlp")
            alone = watched_run(live, project, 0, args.epochs)
            watched = watched_run(live, project, args.watchers, args.epochs)
            times = validate_load(live, args.validators)
        finally:
            live.close()
    lat = watched["latency"]
    slowdown = 1 - watched["speed"] / alone["speed"]
    rows = [
        ("watchers", f"{args.watchers}"),
        ("events per run", f"{watched['events']}"),
        ("clients with every event, in order", f"{watched['complete_clients']}/{args.watchers}"),
        (
            "delivery latency p50 / p95 (ms)",
            f"{1000 * statistics.median(lat):.1f} / {1000 * percentile(lat, 0.95):.1f}",
        ),
        ("run samples/s alone / watched", f"{alone['speed']:,.0f} / {watched['speed']:,.0f}"),
        ("run slowdown with watchers", f"{100 * slowdown:+.1f} %"),
        (
            f"{args.validators} concurrent validates p50 / p95 (ms)",
            f"{1000 * statistics.median(times):.0f} / {1000 * percentile(times, 0.95):.0f}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
    print(
        json.dumps(
            {
                "p95_latency_ms": 1000 * percentile(lat, 0.95),
                "complete": watched["complete_clients"] == args.watchers,
                "slowdown": slowdown,
                "validate_p95_ms": 1000 * percentile(times, 0.95),
            }
        )
    )


if __name__ == "__main__":
    main()
