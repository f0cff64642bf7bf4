"""Checking a captured request against an event of the catalog: does it match what it claims?

The catalog belongs to the sender; the bin never imports it. `app/` hands over a checker
callable in `app.extensions["hooklab.check_payload"]` (slug, payload) -> result.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from hooklab.bin_server import bins, captured
from hooklab.bin_server.api import _get_request_row, request_id_in_path
from hooklab.shared.context import get_store
from hooklab.shared.errors import ApiError

bp = Blueprint("bin_checks", __name__)

EVENT_HEADER = "x-hooklab-event"
ENVELOPE_KEYS = {"type", "timestamp", "data"}


def named_event(headers: list[list[str]]) -> str | None:
    """The event a captured request names in its X-Hooklab-Event header, or None."""
    for name, value in headers:
        if name.lower() == EVENT_HEADER and value.strip():
            return value.strip()
    return None


def checked_payload(body: Any) -> tuple[Any, bool]:
    """What to check in a JSON body: the `data` of a Standard Webhooks envelope, else the body."""
    if isinstance(body, dict) and set(body) == ENVELOPE_KEYS and isinstance(body["data"], dict):
        return body["data"], True
    return body, False


@bp.get("/api/bins/<bin_id>/requests/<request_id>/check")
def check_request(bin_id: str, request_id: str):
    """Check a captured request's JSON body against an event (`?event=`, else its header)."""
    path_id = request_id_in_path(request_id)  # a 400 naming it unless a whole number
    bins.require_bin(get_store(), bin_id)
    found = _get_request_row(bin_id, path_id)
    rid: int = found["id"]  # as a number (the path may say 007)
    slug = request.args.get("event", "").strip() or named_event(json.loads(found["headers"]))
    if not slug:
        raise ApiError(
            400,
            "no_event",
            f"Request {rid} names no event (it has no X-Hooklab-Event header); "
            "say which event to check it against with ?event=<slug>.",
            "event",
        )
    if found["truncated"]:
        raise ApiError(
            400,
            "truncated",
            f"The body of request {rid} was cut at the body limit, so it cannot be checked.",
        )
    body = captured.parse_json(found["body"] or b"")
    if body is None:
        raise ApiError(
            400,
            "not_json",
            f"The body of request {rid} is not JSON, so it cannot be checked against an event.",
        )
    payload, enveloped = checked_payload(body)
    check = current_app.extensions["hooklab.check_payload"]
    return jsonify({**check(slug, payload), "request_id": rid, "envelope": enveloped})
