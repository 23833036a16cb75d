"""Datasets: the built-in sources, and uploaded files (upload, list, get, preview, delete).

An upload is stored under a server-generated name, checked (size, zip bombs, zip-slip, image
pixel counts, .npy headers) and read with the engine's data layer before it is recorded; the
answer carries the Dataset node params a graph should use (`dataset_params`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flask import Blueprint, jsonify, request

from graph_compiler.catalog import CATALOG
from graph_compiler.datasets import BUILTINS, describe

from ..engine.data import with_defaults
from ..errors import ApiError, not_found
from ..storage import datasets as store
from .common import body_limit, config, services

bp = Blueprint("datasets", __name__, url_prefix="/api/datasets")

# form fields read as Dataset params (the catalog checks their values)
CHOICE_OPTIONS = ("format", "categorical", "missing", "color", "task", "tokenizer")
# whole-number form fields for text data (set only when the form has them)
INT_OPTIONS = ("block_size", "bpe_vocab_size", "max_length")
DEFAULTS = {
    "format": "auto",
    "target_column": "",
    "categorical": "onehot",
    "missing": "error",
    "image_size": None,
    "color": "rgb",
    "task": "classification",
}


def dataset_path(services: Any, dataset_id: Any) -> Path:
    """The stored file for a Dataset node's `dataset_id` (ApiError 404 when there is none).
    `services` is app.extensions["torchloom"]."""
    return store.dataset_path(services, dataset_id)


def _unknown(dataset_id: str) -> ApiError:
    return not_found("dataset", dataset_id[:40] if store.valid_id(dataset_id) else "(bad id)")


def builtins() -> list[dict]:
    out = []
    for name, source in BUILTINS.items():
        info = describe(with_defaults({"source": name}))
        out.append(
            {
                "name": name,
                "description": info.description or source.description,
                "synthetic": source.synthetic,
                "x_shape": list(info.x_shape),
                "x_dtype": info.x_dtype,
                "vocab_size": info.vocab_size,
                "task": info.task,
                "num_classes": info.num_classes,
                "samples": info.samples,
            }
        )
    return out


def _options(form) -> dict:
    params = {p.name: p for p in CATALOG["Dataset"].params}
    opts = dict(DEFAULTS)
    for key in CHOICE_OPTIONS:
        raw = form.get(key)
        if raw is None or raw == "":
            continue
        value, problem = params[key].check(raw.strip())
        if problem is not None:
            raise ApiError(400, "bad_option", f"{key}: {problem[1]}")
        opts[key] = value
    if opts["format"] == "image_folder":
        raise ApiError(400, "bad_option", "format: image_folder reads a folder; upload a .zip")
    for key in INT_OPTIONS:
        raw = (form.get(key) or "").strip()
        if not raw:
            continue
        value, problem = params[key].check(int(raw) if raw.isdigit() else raw)
        if problem is not None:
            raise ApiError(400, "bad_option", f"{key}: {problem[1]}")
        opts[key] = value
    for key in ("target_column", "text_column"):
        column = form.get(key)
        if column:
            column = column.strip()
            if len(column) > 200 or any(ord(ch) < 32 for ch in column):
                raise ApiError(400, "bad_option", f"{key}: at most 200 printable characters")
            opts[key] = column
    size = (form.get("image_size") or "").strip()
    if size:
        parts = [p for p in re.split(r"[\s,x×]+", size) if p]
        side = store.Limits.from_config(config()).image_side
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ApiError(400, "bad_option", 'image_size: expected "H,W", e.g. "32,32"')
        h, w = (int(p) for p in parts)
        if not (1 <= h <= side and 1 <= w <= side):
            raise ApiError(400, "bad_option", f"image_size: each side is 1 to {side}")
        opts["image_size"] = [h, w]
    return opts


@bp.get("")
def list_datasets():
    return jsonify({"builtin": builtins(), "uploaded": store.list_all(services().db)})


@bp.post("")
@body_limit("upload")
def upload():
    file = request.files.get("file")
    if file is None:
        raise ApiError(400, "missing_file", 'the form needs a "file" field with the data file')
    options = _options(request.form)
    created = store.store_upload(
        services(), file.stream, file.filename, options, request.form.get("name")
    )
    return jsonify(created), 201


@bp.post("/<dataset_id>/read")
def reread(dataset_id: str):
    """Read an upload again with the read options given in the form (the others stay): the
    editor calls it when a text file's tokenizer, block_size, ... change on the node, so the
    shapes it shows are the data's."""
    options = _options(request.form)
    changes = {k: v for k, v in options.items() if k in request.form}
    if not changes:
        raise ApiError(400, "bad_option", "give at least one read option to change")
    found = store.reread(services(), dataset_id, changes)
    if found is None:
        raise _unknown(dataset_id)
    return jsonify(found)


PREVIEW_SAMPLES = 256  # a built-in source's preview generates at most this many samples


@bp.get("/builtin/<name>/preview")
def builtin_preview(name: str):
    """A built-in source's preview (decoded text next to token ids for text sources), for the
    Dataset node's params given as JSON in ?params=; generated sources make a few samples only
    (num_samples still says how many the node yields)."""
    from ..engine.data import DataError, load_data, preview

    if name not in BUILTINS:
        raise not_found("built-in dataset", name[:40])
    try:
        given = json.loads(request.args.get("params") or "{}")
    except ValueError:
        raise ApiError(400, "bad_option", "params: expected a JSON object") from None
    if not isinstance(given, dict):
        raise ApiError(400, "bad_option", "params: expected a JSON object")
    specs = {p.name: p for p in CATALOG["Dataset"].params}
    checked = {}
    for key, value in given.items():
        if key not in specs or key in ("source", "path", "val_path"):
            continue
        value, problem = specs[key].check(value)
        if problem is not None:
            raise ApiError(400, "bad_option", f"{key}: {problem[1]}")
        checked[key] = value
    params = with_defaults({**checked, "source": name})
    samples = describe(params).samples
    if "samples" in params:
        params["samples"] = min(int(params["samples"]), PREVIEW_SAMPLES)
    try:
        shown = preview(load_data(params))
    except DataError as exc:
        raise ApiError(422, "bad_data", str(exc)) from None
    if samples is not None:
        shown["num_samples"] = samples
    return jsonify({"id": name, "preview": shown})


@bp.get("/<dataset_id>")
def get(dataset_id: str):
    found = store.get(services().db, dataset_id)
    if found is None:
        raise _unknown(dataset_id)
    return jsonify(found)


@bp.get("/<dataset_id>/preview")
def get_preview(dataset_id: str):
    found = store.get_preview(services().db, dataset_id)
    if found is None:
        raise _unknown(dataset_id)
    return jsonify({"id": dataset_id, "preview": found})


@bp.delete("/<dataset_id>")
def delete(dataset_id: str):
    if not store.remove(services(), dataset_id):
        raise _unknown(dataset_id)
    return "", 204
