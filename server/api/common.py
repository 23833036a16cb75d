"""Helpers shared by the blueprints: request bodies, documents, the app's services."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from ..config import ServerConfig
from ..errors import ApiError


def services() -> Any:
    return current_app.extensions["torchloom"]


def config() -> ServerConfig:
    return current_app.config["TORCHLOOM"]


def json_body() -> dict:
    if request.content_length and request.content_length > config().max_request_bytes:
        raise ApiError(413, "too_large", "the request body is too large")
    raw = request.get_data(cache=True)
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


def check_upload_size() -> None:
    """413 before reading a multipart upload whose declared size is over the request limit."""
    limit = config().max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413,
            "too_large",
            f"the upload is {request.content_length:,} bytes; the limit is {limit:,} bytes",
        )


def require_valid(analysis: Any, message: str) -> None:
    """422 with every validation error when the graph cannot be built."""
    if not analysis.ok:
        raise ApiError(422, "invalid_graph", message, [e.to_dict() for e in analysis.error_list])
