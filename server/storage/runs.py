"""Runs and their event log (persisted before anything is sent to a browser)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update

from .db import Database, dumps, events, loads, now, runs

ACTIVE = ("queued", "running")


def _row(r) -> dict:
    return {
        "id": r.id,
        "project_id": r.project_id,
        "version": r.version,
        "status": r.status,
        "created": r.created,
        "started": r.started,
        "finished": r.finished,
        "device": r.device,
        "reason": r.reason,
        "overrides": loads(r.overrides),
        "best_metric": r.best_metric,
        "best_metric_name": r.best_metric_name,
        "last_seq": r.last_seq,
        "checkpoint": r.checkpoint,
        "resume_of": r.resume_of,
    }


def create(
    db: Database,
    run_id: str,
    project_id: str,
    version: int,
    document: dict,
    overrides: dict,
    out_dir: str,
    resume_of: str | None = None,
) -> dict:
    with db.write() as conn:
        conn.execute(
            insert(runs).values(
                id=run_id,
                project_id=project_id,
                version=version,
                status="queued",
                created=now(),
                overrides=dumps(overrides),
                document=dumps(document),
                out_dir=out_dir,
                last_seq=0,
                resume_of=resume_of,
            )
        )
    return get(db, run_id)


def get(db: Database, run_id: str) -> dict | None:
    with db.read() as conn:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    return _row(row) if row else None


def internal(db: Database, run_id: str) -> dict | None:
    """The row with the stored document and run folder (not sent to clients as is)."""
    with db.read() as conn:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        return None
    return {
        **_row(row),
        "document": loads(row.document),
        "out_dir": row.out_dir,
        "pid": row.pid,
        "pid_started": row.pid_started,
        "heartbeat": row.heartbeat,
    }


def list_runs(db: Database, project_id: str | None = None) -> list[dict]:
    q = select(runs).order_by(runs.c.created.desc())
    if project_id:
        q = q.where(runs.c.project_id == project_id)
    with db.read() as conn:
        return [_row(r) for r in conn.execute(q).all()]


def update_run(db: Database, run_id: str, **values: Any) -> None:
    if "overrides" in values:
        values["overrides"] = dumps(values["overrides"])
    with db.write() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


def append_events(db: Database, run_id: str, batch: list[dict]) -> int:
    """Store events (idempotent on (run, seq)); returns the run's last stored sequence."""
    if not batch:
        return 0
    with db.write() as conn:
        last = conn.execute(select(runs.c.last_seq).where(runs.c.id == run_id)).scalar() or 0
        fresh = [e for e in batch if e["seq"] > last]
        if fresh:
            conn.execute(
                insert(events),
                [
                    {
                        "run_id": run_id,
                        "seq": e["seq"],
                        "type": e["type"],
                        "time": e["time"],
                        "data": dumps(e["data"]),
                    }
                    for e in fresh
                ],
            )
            last = fresh[-1]["seq"]
            conn.execute(update(runs).where(runs.c.id == run_id).values(last_seq=last))
    return last


def events_after(
    db: Database,
    run_id: str,
    after: int = 0,
    limit: int = 1000,
    types: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] | None = None,
) -> list[dict]:
    q = (
        select(events)
        .where((events.c.run_id == run_id) & (events.c.seq > after))
        .order_by(events.c.seq)
        .limit(limit)
    )
    if types:
        q = q.where(events.c.type.in_(types))
    if exclude:  # the full log download skips the (many) step events
        q = q.where(events.c.type.not_in(exclude))
    with db.read() as conn:
        rows = conn.execute(q).all()
    return [
        {"run_id": r.run_id, "seq": r.seq, "type": r.type, "time": r.time, "data": loads(r.data)}
        for r in rows
    ]


def delete_run(db: Database, run_id: str) -> bool:
    with db.write() as conn:
        conn.execute(delete(events).where(events.c.run_id == run_id))
        return conn.execute(delete(runs).where(runs.c.id == run_id)).rowcount > 0


def active(db: Database) -> list[dict]:
    """Queued and running runs, oldest first, with the worker's pid and start time."""
    with db.read() as conn:
        rows = conn.execute(
            select(runs).where(runs.c.status.in_(ACTIVE)).order_by(runs.c.created)
        ).all()
    return [{**_row(r), "pid": r.pid, "pid_started": r.pid_started} for r in rows]
