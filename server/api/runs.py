"""Runs: start from a project version with overrides (one click in the UI), list, get, stop,
resume, delete; the metric history with paging."""

from __future__ import annotations

import shutil
import time

from flask import Blueprint, jsonify, request

from server.engine.trainer import RUN_OPTIONS, RunFailed, prepare_document

from ..analysis_pool import AnalysisUnavailable
from ..errors import ApiError, not_found
from ..storage import datasets as dataset_store
from ..storage import projects as project_store
from ..storage import runs as store
from ..storage import space
from ..storage.files import new_id
from .common import json_body, services

bp = Blueprint("runs", __name__, url_prefix="/api")


def _runner():
    runner = services().runner
    if runner is None:
        raise ApiError(503, "runner_off", "this server was started without a run scheduler")
    return runner


def _with_position(run: dict) -> dict:
    runner = services().runner
    run["queue_position"] = runner.position(run["id"]) if runner is not None else None
    failure = runner.unrecorded_failure(run["id"]) if runner is not None else None
    if failure is not None:  # failed, but the disk is too full to store it yet
        run.update(status="failed", reason=failure)
    return run


@bp.post("/projects/<pid>/runs")
def start(pid: str):
    body = json_body()
    version = body.get("version")
    if version is not None and not isinstance(version, int):
        raise ApiError(400, "bad_version", "version must be an integer")
    project = project_store.get(services().db, pid, version)
    if project is None:
        raise not_found("project", pid if version is None else f"{pid}@{version}")
    space.check_room_for_run(services())  # 507 before anything is written
    overrides = body.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ApiError(400, "bad_overrides", "overrides must be an object")
    if any(key in overrides for key in RUN_OPTIONS):
        raise ApiError(
            400,
            "bad_overrides",
            'initial weights are chosen with "init_weights": <id of weights uploaded with POST '
            "/api/projects/<pid>/weights>, not in overrides",
        )
    try:
        document = prepare_document(project["document"], overrides)
    except RunFailed as exc:
        raise ApiError(400, exc.code, str(exc)) from None
    # the only files a run reads: the uploaded datasets its ids name (a path from the client
    # is refused)
    document = dataset_store.resolve_files(services(), document)
    # checked in the analysis processes: with custom code allowed, its code must not run here
    try:
        checked = services().analysis.analysis_json(document)
    except AnalysisUnavailable as exc:
        raise ApiError(503, "analysis_unavailable", f"{exc}; try again") from None
    if not checked["ok"]:
        errors = [e for e in checked["errors"] if e.get("severity", "error") == "error"]
        raise ApiError(422, "invalid_graph", "fix the graph's errors before training", errors)
    initial = None
    if body.get("init_weights") is not None:  # warm start from uploaded weights
        from .weights import for_run

        # the model is built in an analysis process, under its time limit (weights.py)
        initial = for_run(pid, body["init_weights"], document)
    run_id = new_id()
    out_dir = services().data.run_dir(run_id)
    if initial is not None:
        from .weights import copy_to_run

        path, partial, _ = initial
        overrides = {**overrides, "init_weights": copy_to_run(path, out_dir)}
        overrides["init_partial"] = partial
    run = store.create(
        services().db, run_id, pid, project["document_version"], document, overrides, str(out_dir)
    )
    _runner().enqueue(run_id)
    return jsonify(_with_position(run)), 201


@bp.get("/runs")
def list_runs():
    project = request.args.get("project")
    return jsonify({"runs": [_with_position(r) for r in store.list_runs(services().db, project)]})


def _run(run_id: str) -> dict:
    run = store.get(services().db, run_id)
    if run is None:
        raise not_found("run", run_id)
    return run


@bp.get("/runs/<run_id>")
def get(run_id: str):
    return jsonify(_with_position(_run(run_id)))


def _orphaned(run: dict) -> bool:
    """The database says queued or running, but the scheduler does not have the run: no worker
    runs it (its end could not be recorded). Such a run can be stopped, resumed and deleted."""
    runner = services().runner
    return run["status"] in store.ACTIVE and runner is not None and not runner.holds(run["id"])


@bp.post("/runs/<run_id>/stop")
def stop(run_id: str):
    run = _run(run_id)
    outcome = _runner().stop(run_id)
    if outcome == "not_active" and _orphaned(run):
        store.update_run(
            services().db,
            run_id,
            status="stopped",
            reason="stopped; no worker was running it",
            finished=time.time(),
        )
        outcome = "stopped"
    if outcome == "not_active":
        raise ApiError(409, "not_running", f"run {run_id} is {run['status']}, not running")
    return jsonify({"run": _with_position(_run(run_id)), "outcome": outcome})


@bp.post("/runs/<run_id>/resume")
def resume(run_id: str):
    run = _run(run_id)
    if run["status"] not in ("stopped", "interrupted", "failed") and not _orphaned(run):
        raise ApiError(409, "not_resumable", f"run {run_id} is {run['status']}")
    if not run["checkpoint"]:
        raise ApiError(409, "no_checkpoint", f"run {run_id} has no checkpoint to resume from")
    space.check_room_for_run(services())
    store.update_run(services().db, run_id, status="queued", reason=None, finished=None)
    _runner().enqueue(run_id)
    return jsonify(_with_position(_run(run_id)))


@bp.delete("/runs/<run_id>")
def delete(run_id: str):
    run = _run(run_id)
    if run["status"] in store.ACTIVE and not _orphaned(run):
        raise ApiError(409, "run_active", f"stop run {run_id} before deleting it")
    folder = services().data.run_dir(run_id)
    # the files first: on a full disk, deleting them is what lets the database write succeed
    shutil.rmtree(folder, ignore_errors=True)
    store.delete_run(services().db, run_id)
    if services().runner is not None:
        services().runner.forget(run_id)
    return "", 204


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, "bad_argument", f"{name} must be an integer") from None
    return max(low, min(high, value))


@bp.get("/runs/<run_id>/events")
def events(run_id: str):
    _run(run_id)
    after = _int_arg("after", 0, 0, 2**62)
    limit = _int_arg("limit", 1000, 1, 10000)
    types = tuple(t for t in request.args.get("types", "").split(",") if t) or None
    exclude = tuple(t for t in request.args.get("exclude", "").split(",") if t) or None
    batch = store.events_after(services().db, run_id, after, limit, types, exclude)
    next_after = batch[-1]["seq"] if len(batch) == limit else None
    return jsonify({"events": batch, "next_after": next_after})


@bp.get("/runs/<run_id>/metrics")
def metrics(run_id: str):
    _run(run_id)
    epochs = store.events_after(services().db, run_id, 0, 100000, ("epoch",))
    return jsonify({"epochs": [e["data"] for e in epochs]})
