"""What gunicorn answers on its own (a request it cannot parse) is a JSON error too."""

from __future__ import annotations

import socket

import pytest


def raw(live_server, request: bytes) -> tuple[str, dict[str, str], bytes]:
    port = int(live_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (
            b"GET /api/bins?q=" + b"x" * 5000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            414,
            "uri_too_long",
        ),
        (
            b"GET /api/bins HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n\r\n",
            400,
            "bad_request",
        ),
        (b"GET /api/bins HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n", 400, "bad_request"),
        (b"NOT A REQUEST\r\n\r\n", 400, "bad_request"),
    ],
)
def test_a_request_gunicorn_cannot_parse_gets_a_json_error(
    live_server, request_bytes, status, code
):
    import json

    status_line, headers, body = raw(live_server, request_bytes)
    assert status_line.startswith(f"HTTP/1.1 {status} ")
    assert headers["Content-Type"] == "application/json"
    assert headers["Connection"] == "close"
    assert int(headers["Content-Length"]) == len(body)
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"]
    assert "<" not in body.decode()


def test_what_was_sent_comes_back_as_escaped_text_only(live_server):
    import json

    _, headers, body = raw(live_server, b"GET /<script>\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert body.isascii() and b"\x01" not in body  # the control byte is spelled out
    message = json.loads(body)["error"]["message"]
    assert "Invalid Request Line" in message and "<script>" in message
