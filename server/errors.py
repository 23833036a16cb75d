"""API errors: `{"error": {"code", "message", "details"}}` with the right HTTP status."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self):
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        return jsonify(body), self.status


def not_found(what: str, ident: Any) -> ApiError:
    return ApiError(404, "not_found", f"{what} {ident} does not exist")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api(err: ApiError):
        return err.response()

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        code = (err.name or "error").lower().replace(" ", "_")
        return ApiError(err.code or 500, code, err.description or err.name).response()

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):  # never a traceback to the client; the log has it
        from .engine.diskspace import is_disk_full

        if is_disk_full(err):  # the server keeps serving; the user learns what to free
            app.logger.error("disk full: %s", err)
            return ApiError(
                507,
                "disk_full",
                "the server's disk is full: nothing could be saved; delete old runs or "
                "datasets, or free space on the data directory's disk",
            ).response()
        app.logger.exception("unhandled error")
        return ApiError(500, "internal_error", f"internal error: {type(err).__name__}").response()
