"""The catalog, validation (errors, shapes, params, FLOPs) and code generation."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, jsonify, request

from graph_compiler import catalog_json

from ..analysis_pool import AnalysisUnavailable
from ..errors import ApiError
from ..rules import rules_json
from .common import body_limit, config, document_from, json_body, services

bp = Blueprint("graph", __name__, url_prefix="/api")


def document_body() -> dict:
    """json_body() for a request that carries a graph document: at most max_document_bytes,
    refused before it is parsed when the Content-Length says so."""
    limit = config().max_document_bytes
    size = request.content_length
    if size is None or size <= limit:
        body = json_body()
        size = len(request.get_data(cache=True))
        if size <= limit:
            return body
    raise ApiError(
        413,
        "document_too_large",
        f"the document is {size:,} bytes; the limit is {limit:,} bytes",
    )


@bp.get("/catalog")
def catalog():
    data = catalog_json()
    data["custom_code_allowed"] = config().allow_custom_code
    data["rules"] = rules_json()
    return jsonify(data)


@bp.post("/validate")
@body_limit("document")
def validate():
    doc = document_from(document_body())
    try:
        return jsonify(services().analysis.analysis_json(doc))
    except AnalysisUnavailable as exc:
        raise ApiError(503, "analysis_unavailable", f"{exc}; try again") from None


@bp.post("/codegen")
@body_limit("document")
def codegen():
    doc = document_from(document_body())
    try:
        result = services().analysis.codegen(doc)
    except AnalysisUnavailable as exc:
        raise ApiError(503, "analysis_unavailable", f"{exc}; try again") from None
    if "errors" in result:
        raise ApiError(422, "invalid_graph", "the graph has errors", result["errors"])
    return jsonify(result)


@bp.get("/examples")
def examples():
    """The example graphs (examples/*.json) for the gallery; each opens as a new project."""
    out = []
    folder = config().examples_dir
    for path in sorted(Path(folder).glob("*.json")) if folder else []:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        out.append(
            {
                "file": path.name,
                "name": str(doc.get("name") or path.stem),
                "description": str(doc.get("description") or ""),
                "document": doc,
            }
        )
    return jsonify({"examples": out})
