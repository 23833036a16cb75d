"""No orphans (issue 11, item 4): a worker dies with its server, a restart kills a leftover
worker (pid + start time, so a reused pid is left alone), and a run folder has one writer."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from server.runner import leftovers
from server.runner.folder_lock import FolderBusy, FolderLock, holder
from tests.server_live import EXAMPLES, LiveServer, free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
ROOT = Path(__file__).resolve().parent.parent


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_until(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- the leftover kill ---------------------------------------------------------------------


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_leftover_is_killed_only_when_pid_and_start_time_match(sleeper):
    started = leftovers.start_ticks(sleeper.pid)
    assert started is not None
    # the pid was reused by another process: its start time differs, it is left alone
    assert leftovers.end_leftover(sleeper.pid, started - 1) == "reused"
    assert alive(sleeper.pid)
    assert leftovers.end_leftover(sleeper.pid, started) == "killed"
    assert not alive(sleeper.pid)
    assert leftovers.end_leftover(sleeper.pid, started) == "none"  # gone: nothing to do
    assert leftovers.end_leftover(None, None) == "none"


def test_recovery_kills_the_leftover_worker_before_marking_the_run_interrupted(tmp_path, sleeper):
    from server.runner.scheduler import Runner
    from server.storage import runs as store
    from tests.server_app import make_app

    app = make_app(tmp_path)
    services = app.extensions["torchloom"]
    db = services.db
    for run_id, started in (("mine", leftovers.start_ticks(sleeper.pid)), ("reused", 1)):
        store.create(db, run_id, "p", 1, {}, {}, str(services.data.run_dir(run_id)))
        store.update_run(db, run_id, status="running", pid=sleeper.pid, pid_started=started)
    # "reused" names the same pid with another start time: it alone would not kill it
    runner = Runner(services, socketio=None)
    runner._recover()
    assert not alive(sleeper.pid)
    for run_id in ("mine", "reused"):
        run = store.get(db, run_id)
        assert run["status"] == "interrupted", run
    assert "could not be stopped" not in store.get(db, "mine")["reason"]


def test_a_reused_pid_survives_recovery(tmp_path, sleeper):
    from server.runner.scheduler import Runner
    from server.storage import runs as store
    from tests.server_app import make_app

    app = make_app(tmp_path)
    services = app.extensions["torchloom"]
    store.create(services.db, "r", "p", 1, {}, {}, str(services.data.run_dir("r")))
    started = leftovers.start_ticks(sleeper.pid)
    store.update_run(services.db, "r", status="running", pid=sleeper.pid, pid_started=started + 7)
    Runner(services, socketio=None)._recover()
    assert alive(sleeper.pid)
    assert store.get(services.db, "r")["status"] == "interrupted"


# --- one writer per run folder -------------------------------------------------------------


def test_the_folder_lock_admits_one_writer(tmp_path):
    first = FolderLock(tmp_path).acquire()
    assert holder(tmp_path) == os.getpid()
    with pytest.raises(FolderBusy, match=f"process {os.getpid()}"):
        FolderLock(tmp_path).acquire()
    first.release()
    assert holder(tmp_path) is None
    FolderLock(tmp_path).acquire().release()


@pytest.mark.slow
def test_a_resumed_run_waits_while_a_writer_from_before_holds_its_folder(tmp_path):
    live = LiveServer(tmp_path / "data", seed_examples=False)
    try:
        project = live.project_for("digits_cnn")
        run = live.start_run(project, epochs=300)
        live.wait(run["id"], lambda r: r["status"] == "running" and r["last_seq"] > 3)
        live.call("POST", f"/api/runs/{run['id']}/stop")
        live.wait(run["id"], lambda r: r["status"] == "stopped", timeout=30)
        wait_until(lambda: not live.services.runner.holds(run["id"]), 20, "the worker to end")
        stale = FolderLock(live.services.data.run_dir(run["id"])).acquire()  # a leftover
        assert live.call("POST", f"/api/runs/{run['id']}/resume")[0] == 200
        time.sleep(2.0)
        assert live.run(run["id"])["status"] == "queued"  # not started beside the writer
        assert run["id"] not in live.services.runner.active
        stale.release()
        live.wait(run["id"], lambda r: r["status"] == "running", timeout=30)
        live.call("POST", f"/api/runs/{run['id']}/stop")
        live.wait(run["id"], lambda r: r["status"] == "stopped", timeout=30)
    finally:
        live.close()


# --- a real server, killed -----------------------------------------------------------------


class Served:
    """`python -m server.cli serve` in a subprocess on a free port."""

    def __init__(self, data_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                "--no-token",
                "--analysis-workers",
                "0",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._up, 90, "the server to answer")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the server exited with {self.proc.returncode}")
        with contextlib.suppress(OSError):
            return self.call("GET", "/api/system")[0] == 200
        return False

    def call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def run(self, run_id: str) -> dict:
        return self.call("GET", f"/api/runs/{run_id}")[1]

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(30)


def folder_state(folder: Path) -> dict:
    out = {}
    for p in folder.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            if p.is_file():
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.mark.slow
def test_sigkill_of_the_server_leaves_no_worker_and_the_resumed_run_has_one_writer(tmp_path):
    data = tmp_path / "data"
    first = Served(data)
    second = None
    workers: list[int] = []
    try:
        doc = json.loads((EXAMPLES / "digits_mlp.json").read_text())
        status, project = first.call("POST", "/api/projects", {"document": doc})
        assert status == 201, project
        status, run = first.call(
            "POST",
            f"/api/projects/{project['id']}/runs",
            {"overrides": {"epochs": 100_000, "checkpoint_every": 1}},
        )
        assert status == 201, run
        wait_until(lambda: first.run(run["id"])["checkpoint"], 90, "a checkpoint")
        pid, started = _row(data, run["id"])
        workers.append(pid)
        assert alive(pid) and leftovers.start_ticks(pid) == started
        first.kill(signal.SIGKILL)
        wait_until(lambda: not alive(pid), 10, f"worker {pid} to die with its server")
        folder = data / "runs" / run["id"]
        before = folder_state(folder)
        time.sleep(1.5)
        assert folder_state(folder) == before, "something still writes into the run folder"

        second = Served(data)
        assert second.run(run["id"])["status"] == "interrupted"
        status, body = second.call("POST", f"/api/runs/{run['id']}/resume")
        assert status == 200, body
        wait_until(lambda: second.run(run["id"])["status"] == "running", 60, "the resume")
        new_pid, _ = wait_until(lambda: _row(data, run["id"], not_pid=pid), 30, "the new worker")
        workers.append(new_pid)
        wait_until(lambda: holder(folder) == new_pid, 30, "the new worker's folder lock")
        assert not alive(pid)
        # SIGTERM (the default action here): its worker goes with it too
        second.kill(signal.SIGTERM)
        wait_until(lambda: not alive(new_pid), 10, f"worker {new_pid} to die with its server")
    finally:
        first.kill()
        if second is not None:
            second.kill()
        for pid in workers:  # a failed assertion must not leave an orphan behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _row(data: Path, run_id: str, not_pid: int | None = None):
    with contextlib.closing(sqlite3.connect(data / "torchloom.db")) as conn:
        pid, started = conn.execute(
            "SELECT pid, pid_started FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
    if pid is None or pid == not_pid:
        return None
    return pid, started


# --- shutdown and the schema ---------------------------------------------------------------


@pytest.mark.slow
def test_shutdown_interrupts_running_runs_quickly_and_is_safe_to_repeat(tmp_path):
    live = LiveServer(tmp_path / "data", seed_examples=False)
    try:
        project = live.project_for("digits_cnn")
        run = live.start_run(project, epochs=300)
        queued = live.start_run(project, epochs=1)  # one CPU slot: this one waits
        live.wait(run["id"], lambda r: r["status"] == "running" and r["last_seq"] > 3)
        pid = live.services.runner.active[run["id"]].process.pid
        began = time.monotonic()
        live.services.runner.shutdown(timeout=5)
        assert time.monotonic() - began < 5 + 5  # the grace period, plus joins
        assert not alive(pid)
        stopped = live.run(run["id"])
        assert stopped["status"] == "interrupted" and "server stopped" in stopped["reason"]
        assert stopped["checkpoint"]  # resumable from where it was
        assert live.run(queued["id"])["status"] == "queued"  # queues again at the next start
        began = time.monotonic()
        live.services.runner.shutdown()  # a second call (atexit after a signal) does nothing
        assert time.monotonic() - began < 0.5
    finally:
        live.close()


def test_a_schema_1_database_gains_the_worker_start_time(tmp_path):
    from sqlalchemy import text

    from server.storage.db import SCHEMA_VERSION, Database

    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    with db.engine.begin() as conn:  # as the previous release left it
        conn.execute(text("ALTER TABLE runs DROP COLUMN pid_started"))
        conn.execute(text("UPDATE schema_version SET version = 1"))
    db.engine.dispose()
    db = Database(url)
    with db.engine.connect() as conn:
        columns = {row[1] for row in conn.execute(text("PRAGMA table_info(runs)"))}
        version = conn.execute(text("SELECT version FROM schema_version")).scalar()
    assert "pid_started" in columns and version == SCHEMA_VERSION == 2
