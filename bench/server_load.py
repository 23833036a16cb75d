"""Server load: many browsers watching one run, concurrent validation, and what watching costs.

    .venv/bin/python bench/server_load.py [--watchers 100] [--client-procs 2] [--epochs 150]

1. 100 Socket.IO clients (websocket transport), in processes of their own so that their CPU is
   not counted as the server's, subscribe to one CPU run of the digits MLP: every client must
   end with every stored event exactly once, in order; latency from emit (the relay's `sent`
   stamp on each message) to receipt — target p95 < 100 ms. The event's own time (set in the
   worker) to receipt is shown as well: it adds the worker's dispatch and the relay's throttle.
2. 50 concurrent POST /api/validate of a 100-node graph (the clients in a process of their
   own): p95 latency — target < 300 ms.
3. The run's training samples/s with the 100 watchers against the same run with none (before
   and after the watched one) — target ≤ 5 % slower; plus the CPU seconds the server process
   and the client processes spent during each run, which is where the slowdown comes from.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import chain
from tests.served import Served, cpu_seconds
from tests.server_live import TOKEN, ordered_client

TERMINAL = ("finished", "failed", "stopped")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Watcher:
    """One browser: live events that arrive before the subscribe reply wait for it (the
    documented client rule), then everything above the last sequence it holds is kept."""

    def __init__(self, url: str):
        self.client = ordered_client()  # in arrival order, on one thread, as a browser
        self.client.on("events", self.on_events)
        self.client.connect(url, transports=["websocket"], auth={"token": TOKEN}, wait_timeout=60)
        self.run_id = None

    def watch(self, run_id: str) -> None:
        self.run_id = run_id
        self.seqs: list[int] = []
        self.emit_latency: list[float] = []  # relay's emit → receipt, one per message
        self.event_latency: list[float] = []  # event time in the worker → receipt, per event
        self.early: list[dict] = []
        self.replied = False
        self.done = threading.Event()
        self.client.emit("subscribe", {"run_id": run_id, "after": 0}, callback=self.on_reply)

    def on_events(self, message: dict) -> None:
        now = time.time()
        if message["run_id"] != self.run_id:
            return
        self.emit_latency.append(now - message["sent"])
        for e in message["events"]:
            self.event_latency.append(now - e["time"])
        if self.replied:
            self.take(message["events"])
        else:
            self.early += message["events"]

    def on_reply(self, reply: dict) -> None:
        self.replied = True
        self.take(reply["events"] + self.early)

    def take(self, events: list[dict]) -> None:
        for e in events:
            if not self.seqs or e["seq"] > self.seqs[-1]:
                self.seqs.append(e["seq"])
            if e["type"] in TERMINAL:
                self.done.set()


def clients_main(url: str, count: int, conn) -> None:
    """A client process: connect `count` watchers once; then for each run id it is sent,
    subscribe them all, and send back what each received once the run has ended."""
    watchers = [Watcher(url) for _ in range(count)]
    conn.send("connected")
    while (run_id := conn.recv()) is not None:
        cpu0 = time.process_time()
        for w in watchers:
            w.watch(run_id)
        for w in watchers:
            w.done.wait(600)
        cpu = time.process_time() - cpu0
        clients = [(w.seqs, w.emit_latency, w.event_latency) for w in watchers]
        for w in watchers:
            w.client.emit("unsubscribe", {"run_id": run_id})
        conn.send({"cpu": cpu, "clients": clients})
    for w in watchers:
        w.client.disconnect()


class Clients:
    """The watchers, in `procs` processes of their own, connected before any run starts."""

    def __init__(self, url: str, watchers: int, procs: int):
        ctx = mp.get_context("spawn")
        self.pipes, self.children = [], []
        for i in range(procs):
            ours, theirs = ctx.Pipe()
            share = watchers // procs + (i < watchers % procs)
            child = ctx.Process(target=clients_main, args=(url, share, theirs), daemon=True)
            child.start()
            self.pipes.append(ours)
            self.children.append(child)
        for p in self.pipes:
            assert p.recv() == "connected"

    def watch(self, run_id: str) -> None:
        for p in self.pipes:
            p.send(run_id)

    def results(self) -> list[dict]:
        return [p.recv() for p in self.pipes]

    def close(self) -> None:
        for p in self.pipes:
            p.send(None)
        for child in self.children:
            child.join(30)


def run_speed(live: Served, run_id: str) -> float:
    epochs = live.call("GET", f"/api/runs/{run_id}/metrics")[1]["epochs"]
    timed = epochs[1:] or epochs
    return sum(e["samples_per_s"] for e in timed) / len(timed)


def one_run(live: Served, project: str, epochs: int, clients: Clients | None) -> dict:
    """One run of the digits MLP, watched by every client or by none."""
    web = live.worker_pid()  # the web process, where the relay stores and sends the events
    cpu0 = cpu_seconds(web)
    run = live.start_run(project, epochs=epochs)
    if clients is not None:
        clients.watch(run["id"])
    final = live.wait(run["id"], lambda r: r["status"] in TERMINAL, timeout=600)
    server_cpu = cpu_seconds(web) - cpu0
    results = clients.results() if clients is not None else []
    assert final["status"] == "finished", final
    stored = live.call("GET", f"/api/runs/{run['id']}/events?limit=1000000")[1]["events"]
    expected = [e["seq"] for e in stored]
    received = [c for r in results for c in r["clients"]]
    for seqs, _, _ in received:
        if seqs != expected:  # say what went wrong, for the record
            got = set(seqs)
            missing = [s for s in expected if s not in got]
            print(
                f"incomplete client: {len(seqs)} events, missing {missing[:10]}"
                f"{'…' if len(missing) > 10 else ''}, first {seqs[:3]}, last {seqs[-3:]}",
                file=sys.stderr,
            )
    return {
        "events": len(stored),
        "complete_clients": sum(seqs == expected for seqs, _, _ in received),
        "emit_latency": [x for _, lat, _ in received for x in lat],
        "event_latency": [x for _, _, lat in received for x in lat],
        "messages": sum(len(lat) for _, lat, _ in received) / max(1, len(received)),
        "speed": run_speed(live, run["id"]),
        "server_cpu": server_cpu,
        "client_cpu": sum(r["cpu"] for r in results),
        "seconds": final["finished"] - final["started"],
    }


def validators_main(url: str, n: int, conn) -> None:
    """A client process: n concurrent validations of a 100-node graph; sends their times."""
    layers = [
        (f"n{i}", "Linear", {"out_features": 64}) if i % 2 == 0 else (f"n{i}", "ReLU", {})
        for i in range(97)
    ]
    document = chain(
        "digits", [*layers, ("head", "Linear", {"out_features": 10})], with_training=False
    )
    body = json.dumps({"document": document}).encode()

    def one(_):
        req = urllib.request.Request(
            f"{url}/api/validate",
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
        conn.send(list(pool.map(one, range(n))))


def validate_load(live: Served, n: int) -> list[float]:
    """The HTTP clients in a process of their own, like the watchers."""
    ours, theirs = mp.get_context("spawn").Pipe()
    child = mp.get_context("spawn").Process(target=validators_main, args=(live.url, n, theirs))
    child.start()
    times = ours.recv()
    child.join(30)
    return times


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--client-procs", type=int, default=2, help="processes for the watchers")
    ap.add_argument("--validators", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="pairs of unwatched, watched runs")
    ap.add_argument("--cpu-threads", type=int, default=None, help="threads of the CPU run")
    ap.add_argument(
        "--analysis-workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="processes answering validation, as `torchloom serve` (0: in the web process)",
    )
    args = ap.parse_args()
    load = [os.getloadavg()[0]]
    alone, watched = [], []
    with tempfile.TemporaryDirectory() as tmp:
        # the production default, as `npm start` serves: gunicorn with one gevent worker
        extra = ["--analysis-workers", str(args.analysis_workers)]
        if args.cpu_threads:
            extra += ["--cpu-threads", str(args.cpu_threads)]
        live = Served(Path(tmp) / "data", *extra).ready()
        # what the scheduler gives a CPU run by default: the cores but one (Runner.cpu_threads)
        import torch

        threads = args.cpu_threads or max(1, torch.get_num_threads() - 1)
        clients = None
        try:
            project = live.project_for("digits_mlp")
            one_run(live, project, 2, None)  # warm-up: the first worker fills caches
            clients = Clients(live.url, args.watchers, args.client_procs)
            # alternate, so that load from elsewhere on a shared machine falls on both sides;
            # between watched runs the clients stay connected, unsubscribed (pings only)
            for _ in range(args.rounds):
                alone.append(one_run(live, project, args.epochs, None))
                watched.append(one_run(live, project, args.epochs, clients))
            times = validate_load(live, args.validators)
        finally:
            if clients is not None:
                clients.close()
            live.close()
    load.append(os.getloadavg()[0])
    speed_alone = statistics.median(r["speed"] for r in alone)
    speed_watched = statistics.median(r["speed"] for r in watched)
    slowdown = 1 - speed_watched / speed_alone
    emit = [x for r in watched for x in r["emit_latency"]]
    event = [x for r in watched for x in r["event_latency"]]
    complete = sum(r["complete_clients"] for r in watched)

    def ms(values):
        return f"{1000 * statistics.median(values):.1f} / {1000 * percentile(values, 0.95):.1f}"

    def cores(runs, key):  # CPU seconds per second of run
        return statistics.median(r[key] / r["seconds"] for r in runs)

    def speeds(runs):
        return ", ".join(f"{r['speed']:,.0f}" for r in runs)

    rows = [
        ("cores / load average at start, end", f"{os.cpu_count()} / {load[0]:.2f}, {load[1]:.2f}"),
        ("watchers / client processes", f"{args.watchers} / {args.client_procs}"),
        ("threads of the training run", f"{threads}"),
        ("analysis processes (validation)", f"{args.analysis_workers}"),
        ("rounds (one unwatched, one watched run)", f"{args.rounds}"),
        (
            "events per run / messages per client",
            f"{watched[0]['events']} / {statistics.median(r['messages'] for r in watched):.0f}",
        ),
        ("clients with every event, in order", f"{complete}/{args.watchers * args.rounds}"),
        ("emit → receipt p50 / p95 (ms)", ms(emit)),
        ("event time → receipt p50 / p95 (ms)", ms(event)),
        ("run samples/s unwatched", speeds(alone)),
        ("run samples/s watched", speeds(watched)),
        ("run slowdown with watchers (medians)", f"{100 * slowdown:+.1f} %"),
        (
            "server CPU (cores) unwatched / watched",
            f"{cores(alone, 'server_cpu'):.2f} / {cores(watched, 'server_cpu'):.2f}",
        ),
        ("client processes' CPU (cores) watched", f"{cores(watched, 'client_cpu'):.2f}"),
        (f"{args.validators} concurrent validates p50 / p95 (ms)", ms(times)),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
    print(
        json.dumps(
            {
                "emit_p95_ms": 1000 * percentile(emit, 0.95),
                "complete": complete == args.watchers * args.rounds,
                "slowdown": slowdown,
                "validate_p95_ms": 1000 * percentile(times, 0.95),
            }
        )
    )


if __name__ == "__main__":
    main()
