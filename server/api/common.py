"""Helpers shared by the blueprints: request bodies, documents, the app's services."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..config import ServerConfig
from ..errors import ApiError


def services() -> Any:
    return current_app.extensions["torchloom"]


def config() -> ServerConfig:
    return current_app.config["TORCHLOOM"]


# --- request bodies: each route a limit that fits what it carries ---------------------------

BodyKind = Literal["small", "predict", "document", "upload"]
_BODY_WHAT = {
    "small": "this request",
    "predict": "a prediction request",
    "document": "a graph document",
    "upload": "an upload",
}


def body_limit(kind: BodyKind) -> Callable:
    """Mark a view with the body it may receive (unmarked views: "small"); put it below the
    route decorator."""

    def mark(view: Callable) -> Callable:
        view.body_limit = kind  # type: ignore[attr-defined]
        return view

    return mark


def _limit(kind: str) -> int:
    cfg = config()
    return {
        "small": cfg.max_small_request_bytes,
        "predict": cfg.max_predict_bytes,
        "document": cfg.max_document_bytes,
        "upload": cfg.max_request_bytes,
    }[kind]


def _too_large(kind: str, size: int | None) -> ApiError:
    limit = _limit(kind)
    given = f"is {size:,} bytes" if size is not None else "is larger than that"
    return ApiError(
        413,
        "document_too_large" if kind == "document" else "too_large",
        f"the request body {given}; the limit for {_BODY_WHAT[kind]} is {limit:,} bytes",
        {"limit": limit, "kind": kind},
    )


def enforce_body_limit() -> None:
    """before_request: the route's limit, checked on the declared Content-Length before
    anything is read, and set as the request's max_content_length so that a body without
    one (chunked) is cut off at the limit while it is read."""
    view = current_app.view_functions.get(request.endpoint or "")
    kind = getattr(view, "body_limit", "small")
    request.max_content_length = _limit(kind)
    size = request.content_length
    if size is not None and size > _limit(kind):
        raise _too_large(kind, size)


def register_body_limits(app: Any) -> None:
    app.before_request(enforce_body_limit)

    @app.errorhandler(RequestEntityTooLarge)
    def _over(err: RequestEntityTooLarge):  # a body without Content-Length, cut off
        view = current_app.view_functions.get(request.endpoint or "")
        return _too_large(getattr(view, "body_limit", "small"), None).response()


def json_body() -> dict:
    raw = request.get_data(cache=True)  # bounded by the route's max_content_length
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the request body must be a JSON object")
    return body


def document_from(body: dict, key: str = "document") -> Any:
    """A graph document from the body, size-checked (validation itself never raises)."""
    doc = body.get(key, body if key == "." else None)
    if doc is None:
        raise ApiError(400, "missing_document", f'the body needs a "{key}" field')
    cfg = config()
    if isinstance(doc, dict):
        nodes = doc.get("nodes")
        if isinstance(nodes, list) and len(nodes) > cfg.max_nodes:
            raise ApiError(
                413,
                "too_many_nodes",
                f"the graph has {len(nodes)} nodes; the limit is {cfg.max_nodes}",
            )
    return doc


def require_valid(analysis: Any, message: str) -> None:
    """422 with every validation error when the graph cannot be built."""
    if not analysis.ok:
        raise ApiError(422, "invalid_graph", message, [e.to_dict() for e in analysis.error_list])
