"""The catalog, validation (errors, shapes, params, FLOPs) and code generation."""

from __future__ import annotations

from flask import Blueprint, jsonify

from graph_compiler import GraphCompileError, analyze, catalog_json, generate

from ..errors import ApiError
from .common import config, document_from, json_body

bp = Blueprint("graph", __name__, url_prefix="/api")


@bp.get("/catalog")
def catalog():
    data = catalog_json()
    data["custom_code_allowed"] = config().allow_custom_code
    return jsonify(data)


@bp.post("/validate")
def validate():
    doc = document_from(json_body())
    return jsonify(analyze(doc, allow_custom_code=config().allow_custom_code).to_json())


@bp.post("/codegen")
def codegen():
    doc = document_from(json_body())
    try:
        source = generate(doc, allow_custom_code=config().allow_custom_code)
    except GraphCompileError as exc:
        raise ApiError(
            422, "invalid_graph", "the graph has errors", [e.to_dict() for e in exc.errors]
        ) from None
    return jsonify({"source": source})
