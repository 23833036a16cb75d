"""The Flask application factory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, send_from_directory

from .analysis_pool import AnalysisPool
from .config import ServerConfig
from .errors import ApiError, register_error_handlers
from .extensions import async_mode, socketio
from .storage import projects
from .storage.db import Database
from .storage.files import DataDir

FRONTEND_DIST = Path(__file__).resolve().parent.parent / "frontend" / "dist"


@dataclass
class Services:
    """What the blueprints and socket handlers use, reachable as app.extensions["torchloom"]."""

    config: ServerConfig
    db: Database
    data: DataDir
    runner: Any = None  # server.runner.scheduler.Runner once started
    analysis: Any = None  # server.analysis_pool.AnalysisPool


def create_app(config: ServerConfig | None = None) -> Flask:
    cfg = (config or ServerConfig()).resolved()
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, static_folder=None)
    app.config["TORCHLOOM"] = cfg
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_request_bytes
    app.json.sort_keys = False
    services = Services(cfg, Database(cfg.db_url), DataDir(cfg.data_dir))
    services.analysis = AnalysisPool(
        cfg.analysis_workers, cfg.allow_custom_code, cfg.analysis_timeout
    )
    app.extensions["torchloom"] = services

    from . import security, sockets
    from .api import datasets, exports, graph, runs, system, weights
    from .api import projects as projects_api
    from .api.common import register_body_limits

    register_error_handlers(app)
    security.install(app)
    register_body_limits(app)  # after the auth check: a stranger gets 401, not 413
    for module in (graph, projects_api, system, datasets, runs, exports, weights):
        app.register_blueprint(module.bp)
    _frontend(app)

    # init_app keeps its options between calls, including the Redis client manager it built:
    # without this, an app made later in the same process (tests) would reuse one bound to the
    # previous app's Socket.IO server
    socketio.server_options.pop("client_manager", None)
    socketio.init_app(
        app,
        async_mode=async_mode(),
        cors_allowed_origins=cfg.origins(),
        message_queue=cfg.redis_url,
        json=json,
    )
    sockets.register(socketio)
    if cfg.seed_examples:
        seed_examples(services)
    if cfg.start_runner:
        from .runner.scheduler import Runner

        services.runner = Runner(services, socketio)
        services.runner.start()
    return app


def seed_examples(services: Services) -> int:
    """First start: every example graph becomes a project."""
    if projects.count(services.db) > 0:
        return 0
    added = 0
    for path in sorted(Path(services.config.examples_dir).glob("*.json")):
        doc = json.loads(path.read_text())
        projects.create(services.db, doc.get("name") or path.stem, doc, "example")
        added += 1
    return added


def _frontend(app: Flask) -> None:
    @app.get("/")
    def index():
        if (FRONTEND_DIST / "index.html").exists():
            return send_from_directory(FRONTEND_DIST, "index.html")
        return (
            "<!doctype html><title>torchloom</title><h1>torchloom</h1>"
            "<p>The server is running. The browser editor is not built yet: "
            "<code>npm start</code> builds it.</p><p>API: "
            "<a href='/api/catalog'>/api/catalog</a>, <a href='/api/projects'>/api/projects</a>,"
            " <a href='/api/system'>/api/system</a>.</p>",
            200,
            {"Content-Type": "text/html; charset=utf-8"},
        )

    @app.get("/assets/<path:name>")
    def assets(name: str):
        if not (FRONTEND_DIST / "assets").is_dir():
            raise ApiError(404, "not_found", "no frontend build")
        return send_from_directory(FRONTEND_DIST / "assets", name)
