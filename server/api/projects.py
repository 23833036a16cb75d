"""Projects: create, list, get, save (a new version each time), versions, restore, duplicate,
rename, delete; import and export of the graph document."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, request

from graph_compiler.document import parse_document

from ..errors import ApiError, not_found
from ..storage import projects as store
from ..storage.files import safe_download_name
from .common import body_limit, document_from, json_body, services
from .graph import document_body

bp = Blueprint("projects", __name__, url_prefix="/api/projects")


def _checked(doc) -> dict:
    """Parse (and upgrade) a document before storing it: stored documents always parse."""
    parsed, problems = parse_document(doc)
    if parsed is None:
        raise ApiError(
            422, "invalid_document", "the document cannot be read", [p.to_dict() for p in problems]
        )
    return parsed.to_json_dict()


def _name(body: dict, default: str) -> str:
    name = body.get("name", default)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ApiError(400, "bad_name", "a project name is 1 to 200 characters")
    return name.strip()


@bp.get("")
def list_projects():
    return jsonify({"projects": store.list_all(services().db)})


@bp.post("")
@body_limit("document")
def create():
    body = document_body()
    doc = _checked(document_from(body)) if "document" in body else _checked({})
    name = _name(body, doc.get("name") or "Untitled")
    doc["name"] = name
    return jsonify(store.create(services().db, name, doc)), 201


@bp.post("/import")
@body_limit("document")
def import_document():
    """The document is the body; `?filename=` (the imported file's name) names a document that
    has no name of its own. A name another project has gets a ` (2)`-style suffix."""
    raw = document_from(document_body(), ".")
    doc = _checked(raw)  # fills a missing name with "Untitled": read the file's own one
    own = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else ""
    name = own.strip()[:200] or _file_stem(request.args.get("filename", "")) or "Imported"
    name = store.unique_name(services().db, name)
    doc["name"] = name
    return jsonify(store.create(services().db, name, doc, "imported")), 201


def _file_stem(filename: str) -> str:
    """ "my net.json" -> "my net"; any folder part is dropped (browsers send a bare name)."""
    stem = re.split(r"[\\/]", filename)[-1].strip()
    stem = re.sub(r"\.json$", "", stem, flags=re.IGNORECASE).strip()
    return stem[:200]


@bp.get("/<pid>")
def get(pid: str):
    project = store.get(services().db, pid)
    if project is None:
        raise not_found("project", pid)
    return jsonify(project)


@bp.put("/<pid>")
@body_limit("document")
def save(pid: str):
    body = document_body()
    doc = _checked(document_from(body))
    name = _name(body, doc.get("name") or "Untitled") if "name" in body else None
    if name:
        doc["name"] = name
    message = str(body.get("message", "saved"))[:500]
    project = store.save(services().db, pid, doc, name, message)
    if project is None:
        raise not_found("project", pid)
    return jsonify(project)


@bp.patch("/<pid>")
def rename(pid: str):
    project = store.rename(services().db, pid, _name(json_body(), ""))
    if project is None:
        raise not_found("project", pid)
    return jsonify(project)


@bp.get("/<pid>/versions")
def versions(pid: str):
    if store.get(services().db, pid) is None:
        raise not_found("project", pid)
    return jsonify({"versions": store.versions(services().db, pid)})


@bp.get("/<pid>/versions/<int:version>")
def get_version(pid: str, version: int):
    project = store.get(services().db, pid, version)
    if project is None:
        raise not_found("project version", f"{pid}@{version}")
    return jsonify(project)


@bp.post("/<pid>/versions/<int:version>/restore")
def restore(pid: str, version: int):
    old = store.get(services().db, pid, version)
    if old is None:
        raise not_found("project version", f"{pid}@{version}")
    return jsonify(
        store.save(services().db, pid, old["document"], message=f"restored version {version}")
    )


@bp.post("/<pid>/duplicate")
def duplicate(pid: str):
    project = store.get(services().db, pid)
    if project is None:
        raise not_found("project", pid)
    name = _name(json_body(), f"{project['name']} (copy)")
    doc = {**project["document"], "name": name}
    return jsonify(store.create(services().db, name, doc, f"duplicated from {pid}")), 201


@bp.delete("/<pid>")
def delete(pid: str):
    if not store.delete_project(services().db, pid):
        raise not_found("project", pid)
    return "", 204


@bp.get("/<pid>/export")
def export(pid: str):
    project = store.get(services().db, pid)
    if project is None:
        raise not_found("project", pid)
    import json

    body = json.dumps(project["document"], indent=2) + "\n"
    name = safe_download_name(project["name"], ".json")
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
