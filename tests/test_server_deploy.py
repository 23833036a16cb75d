"""The documented deployment: gunicorn, one worker with threads, settings from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.server_live import free_port

pytestmark = pytest.mark.slow


def get(url: str, token: str | None = None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_gunicorn_serves_the_app_with_one_threaded_worker(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "TORCHLOOM_DATA_DIR": str(tmp_path),
        "TORCHLOOM_TOKEN": "deploy-token",
        "TORCHLOOM_PORT": str(port),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [
            str(gunicorn),
            "-w",
            "1",
            "--threads",
            "8",
            "-b",
            f"127.0.0.1:{port}",
            "server.wsgi:create()",
        ],
        env=env,
        stdout=subprocess.DEVNULL,  # an unread pipe would fill up and stall the server
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        status = None
        while time.time() < deadline:
            try:
                status, body = get(f"http://127.0.0.1:{port}/api/catalog", "deploy-token")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        assert status == 200 and len(body["nodes"]) > 80
        assert get(f"http://127.0.0.1:{port}/api/projects")[0] == 401  # no token
        status, body = get(f"http://127.0.0.1:{port}/api/projects", "deploy-token")
        assert status == 200 and len(body["projects"]) == 8  # examples seeded
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_wsgi_needs_a_token_from_the_environment():
    from server.wsgi import config_from_env

    with pytest.raises(RuntimeError, match="TORCHLOOM_TOKEN"):
        config_from_env({})
    cfg = config_from_env({"TORCHLOOM_TOKEN": "x", "TORCHLOOM_CPU_SLOTS": "2"})
    assert cfg.cpu_slots == 2 and cfg.token == "x"
