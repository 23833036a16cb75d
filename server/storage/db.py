"""Tables and migrations.

The schema is versioned from the first release: `schema_version` records the applied version
and `MIGRATIONS[n]` brings a database from version n to n + 1, so a data dir written by any
earlier release keeps working.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

projects = Table(
    "projects",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("version", Integer, nullable=False),  # the latest saved version
)

project_versions = Table(
    "project_versions",
    metadata,
    Column("project_id", String(32), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("document", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("message", String(500), nullable=False, default=""),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("format", String(32), nullable=False),
    Column("filename", String(300), nullable=False),  # server-generated, inside the data dir
    Column("size", Integer, nullable=False),
    Column("created", Float, nullable=False),
    Column("shapes", Text, nullable=False),  # JSON: x_shape, task, num_classes, y_dim
    Column("preview", Text, nullable=False),  # JSON
    Column("options", Text, nullable=False),  # JSON: the Dataset params used to read it
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("project_id", String(32), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column(
        "status", String(16), nullable=False
    ),  # queued running finished failed stopped interrupted
    Column("created", Float, nullable=False),
    Column("started", Float),
    Column("finished", Float),
    Column("device", String(64)),
    Column("reason", Text),
    Column("overrides", Text, nullable=False),  # JSON
    Column("document", Text, nullable=False),  # the graph as it runs
    Column("best_metric", Float),
    Column("best_metric_name", String(32)),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("checkpoint", Text),
    Column("out_dir", Text, nullable=False),
    Column("pid", Integer),
    # the worker's start time (/proc/<pid>/stat field 22): with the pid it names one process,
    # so a restarted server can end a leftover worker without hitting a reused pid
    Column("pid_started", Integer),
    Column("heartbeat", Float),
    Column("resume_of", String(32)),
)

events = Table(
    "events",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("type", String(16), nullable=False),
    Column("time", Float, nullable=False),
    Column("data", Text, nullable=False),
)


def _v0_to_v1(conn: Connection) -> None:
    metadata.create_all(conn)


def _v1_to_v2(conn: Connection) -> None:
    # a database made by this release got the column from create_all in _v0_to_v1 already
    columns = {c["name"] for c in inspect(conn).get_columns("runs")}
    if "pid_started" not in columns:
        conn.execute(text("ALTER TABLE runs ADD COLUMN pid_started INTEGER"))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {0: _v0_to_v1, 1: _v1_to_v2}
SCHEMA_VERSION = 2


class Database:
    """An engine plus a lock: SQLite allows one writer at a time, so writes are serialized."""

    def __init__(self, url: str):
        self.url = url
        sqlite = url.startswith("sqlite")
        self.engine: Engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30} if sqlite else {}
        )
        if sqlite:

            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn, _record):
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

        self.write_lock = threading.Lock()
        self.migrate()

    def current_version(self, conn: Connection) -> int:
        if not self.engine.dialect.has_table(conn, "schema_version"):
            return 0
        row = conn.execute(select(schema_version.c.version)).first()
        return row[0] if row else 0

    def migrate(self) -> None:
        with self.write_lock, self.engine.begin() as conn:
            version = self.current_version(conn)
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the database has schema {version}, newer than this "
                    f"torchloom ({SCHEMA_VERSION}); upgrade torchloom"
                )
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](conn)
                version += 1
            conn.execute(schema_version.delete())
            conn.execute(schema_version.insert().values(version=version))

    def write(self):
        """`with db.write() as conn:` — a serialized write transaction."""
        return _Write(self)

    def read(self):
        return self.engine.connect()


class _Write:
    def __init__(self, db: Database):
        self.db = db

    def __enter__(self) -> Connection:
        self.db.write_lock.acquire()
        self.ctx = self.db.engine.begin()
        return self.ctx.__enter__()

    def __exit__(self, *exc) -> None:
        try:
            self.ctx.__exit__(*exc)
        finally:
            self.db.write_lock.release()


def now() -> float:
    return time.time()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def loads(text_value: str | None) -> Any:
    return json.loads(text_value) if text_value else None


__all__ = [
    "Database",
    "datasets",
    "dumps",
    "events",
    "loads",
    "now",
    "project_versions",
    "projects",
    "runs",
    "text",
]
