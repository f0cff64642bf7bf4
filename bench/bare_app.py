"""The ceiling of the capture benchmark: a bare WSGI app that answers "ok" and stores nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable

BODY = b"ok"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Read the body (as any real endpoint must) and answer "ok"."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("200 OK", HEADERS)
    return [BODY]
