"""Uploaded datasets: stored under <data dir>/datasets with server-generated names, checked
before the engine reads them, and recorded with their shapes, a preview and the options used to
read them.

Everything after the copy to disk (steps 3 and 4) runs in a child process with an address-space
and a time limit (server/limited.py): a small file that decodes into gigabytes takes the child
down, never the web process.

An upload goes through, in order:
  1. the extension whitelist (the client's file name picks the kind, never the stored name);
  2. a per-kind size bound while it is copied to disk (nothing is kept on failure);
  3. cheap structural checks that need no decoding: zip entry count, total expanded size and
     per-entry compression ratio (zip bombs), entry paths (zip-slip), .npy headers against the
     bytes present, image headers against a pixel cap and the decoded size against a bound;
  4. the engine's own reader (server.engine.data.load_data) under the decoded-size budget
     (`Limits.decoded_bytes`: each reader checks what the file declares before allocating):
     any DataError becomes a 422 that names the user's file and the row, entry or key at
     fault; a declared size over the budget, the child's memory or time limit a 413.

Limits can be changed with ServerConfig(extra={"dataset_limits": {...}}) (see `Limits`).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

from sqlalchemy import delete, insert, select, update

from ..engine.diskspace import format_bytes
from ..errors import ApiError
from .db import Database, datasets, dumps, loads, now
from .files import new_id

log = logging.getLogger(__name__)

MiB = 2**20
GiB = 2**30

# extension -> the formats a file of that kind may be read as
EXTENSIONS: dict[str, tuple[str, ...]] = {
    ".csv": ("csv",),
    ".tsv": ("csv",),
    ".npz": ("npz",),
    ".npy": ("npy",),
    ".safetensors": ("safetensors",),
    ".txt": ("text",),
    ".zip": ("image_zip", "mnist", "cifar10"),
}
ID = re.compile(r"[0-9a-f]{1,32}")
NAME_MAX = 200
CHUNK = MiB

# at most this many uploads are decoded at once (each can take memory and CPU)
_READS = threading.BoundedSemaphore(2)


@dataclass(frozen=True)
class Limits:
    upload_bytes: Mapping[str, int] = field(
        default_factory=lambda: {
            ".csv": 100 * MiB,  # parsed in Python: a CSV takes ~10x its size in memory
            ".tsv": 100 * MiB,
            ".npy": 1 * GiB,
            ".npz": 1 * GiB,
            ".safetensors": 1 * GiB,
            ".zip": 1 * GiB,
            ".txt": 50 * MiB,  # tokenized in Python: ~50x its size in memory while encoding
        }
    )
    zip_expanded_bytes: int = 2 * GiB  # sum of the entries' uncompressed sizes
    zip_entries: int = 200_000
    zip_ratio: float = 200.0  # uncompressed / compressed, per entry ...
    zip_ratio_min_bytes: int = 1 * MiB  # ... for entries larger than this
    image_pixels: int = 40_000_000  # per image (Pillow's own bomb error is at ~179 M)
    image_side: int = 4096  # image_size option, per side
    # what reading an upload may build, from the sizes the file declares, checked before
    # allocating (server/engine/data/budget.py): CSV rows × features after encoding, IDX
    # dims, images × channels × pixels with image_size; float32, with the readers' copies
    decoded_bytes: int = 2 * GiB
    # the child process that reads an upload (server/limited.py): address space allowed over
    # its size after its imports (the decoded data, the parsed text, the readers' temporaries)
    # and wall-clock seconds; over either it is killed and the upload refused
    read_memory_bytes: int = 6 * GiB
    read_seconds: float = 300.0

    @classmethod
    def from_config(cls, config: Any) -> Limits:
        given = dict((getattr(config, "extra", None) or {}).get("dataset_limits") or {})
        base = cls()
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in given.items() if k in known}
        if "upload_bytes" in values:
            values["upload_bytes"] = {**base.upload_bytes, **values["upload_bytes"]}
        return cls(**{**{f.name: getattr(base, f.name) for f in fields(cls)}, **values})


# --- names ------------------------------------------------------------------------------------


def valid_id(dataset_id: Any) -> bool:
    return isinstance(dataset_id, str) and ID.fullmatch(dataset_id) is not None


def display_name(name: str | None, fallback: str = "dataset") -> str:
    """A client-supplied name made safe to show: the last path component, no control or
    format characters, whitespace collapsed, at most NAME_MAX characters."""
    text = str(name or "")
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in text)
    text = " ".join(text.split())[:NAME_MAX].strip()
    return text or fallback


def extension(client_name: str | None) -> str:
    name = display_name(client_name, "").lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    shown = Path(name).suffix or "none"
    raise ApiError(
        400,
        "unsupported_type",
        f"files of type {shown!r} are not accepted; expected one of "
        + ", ".join(sorted(EXTENSIONS)),
    )


# --- rows -------------------------------------------------------------------------------------


def dataset_params(dataset_id: str, options: Mapping[str, Any], shapes: Mapping[str, Any]) -> dict:
    """The Dataset node params a graph should use for this upload."""
    out: dict[str, Any] = {"source": "file", "dataset_id": dataset_id, **options}
    for key in ("x_shape", "x_dtype", "vocab_size", "pad_id", "task", "num_classes", "y_dim"):
        if shapes.get(key) is not None:
            out[key] = shapes[key]
    return out


def _row(r) -> dict:
    shapes = loads(r.shapes) or {}
    options = loads(r.options) or {}
    return {
        "id": r.id,
        "name": r.name,
        "format": r.format,
        "size": r.size,
        "created": r.created,
        "shapes": shapes,
        "dataset_params": dataset_params(r.id, options, shapes),
    }


def _select(db: Database, dataset_id: str):
    with db.read() as conn:
        return conn.execute(select(datasets).where(datasets.c.id == dataset_id)).first()


def list_all(db: Database) -> list[dict]:
    with db.read() as conn:
        rows = conn.execute(select(datasets).order_by(datasets.c.created.desc())).all()
    return [_row(r) for r in rows]


def get(db: Database, dataset_id: str) -> dict | None:
    if not valid_id(dataset_id):
        return None
    r = _select(db, dataset_id)
    return _row(r) if r is not None else None


def get_preview(db: Database, dataset_id: str) -> dict | None:
    if not valid_id(dataset_id):
        return None
    r = _select(db, dataset_id)
    return loads(r.preview) if r is not None else None


def remove(services: Any, dataset_id: str) -> bool:
    """Delete the row and the stored file."""
    if not valid_id(dataset_id):
        return False
    with services.db.write() as conn:
        r = conn.execute(select(datasets).where(datasets.c.id == dataset_id)).first()
        if r is None:
            return False
        conn.execute(delete(datasets).where(datasets.c.id == dataset_id))
    try:
        services.data.dataset_path(r.filename).unlink(missing_ok=True)
    except (OSError, ApiError):
        log.warning("could not remove the file of dataset %s", dataset_id, exc_info=True)
    return True


def dataset_path(services: Any, dataset_id: Any) -> Path:
    """The stored file of an uploaded dataset (what a Dataset node's `dataset_id` refers to).
    Raises ApiError 404 for an unknown or malformed id, or a file that is gone."""
    if not valid_id(dataset_id):
        raise ApiError(404, "not_found", f"dataset {str(dataset_id)[:40]!r} does not exist")
    r = _select(services.db, dataset_id)
    if r is None:
        raise ApiError(404, "not_found", f"dataset {dataset_id} does not exist")
    path = services.data.dataset_path(r.filename)
    if not path.is_file():
        raise ApiError(
            404, "dataset_missing", f"the file of dataset {dataset_id} ({r.name}) is gone"
        )
    return path


# --- graphs: the one place a dataset id becomes a file path ----------------------------------


def resolve_files(services: Any, document: dict) -> dict:
    """The document with every file param resolved for the engine (in place; returned):

    - a path-like param (`file_ref="path"` in the catalog: Dataset `path`, `val_path`, any
      future one) sent by the client is refused with a 422 naming the node and field: the
      server reads uploaded datasets only;
    - each dataset-id param (`dataset_id`, `val_dataset_id`) becomes the stored file's path
      in the path param that names it as `path_from` (404 for an unknown id);
    - the result is contained: every path lies inside the data dir's datasets folder (the
      worker checks this again before it opens anything)."""
    from graph_compiler.catalog import CATALOG

    from ..engine.data import DataError
    from ..engine.data.contain import contain_document, graph_nodes, where

    for block, node in graph_nodes(document):
        spec = CATALOG.get(node.get("type")) if isinstance(node.get("type"), str) else None
        params = node.get("params")
        if spec is None or not isinstance(params, dict):
            continue
        for p in spec.file_params("path"):
            if params.get(p.name) not in (None, ""):
                raise ApiError(
                    422,
                    "client_path",
                    f"{where(block, node)}: {p.name} names a file on the server, which a graph "
                    f"may not do; upload the file and pick it as {p.path_from or 'a dataset'}",
                    [{"node": node.get("id"), "field": p.name, "block": block}],
                )
            dataset_id = params.get(p.path_from) if p.path_from else None
            if dataset_id in (None, "") or not _in_use(spec, p, params):
                continue
            try:
                params[p.name] = str(dataset_path(services, dataset_id))
            except ApiError as exc:
                exc.message = f"{where(block, node)}: {p.path_from}: {exc.message}"
                exc.details = [{"node": node.get("id"), "field": p.path_from, "block": block}]
                raise
    try:
        contain_document(document, services.data.datasets_root)
    except DataError as exc:  # cannot happen for stored files; kept as the last line of defence
        raise ApiError(422, "client_path", str(exc)) from None
    return document


def display_names(services: Any, document: Any) -> dict[str, str]:
    """{stored file name: the upload's display name} for the datasets a graph's dataset-id
    params name (unknown ids are left out): data errors show the user's names."""
    from graph_compiler.catalog import CATALOG

    from ..engine.data.contain import graph_nodes

    ids = set()
    for _, node in graph_nodes(document):
        spec = CATALOG.get(node.get("type")) if isinstance(node.get("type"), str) else None
        params = node.get("params")
        if spec is not None and isinstance(params, dict):
            ids |= {params.get(p.name) for p in spec.file_params("dataset_id")}
    out = {}
    for dataset_id in sorted(i for i in ids if valid_id(i)):
        r = _select(services.db, dataset_id)
        if r is not None:
            out[r.filename] = r.name
    return out


def _in_use(spec: Any, param: Any, params: Mapping[str, Any]) -> bool:
    """The param applies to the node as configured (its `visible_if`, e.g. source "file"): a
    dataset id left over from before the source changed is not resolved."""
    for other, values in (param.visible_if or {}).items():
        given = params.get(other, getattr(spec.param(other), "default", None))
        if given not in values:
            return False
    return True


# --- upload -----------------------------------------------------------------------------------


def store_upload(
    services: Any,
    stream: IO[bytes],
    client_name: str | None,
    options: Mapping[str, Any],
    name: str | None = None,
) -> dict:
    """Copy an upload into the data dir under a new id, check it, read it with the engine and
    record it. Returns the row plus its preview. Nothing is left on disk when it fails."""
    ext = extension(client_name)
    fmt = str(options.get("format") or "auto")
    if fmt != "auto" and fmt not in EXTENSIONS[ext]:
        raise ApiError(
            400,
            "format_mismatch",
            f"a {ext} file cannot be read as {fmt!r}; expected "
            + " or ".join(repr(f) for f in ("auto", *EXTENSIONS[ext])),
        )
    limits = Limits.from_config(services.config)
    shown_file = display_name(client_name, f"upload{ext}")
    dataset_id = new_id()
    filename = f"{dataset_id}{ext}"
    path = services.data.dataset_path(filename)
    try:
        limit = min(limits.upload_bytes[ext], services.config.max_request_bytes)
        size = copy_upload(stream, path, limit, f"the limit for {ext} files")
        if size == 0:
            raise ApiError(400, "empty_file", f"{shown_file} is empty")
        try:
            fmt, loaded_preview, shapes = _examine_limited(
                path, ext, fmt, options, limits, shown_file
            )
        except ApiError as exc:
            exc.message = _shown(exc.message, path, shown_file)
            raise
        opts = {**options, "format": fmt}
        row = {
            "id": dataset_id,
            "name": display_name(name, "") or shown_file,
            "format": fmt,
            "filename": filename,
            "size": size,
            "created": now(),
            "shapes": dumps(shapes),
            "preview": dumps(_shown_deep(loaded_preview, path, shown_file)),
            "options": dumps(opts),
        }
        with services.db.write() as conn:
            conn.execute(insert(datasets).values(**row))
    except FileExistsError:  # an id collision: the file is someone else's
        raise ApiError(503, "busy", "could not store the upload; try again") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    out = get(services.db, dataset_id)
    assert out is not None
    out["preview"] = loads(row["preview"])
    return out


def reread(services: Any, dataset_id: str, changes: Mapping[str, Any]) -> dict | None:
    """Read a stored upload again with some of its read options changed (a text file's
    tokenizer, block_size, ...): its shapes, preview and options are replaced only when the
    new read succeeds. None for an unknown id."""
    if not valid_id(dataset_id):
        return None
    r = _select(services.db, dataset_id)
    if r is None:
        return None
    options = {**(loads(r.options) or {}), **changes}
    ext = r.filename[len(dataset_id) :]
    path = services.data.dataset_path(r.filename)
    limits = Limits.from_config(services.config)
    try:
        fmt, loaded_preview, shapes = _examine_limited(
            path, ext, str(options.get("format") or "auto"), options, limits, r.name
        )
    except ApiError as exc:
        exc.message = _shown(exc.message, path, r.name)
        raise
    values = {
        "format": fmt,
        "shapes": dumps(shapes),
        "preview": dumps(_shown_deep(loaded_preview, path, r.name)),
        "options": dumps({**options, "format": fmt}),
    }
    with services.db.write() as conn:
        conn.execute(update(datasets).where(datasets.c.id == dataset_id).values(**values))
    out = get(services.db, dataset_id)
    assert out is not None
    out["preview"] = loads(values["preview"])
    return out


def copy_upload(stream: IO[bytes], path: Path, limit: int, which: str) -> int:
    """Copy an upload to a new file in chunks (never whole in memory); 413 past `limit` bytes
    (`which` names the limit in the message). Returns the size; the caller removes the file on
    failure."""
    size = 0
    with open(path, "xb") as f:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise ApiError(
                    413, "too_large", f"the file is larger than {format_bytes(limit)}, {which}"
                )
            f.write(chunk)
    return size


def _shown(message: str, path: Path, shown_file: str) -> str:
    """Engine messages name the stored file: show the user's file name instead."""
    return message.replace(str(path), shown_file).replace(path.name, shown_file)


def _shown_deep(value: Any, path: Path, shown_file: str) -> Any:
    if isinstance(value, str):
        return _shown(value, path, shown_file)
    if isinstance(value, dict):
        return {k: _shown_deep(v, path, shown_file) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown_deep(v, path, shown_file) for v in value]
    return value


def bad_data(message: str) -> ApiError:
    return ApiError(422, "bad_data", message)


# --- reading with the engine ------------------------------------------------------------------


def _examine_limited(
    path: Path, ext: str, fmt: str, options: Mapping[str, Any], limits: Limits, shown: str
) -> tuple[str, dict, dict]:
    """_examine in a child process bounded by `limits` (at most two at once)."""
    from .. import limited

    if not _READS.acquire(timeout=300):
        raise ApiError(503, "busy", "other uploads are being read; try again shortly")
    try:
        return limited.call(
            _examine,
            str(path),
            ext,
            fmt,
            dict(options),
            limits,
            memory_bytes=limits.read_memory_bytes,
            seconds=limits.read_seconds,
            what=f"reading {shown}",
        )
    except limited.LimitExceeded as exc:
        code = "too_slow" if exc.kind == "time" else "too_large"
        raise ApiError(413, code, f"{exc}; upload a smaller file") from None
    except limited.ChildFailed as exc:
        log.error("reading upload %s failed: %s", path.name, exc)
        raise bad_data(f"{path.name} cannot be read ({exc})") from None
    finally:
        _READS.release()


def _examine(
    path_text: str, ext: str, fmt: str, options: Mapping[str, Any], limits: Limits
) -> tuple[str, dict, dict]:
    """(format, preview, shapes): the structural checks, then the engine's reader under the
    decoded-size budget. Runs in the limited child."""
    from .upload_checks import precheck

    path = Path(path_text)
    fmt = precheck(path, ext, fmt, options, limits)
    preview, shapes = _read(path, {**options, "format": fmt}, limits)
    return fmt, preview, shapes


def _read(path: Path, options: Mapping[str, Any], limits: Limits) -> tuple[dict, dict]:
    """(preview, shapes) from the engine's reader."""
    from ..engine.data import DataError, load_data, preview
    from ..engine.data.budget import DataTooLarge, limit
    from ..engine.data.load import shapes_of

    try:
        with limit(limits.decoded_bytes):
            loaded = load_data({**options, "source": "file", "path": str(path)})
        shapes = {
            **shapes_of(loaded),
            "samples": loaded.samples,
            "val_samples": int(loaded.val[0].shape[0]) if loaded.val is not None else None,
        }
        return preview(loaded), shapes
    except DataTooLarge as exc:
        raise ApiError(413, "too_large", str(exc)) from None
    except DataError as exc:
        raise bad_data(str(exc)) from None
    except MemoryError:
        raise ApiError(413, "too_large", f"{path.name} does not fit in memory") from None
    except ApiError:
        raise
    except Exception as exc:  # a reader bug must not leave a half-stored upload or a 500
        log.exception("reading upload %s failed", path.name)
        raise bad_data(f"{path.name} cannot be read ({type(exc).__name__})") from None
