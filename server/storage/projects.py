"""Projects and their saved versions (every save keeps a version; restore makes a new one)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from .db import Database, dumps, loads, now, project_versions, projects
from .files import new_id


def _row(r) -> dict:
    return {
        "id": r.id,
        "name": r.name,
        "created": r.created,
        "updated": r.updated,
        "version": r.version,
    }


def create(db: Database, name: str, document: dict, message: str = "created") -> dict:
    pid, t = new_id(), now()
    with db.write() as conn:
        conn.execute(insert(projects).values(id=pid, name=name, created=t, updated=t, version=1))
        conn.execute(
            insert(project_versions).values(
                project_id=pid, version=1, document=dumps(document), created=t, message=message
            )
        )
    return get(db, pid)


def unique_name(db: Database, name: str) -> str:
    """`name`, or `name (2)`, `name (3)`, ... when a project already has it: importing a file
    twice must not give two projects nobody can tell apart. A name already ending in ` (k)`
    counts up from its base ("net (2)" taken -> "net (3)")."""
    with db.read() as conn:
        taken = {r[0] for r in conn.execute(select(projects.c.name)).all()}
    if name not in taken:
        return name
    base, _, _ = name.rpartition(" (") if re.fullmatch(r".* \(\d+\)", name) else (name, "", "")
    n = 2
    while f"{base} ({n})" in taken:
        n += 1
    return f"{base} ({n})"


def list_all(db: Database) -> list[dict]:
    with db.read() as conn:
        rows = conn.execute(select(projects).order_by(projects.c.updated.desc())).all()
    return [_row(r) for r in rows]


def get(db: Database, pid: str, version: int | None = None) -> dict | None:
    with db.read() as conn:
        row = conn.execute(select(projects).where(projects.c.id == pid)).first()
        if row is None:
            return None
        v = row.version if version is None else version
        doc = conn.execute(
            select(project_versions.c.document).where(
                (project_versions.c.project_id == pid) & (project_versions.c.version == v)
            )
        ).first()
    if doc is None:
        return None
    return {**_row(row), "document": loads(doc[0]), "document_version": v}


def save(
    db: Database, pid: str, document: dict, name: str | None = None, message: str = "saved"
) -> dict | None:
    t = now()
    with db.write() as conn:
        row = conn.execute(select(projects).where(projects.c.id == pid)).first()
        if row is None:
            return None
        version = row.version + 1
        conn.execute(
            insert(project_versions).values(
                project_id=pid,
                version=version,
                document=dumps(document),
                created=t,
                message=message,
            )
        )
        values: dict[str, Any] = {"version": version, "updated": t}
        if name:
            values["name"] = name
        conn.execute(update(projects).where(projects.c.id == pid).values(**values))
    return get(db, pid)


def rename(db: Database, pid: str, name: str) -> dict | None:
    with db.write() as conn:
        done = conn.execute(
            update(projects).where(projects.c.id == pid).values(name=name, updated=now())
        ).rowcount
    return get(db, pid) if done else None


def versions(db: Database, pid: str) -> list[dict]:
    with db.read() as conn:
        rows = conn.execute(
            select(
                project_versions.c.version, project_versions.c.created, project_versions.c.message
            )
            .where(project_versions.c.project_id == pid)
            .order_by(project_versions.c.version.desc())
        ).all()
    return [{"version": r.version, "created": r.created, "message": r.message} for r in rows]


def delete_project(db: Database, pid: str) -> bool:
    with db.write() as conn:
        conn.execute(delete(project_versions).where(project_versions.c.project_id == pid))
        return conn.execute(delete(projects).where(projects.c.id == pid)).rowcount > 0


def count(db: Database) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(projects)).scalar_one()
