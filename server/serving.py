"""`torchloom serve`'s server: gunicorn, embedded, with one gevent worker process.

Why gevent: each connection — a browser's websocket, a slow or idle client — is a greenlet
(a few kB), not a thread. Werkzeug's development server held a thread per connection (1,000 slow
unauthenticated sockets: 1,005 threads) and ran out of file descriptors with them.
Why one worker: the run scheduler and the Socket.IO rooms live in that process.

Limits that keep normal requests answered while slow clients hold connections:
- a request's headers must arrive within HEADER_TIMEOUT (gunicorn's keep-alive timeout bounds
  every header read of its gevent worker, the first request's included), else the connection
  is closed;
- any one read or write on a connection may wait IO_TIMEOUT (a body that stops, a client that
  does not read its answer), and a whole request body must arrive within BODY_TIMEOUT (408);
- at most connection_cap() connections at once, below the descriptor limit (RLIMIT_NOFILE) with
  room for the scheduler's pipes, the database and the analysis processes: past the cap,
  new connections wait in the listen backlog instead of failing for want of a descriptor.

Process layout: `torchloom serve` checks its options, then exec()s `python -m server.serving`
(same pid, a fresh interpreter) so that the gunicorn master imports neither torch nor the app.
The worker monkey-patches the standard library with gevent first and imports the app after:
a lock made by a module imported before the patch would be a real OS lock, and a greenlet
waiting on it would freeze the whole process. Under the patch the server's own threads (run
scheduler, relays, the analysis pool's manager) are greenlets, and what they wait on is made
cooperative by gevent: multiprocessing queues are read with a timeout (connection.wait → the
patched poll), joins and futures wait on patched locks. Training workers and analysis
processes are spawned: fresh interpreters, never patched. What still holds the whole process
while it lasts is CPU-bound work in a request (an ONNX export, a prediction) and SQLite's calls.

Shutdown (SIGTERM or SIGINT to the master, as gunicorn handles them): the worker stops
accepting, gives open connections DRAIN_SECONDS, then runs `Runner.shutdown()` and closes the
analysis processes; the master waits for that (graceful_timeout) and exits 0.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from dataclasses import fields
from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from .config import ServerConfig

HEADER_TIMEOUT = 10  # whole seconds: gunicorn's settings are integers
IO_TIMEOUT = 30.0
BODY_TIMEOUT = 120.0
DRAIN_SECONDS = 3
SHUTDOWN_SECONDS = 25  # Runner.shutdown (10 s for workers to stop) and the analysis pool
# the master kills a worker whose loop has not run for this long (a request that holds the
# process, e.g. CPU-bound work): the server restarts, and runs left running are interrupted
WORKER_TIMEOUT = 120
# descriptors kept free of connections: run workers' queues and sentinels, SQLite's files per
# pooled connection, analysis processes, Redis, logs, the libraries' own
RESERVED_FDS = 128
CONFIG_ENV = "TORCHLOOM_SERVE_CONFIG"


def connection_cap(nofile: int | None = None) -> int:
    """Connections the worker holds at once: below the soft descriptor limit, with headroom."""
    if nofile is None:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if nofile == resource.RLIM_INFINITY:
        nofile = 65536
    return max(16, nofile - max(RESERVED_FDS, nofile // 8))


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- request bodies ---------------------------------------------------------------------------


class BodyDeadline:
    """WSGI middleware: a request body must arrive within `seconds` of the request's start,
    however slowly it trickles (each read also has IO_TIMEOUT); past it the read raises
    408 Request Timeout, which the app answers as its other HTTP errors."""

    def __init__(self, app, seconds: float):
        self.app, self.seconds = app, seconds

    def __call__(self, environ, start_response):
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = _DeadlineInput(stream, time.monotonic() + self.seconds)
        return self.app(environ, start_response)


class _DeadlineInput:
    def __init__(self, stream, deadline: float):
        self._stream, self._deadline = stream, deadline

    def _call(self, method, *args):
        import gevent
        from werkzeug.exceptions import RequestTimeout

        left = self._deadline - time.monotonic()
        expired = RequestTimeout(f"the request body did not arrive within {BODY_TIMEOUT:.0f} s")
        if left <= 0:
            raise expired
        with gevent.Timeout(left, expired):
            return method(*args)

    def read(self, size=-1):
        return self._call(self._stream.read, size)

    def readline(self, size=-1):
        return self._call(self._stream.readline, size)

    def readlines(self, hint=-1):
        return self._call(self._stream.readlines, hint)

    def __iter__(self):
        while line := self.readline():
            yield line


# --- gunicorn ---------------------------------------------------------------------------------


class Worker(GeventWorker):
    """gunicorn's gevent worker with a timeout on every socket operation, a deadline for
    request bodies, a connection cap below the descriptor limit, a short drain of open
    connections at shutdown, and the app's services stopped as the worker ends (however it
    ends: SIGTERM, SIGINT/SIGQUIT, its master gone). Usable on its own too:
    `gunicorn -k server.serving.Worker ... 'server.wsgi:create()'`."""

    flask_app = None

    def init_process(self):
        # the master waits graceful_timeout for this worker to exit; the worker's own wait for
        # open connections (websockets never close by themselves) must leave the services'
        # shutdown time within it. This cfg is this process's copy.
        self.cfg.set("graceful_timeout", DRAIN_SECONDS)
        # more connections than descriptors is never right: accept() would fail with EMFILE
        # and requests already accepted could not open a file
        self.worker_connections = min(self.worker_connections, connection_cap())
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        self.flask_app = self.wsgi
        self.wsgi = BodyDeadline(self.wsgi, BODY_TIMEOUT)

    def handle(self, listener, client, addr):
        # GeventWorker.handle makes the socket blocking without a timeout: a client that stops
        # sending (or reading) would hold its connection for ever
        client.settimeout(IO_TIMEOUT)
        AsyncWorker.handle(self, listener, client, addr)

    def run(self):
        try:
            super().run()
        finally:
            shutdown_services(self.flask_app)


def shutdown_services(app) -> None:
    """Stop the training workers (their runs end interrupted, resumable) and the analysis
    processes."""
    services = getattr(app, "extensions", {}).get("torchloom")
    if services is None:
        return
    if services.runner is not None:
        services.runner.shutdown()
    services.analysis.close()


class Application(BaseApplication):
    """gunicorn embedded: the options come from `torchloom serve`, the app is made in the
    worker (after gevent's patch)."""

    def __init__(self, cfg: ServerConfig, announce: str):
        self.cfg_server, self.announce = cfg, announce
        super().__init__()

    def load_config(self):
        options = {
            "bind": bind_address(self.cfg_server.host, self.cfg_server.port),
            "workers": 1,
            "worker_class": "server.serving.Worker",
            "worker_connections": connection_cap(),
            "keepalive": HEADER_TIMEOUT,
            "timeout": WORKER_TIMEOUT,
            "graceful_timeout": DRAIN_SECONDS + SHUTDOWN_SECONDS,
            "loglevel": "warning",
            "proc_name": "torchloom",
            "post_worker_init": _announce,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        from graph_compiler import warmup

        from .app import create_app

        app = create_app(self.cfg_server)
        app.extensions["torchloom"].analysis.start()  # its processes warm up meanwhile
        warmup()
        return app


def _announce(worker) -> None:
    print(worker.app.announce, flush=True)


# --- the process ------------------------------------------------------------------------------


def exec_server(cfg: ServerConfig, announce: str) -> None:
    """Replace this process (same pid) by a fresh interpreter running the gunicorn master."""
    sys.stdout.flush()
    sys.stderr.flush()
    env = {**os.environ, CONFIG_ENV: json.dumps({"config": config_json(cfg), "announce": announce})}
    os.execve(sys.executable, [sys.executable, "-m", "server.serving"], env)


def config_json(cfg: ServerConfig) -> dict:
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)} | {
        "data_dir": str(cfg.data_dir),
        "examples_dir": str(cfg.examples_dir) if cfg.examples_dir else None,
    }


def config_from_json(raw: dict) -> ServerConfig:
    raw = dict(raw)
    for name in ("data_dir", "examples_dir"):
        if raw.get(name) is not None:
            raw[name] = Path(raw[name])
    for name in ("gpus", "allowed_hosts", "trusted_origins"):
        if raw.get(name) is not None:
            raw[name] = tuple(raw[name])
    return ServerConfig(**raw)


def main() -> int:
    # read once and dropped: the token must not reach the training workers' environment
    spec = json.loads(os.environ.pop(CONFIG_ENV))
    try:
        Application(config_from_json(spec["config"]), spec["announce"]).run()
    except SystemExit as exc:  # the arbiter ends with sys.exit(status)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":  # one copy of this module: the one gunicorn imports the worker from
    from server.serving import main as serving_main

    raise SystemExit(serving_main())
