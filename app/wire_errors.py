"""The answers gunicorn gives itself, as JSON errors like every other answer of Hooklab.

A request gunicorn cannot parse never reaches the app: a request line over
`--max-request-line` bytes, too many or too long header lines, a second Host header, a broken
chunk. gunicorn answers those on its own,
with an HTML page; a CLI, a client or a script reading `/api` then gets HTML where every other
error is `{"error": {"code", "message"}}`. `write_json_error` replaces gunicorn's
`util.write_error` in the serving process (app/slow_clients.py installs it): same status and
reason, a JSON body, and the connection closed as before.
"""

from __future__ import annotations

import json

from gunicorn import util

CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Send `status_int reason` with a JSON error body and close (gunicorn's signature)."""
    message = mesg or reason
    if not message.endswith("."):
        message += "."
    body = json.dumps(
        {"error": {"code": CODES.get(status_int, "bad_request"), "message": message}}
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        # As every capture answer (design.md): a page that shows it runs nothing.
        "Content-Security-Policy: sandbox\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    """Make gunicorn's own error answers JSON in this process."""
    util.write_error = write_json_error
