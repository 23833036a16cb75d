"""WSGI entry for deployment behind a gunicorn of your own (one worker process):

    TORCHLOOM_DATA_DIR=/srv/torchloom TORCHLOOM_TOKEN=... \\
        gunicorn -k server.serving.Worker -w 1 --keep-alive 10 --graceful-timeout 30 \\
        -b 127.0.0.1:5000 'server.wsgi:create()'

`torchloom serve` runs the same thing embedded (server/serving.py): gunicorn's gevent worker
(a greenlet per connection, not a thread), with timeouts on slow clients, a connection cap
below the descriptor limit, and the runs and analysis processes stopped as the worker exits.
A threaded worker (`--threads 16` instead of `-k ...`) also works, with a thread per connection.

One worker only: the run scheduler and the Socket.IO rooms live in that process (several
processes share clients only through a Redis message queue, TORCHLOOM_REDIS_URL). Settings come
from the environment: TORCHLOOM_DATA_DIR, TORCHLOOM_TOKEN (required; the process prints nothing
to hand one out), TORCHLOOM_HOST (the public host name, for the Host allow-list),
TORCHLOOM_PORT, TORCHLOOM_DATABASE_URL, TORCHLOOM_REDIS_URL, TORCHLOOM_ALLOW_CUSTOM_CODE=1,
TORCHLOOM_CPU_SLOTS, TORCHLOOM_ANALYSIS_WORKERS (processes answering validation; default the
cores, at most 4), TORCHLOOM_ANALYSIS_TIMEOUT (seconds an analysis task may take; default 120),
TORCHLOOM_MIN_FREE_GB (refuse runs below this free space; default 1), TORCHLOOM_RUN_QUOTA_GB
(all run folders together; default 50), TORCHLOOM_RUNNER=0 (no run scheduler: every process but
one, when several share the database and Redis).
"""

from __future__ import annotations

import os
from pathlib import Path

from .app import create_app
from .config import ServerConfig


def config_from_env(env=os.environ) -> ServerConfig:
    token = env.get("TORCHLOOM_TOKEN")
    if not token:
        raise RuntimeError(
            "set TORCHLOOM_TOKEN (e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(24))')"
        )
    host = env.get("TORCHLOOM_HOST", "127.0.0.1")
    return ServerConfig(
        data_dir=Path(env.get("TORCHLOOM_DATA_DIR", ".torchloom")),
        host=host,
        port=int(env.get("TORCHLOOM_PORT", "5000")),
        token=token,
        database_url=env.get("TORCHLOOM_DATABASE_URL"),
        redis_url=env.get("TORCHLOOM_REDIS_URL"),
        allow_custom_code=env.get("TORCHLOOM_ALLOW_CUSTOM_CODE") == "1",
        cpu_slots=int(env.get("TORCHLOOM_CPU_SLOTS", "1")),
        analysis_workers=int(
            env.get("TORCHLOOM_ANALYSIS_WORKERS", str(min(4, os.cpu_count() or 1)))
        ),
        analysis_timeout=float(env.get("TORCHLOOM_ANALYSIS_TIMEOUT", "120")),
        min_free_bytes=int(float(env.get("TORCHLOOM_MIN_FREE_GB", "1")) * 2**30),
        run_quota_bytes=int(float(env.get("TORCHLOOM_RUN_QUOTA_GB", "50")) * 2**30),
        start_runner=env.get("TORCHLOOM_RUNNER", "1") != "0",
    )


def create():
    """gunicorn's application factory: `gunicorn ... 'server.wsgi:create()'`."""
    app = create_app(config_from_env())
    app.extensions["torchloom"].analysis.start()
    return app
