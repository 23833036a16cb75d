"""Weights uploaded into a project (warm start / fine-tuning).

    POST   /api/projects/<pid>/weights            multipart: file (.safetensors or .pt state_dict),
                                                  partial (true/false), version (optional)
    GET    /api/projects/<pid>/weights            the project's uploaded weights
    DELETE /api/projects/<pid>/weights/<wid>

The file is read only with safetensors or torch.load(weights_only=True) and compared with the
state_dict of the project's model (its current version, or `version`): missing, unexpected and
wrong-shape keys are listed per node; a mismatch is a 422 unless `partial` is true, in which
case the matching tensors are kept. What is stored is always a .safetensors file. A run starts
from it with POST /api/projects/<pid>/runs {"init_weights": "<wid>"}; the run's graph is checked
again (it may be another version), and the file is copied into the run's folder.

The model the file is compared with is built in an analysis process (server/model_state.py),
never in the web process unless the server runs none (analysis_workers=0, custom code off: the
build is then bounded by the validation limits, graph_compiler/limits.py).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from flask import Blueprint, jsonify, request

from ..analysis_pool import AnalysisUnavailable, runs_user_code
from ..engine.trainer import RunFailed, prepare_document
from ..errors import ApiError, not_found
from ..model_state import model_state_task
from ..storage import projects as project_store
from ..storage.datasets import copy_upload
from ..storage.files import contained, new_id
from ..weights_file import check_file
from .common import body_limit, config, services

bp = Blueprint("weights", __name__, url_prefix="/api/projects")

WEIGHTS_ID = re.compile(r"^[0-9a-f]{16}$")
RUN_FILE = "initial.safetensors"  # the copy in a run's folder (the trainer's init_weights)
TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _folder() -> Path:
    root = services().data.root / "uploads"
    folder = contained(root, "weights")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _paths(pid: str, wid: str) -> tuple[Path, Path]:
    folder = _folder()
    return contained(folder, f"{pid}-{wid}.safetensors"), contained(folder, f"{pid}-{wid}.json")


def _flag(name: str) -> bool:
    raw = (request.form.get(name) or "").strip().lower()
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise ApiError(400, "bad_option", f"{name}: expected true or false, got {raw[:40]!r}")


def _project(pid: str, version: int | None = None) -> dict:
    project = project_store.get(services().db, pid, version)
    if project is None:
        raise not_found("project", pid if version is None else f"{pid}@{version}")
    return project


def model_state(document: dict) -> tuple[dict, dict]:
    """(the model's state_dict as {key: (shape, dtype)}, submodule → node id) for a prepared
    document, built in an analysis process (server/model_state.py); 422 when it cannot be built,
    422 analysis_timeout past the time limit."""
    allow = config().allow_custom_code
    pool = services().analysis
    try:
        result = pool.run_or_here(
            model_state_task, document, allow, user_code=allow and runs_user_code(document)
        )
    except AnalysisUnavailable as exc:
        raise ApiError(503, "analysis_unavailable", f"{exc}; try again") from None
    if "errors" in result:
        raise ApiError(
            422,
            "invalid_graph",
            "fix the graph's errors first: weights are checked against its model",
            result["errors"],
        )
    return result["state"], result["owners"]


def _prepared(document: dict) -> dict:
    try:
        return prepare_document(document)
    except RunFailed as exc:
        raise ApiError(422, exc.code, str(exc)) from None


def _checked(
    document: dict, path: Path, filename: str, partial: bool, out: Path | None = None
) -> dict:
    """The weights file at `path` checked against the document's model, in a limited child
    (server/weights_file.py): {"report", "tensors"}; with `out`, the tensors to keep written
    there. The web process never holds the file's tensors."""
    state, owners = model_state(document)
    return check_file(path, filename, state, owners, partial, out)


@bp.post("/<pid>/weights")
@body_limit("upload")
def upload(pid: str):
    raw_version = (request.form.get("version") or "").strip()
    if raw_version and not raw_version.isdigit():
        raise ApiError(400, "bad_version", "version must be an integer")
    project = _project(pid, int(raw_version) if raw_version else None)
    file = request.files.get("file")
    if file is None:
        raise ApiError(
            400, "missing_file", 'the form needs a "file" field: a .safetensors or .pt state_dict'
        )
    filename = Path(file.filename or "weights").name[:200]
    if not filename.lower().endswith((".safetensors", ".pt", ".pth", ".bin")):
        raise ApiError(
            400,
            "bad_weights",
            f"{filename}: expected a .safetensors file or a .pt / .pth state_dict",
        )
    partial = _flag("partial")
    document = _prepared(project["document"])
    wid = new_id()
    weights_path, meta_path = _paths(pid, wid)
    upload = weights_path.with_name(weights_path.name + ".upload")
    tmp = weights_path.with_name(weights_path.name + ".tmp")
    try:
        copy_upload(file.stream, upload, config().max_request_bytes, "the limit for weights")
        checked = _checked(document, upload, filename, partial, out=tmp)
        tmp.replace(weights_path)
    finally:
        upload.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    meta = {
        "id": wid,
        "project_id": pid,
        "version": project["document_version"],
        "filename": filename,
        "partial": partial,
        "created": time.time(),
        "tensors": checked["tensors"],
        "report": checked["report"],
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return jsonify(meta), 201


@bp.get("/<pid>/weights")
def list_weights(pid: str):
    _project(pid)
    found = []
    for path in sorted(_folder().glob(f"{pid}-*.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    found.sort(key=lambda m: m.get("created", 0), reverse=True)
    return jsonify({"weights": found})


def _stored(pid: str, wid) -> tuple[Path, dict]:
    if not isinstance(wid, str) or not WEIGHTS_ID.match(wid):
        raise ApiError(400, "bad_weights_id", "init_weights must be the id of uploaded weights")
    weights_path, meta_path = _paths(pid, wid)
    if not weights_path.is_file() or not meta_path.is_file():
        raise not_found("weights", f"{wid} of project {pid}")
    return weights_path, json.loads(meta_path.read_text())


@bp.delete("/<pid>/weights/<wid>")
def delete(pid: str, wid: str):
    _project(pid)
    weights_path, meta_path = _stored(pid, wid)
    weights_path.unlink(missing_ok=True)
    meta_path.unlink(missing_ok=True)
    return "", 204


def for_run(pid: str, wid, document: dict) -> tuple[Path, bool, dict]:
    """Uploaded weights checked against a run's graph (the document as it will run): (stored
    file, partial, report)."""
    weights_path, meta = _stored(pid, wid)
    partial = bool(meta.get("partial"))
    try:
        checked = _checked(document, weights_path, meta.get("filename") or wid, partial)
    except ApiError as exc:
        if exc.code == "bad_weights":  # the stored file is unreadable: a conflict, not bad input
            exc.status = 409
        raise
    return weights_path, partial, checked["report"]


def copy_to_run(weights_path: Path, out_dir: Path) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights_path, out_dir / RUN_FILE)
    return RUN_FILE
