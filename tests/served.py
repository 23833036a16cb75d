"""`torchloom serve` in a process of its own — gunicorn with one gevent worker, as `npm start`
runs it — for the tests and benchmarks that need the production default rather than the
in-process werkzeug server of tests/server_live.py."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.server_live import TOKEN, RunCalls, free_port, ordered_client

ROOT = Path(__file__).resolve().parent.parent


class Served(RunCalls):
    def __init__(self, data_dir: Path, *extra: str, preexec_fn=None):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.data_dir.parent / f"serve-{self.port}.log"  # read when a check fails
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port),
                 "--data-dir", str(self.data_dir), "--token", TOKEN, *extra],
                cwd=ROOT,
                stdout=log,  # a file, not a pipe: an unread pipe would fill up and stall it
                stderr=subprocess.STDOUT,
                preexec_fn=preexec_fn,
            )  # fmt: skip

    def ready(self, timeout: float = 120) -> Served:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}: {self.tail()}")
            try:
                if self.call("GET", "/api/system", timeout=5)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"serve did not answer within {timeout} s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def call(self, method: str, path: str, body=None, timeout: float = 30, raw: bytes = b"",
             content_type: str = "application/json"):  # fmt: skip
        data = json.dumps(body).encode() if body is not None else (raw or None)
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def socket_client(self):
        client = ordered_client()
        client.connect(self.url, transports=["websocket"], auth={"token": TOKEN}, wait_timeout=10)
        return client

    def stored_run(self, run_id: str) -> dict:
        """The run's row as stored (worker pid, status), read without the server."""
        db = sqlite3.connect(f"file:{self.data_dir / 'torchloom.db'}?mode=ro", uri=True)
        try:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            return dict(row)
        finally:
            db.close()

    # --- processes ---------------------------------------------------------------------------

    def worker_pid(self) -> int:
        """The web process: the gunicorn master's one child."""
        children = children_of(self.proc.pid)
        assert len(children) == 1, children
        return children[0]

    def close(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4, after the command name
            out.append(int(entry))
    return out


def thread_count(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no thread count for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status waits to be collected
