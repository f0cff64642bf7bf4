"""JSON errors for /api and /ws, friendly pages elsewhere; never a traceback."""

from __future__ import annotations

import logging
import sqlite3

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from hooklab.shared.store import DISK_FULL_MESSAGE, is_busy, is_full

log = logging.getLogger("hooklab")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error to send as `{"error": {"code", "message", "field"?}}` with a status."""

    errors: dict[str, str] | None = None  # every bad field of a form (FieldErrors)

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class FieldErrors(ApiError):
    """Every problem of a form at once (422): `errors` maps each field to its message.

    The answer names the first as `field` and `message`, as any error does, and lists them all
    in `errors` ([{field, message}, ...]), so a form shows each next to its field.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        field, message = next(iter(errors.items()))
        super().__init__(422, "invalid", message, field)
        self.errors = errors


def error_body(
    code: str, message: str, field: str | None = None, errors: dict[str, str] | None = None
) -> dict:
    """The JSON body of an API error."""
    error: dict = {"code": code, "message": message}
    if field:
        error["field"] = field
    if errors:
        error["errors"] = [{"field": name, "message": text} for name, text in errors.items()]
    return {"error": error}


def json_error(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    """A JSON error response."""
    response = jsonify(error_body(code, message, field, errors))
    response.status_code = status
    return response


def _wants_json() -> bool:
    path = request.path
    return path.startswith(("/api/", "/ws/")) or path in ("/api", "/ws") or request.is_json


def init_app(app: Flask) -> None:
    """Install the error handlers."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return json_error(exc.status, exc.code, exc.message, exc.field, exc.errors)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:  # Werkzeug's words name no limit: say which, and how to raise it
            limit = request.max_content_length
            importing = request.path == "/api/events/import"
            setting = "--max-import-bytes" if importing else "--max-body-bytes"
            size = f"{limit:,} bytes; " if limit is not None else ""
            message = (
                f"The request body is larger than this server takes here ({size}the server's "
                f"{setting} setting)."
            )
        if _wants_json():
            return json_error(status, CODES.get(status, "error"), message)
        return render_template("error.html", status=status, title=exc.name, message=message), status

    @app.errorhandler(sqlite3.OperationalError)
    def _store_busy(exc: sqlite3.OperationalError):
        if is_full(exc):  # one line in the log, no traceback: the message says it all
            log.warning("disk full on %s %s: %s", request.method, request.path, exc)
            if _wants_json():
                return json_error(507, "disk_full", DISK_FULL_MESSAGE)
            page = render_template(
                "error.html", status=507, title="Disk full", message=DISK_FULL_MESSAGE
            )
            return Response(page, status=507, mimetype="text/html")
        if not is_busy(exc):
            return _unexpected(exc)
        # Another program held the database's write lock past the busy timeout: try later.
        log.warning("database busy on %s %s: %s", request.method, request.path, exc)
        message = "The database is busy (another program holds its lock); try again shortly."
        if _wants_json():
            response = json_error(503, "unavailable", message)
        else:
            page = render_template("error.html", status=503, title="Busy", message=message)
            response = Response(page, status=503, mimetype="text/html")
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        message = "Something went wrong on the server; the details are in the server log."
        if _wants_json():
            return json_error(500, "internal_error", message)
        return render_template("error.html", status=500, title="Server error", message=message), 500
