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
            b"GET /api/bins?q=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
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
    assert headers["Content-Security-Policy"] == "sandbox"  # as every capture answer
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


def head_with(target: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", *[f"{n}: {v}" for n, v in headers]]
    return ("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode()


def test_long_callback_urls_many_headers_and_big_cookies_are_captured(live_server):
    # gunicorn's defaults (4094-byte request line, 100 headers, 8190 bytes a header) lost
    # such webhooks without a trace; Hooklab's are settings (--max-request-line ...).
    import requests

    bin_ = live_server.create_bin()
    target = f"/b/{bin_['id']}/cb?state=" + "s" * 7000
    headers = [(f"X-H{i}", str(i)) for i in range(150)] + [("Cookie", "c=" + "k" * 15000)]
    status_line, answer, _ = raw(live_server, head_with(target, headers))
    assert status_line.startswith("HTTP/1.1 200 "), status_line
    rid = answer["X-Hooklab-Request-Id"]
    url = f"{live_server.url}/api/bins/{bin_['id']}/requests/{rid}"
    item = requests.get(url, timeout=5).json()
    assert item["path"] + "?" + item["query_string"] == target
    assert len(item["headers"]) >= 151


@pytest.mark.parametrize(
    ("target_extra", "headers", "status", "code"),
    [
        ("?q=" + "x" * 8200, [], 414, "uri_too_long"),
        ("", [(f"X-H{i}", "v") for i in range(210)], 431, "headers_too_large"),
        ("", [("X-Big", "v" * 17000)], 431, "headers_too_large"),
    ],
)
def test_past_the_head_limits_a_capture_is_a_json_error_and_not_stored(
    live_server, target_extra, headers, status, code
):
    import json

    import requests

    bin_ = live_server.create_bin()
    status_line, answer, body = raw(
        live_server, head_with(f"/b/{bin_['id']}" + target_extra, headers)
    )
    assert status_line.startswith(f"HTTP/1.1 {status} ")
    assert json.loads(body)["error"]["code"] == code
    assert answer["Content-Security-Policy"] == "sandbox"
    listed = requests.get(f"{live_server.url}/api/bins/{bin_['id']}/requests", timeout=5).json()
    assert listed == []


def test_the_header_line_limit_counts_name_and_value_exactly(live_server):
    # A line of exactly --max-header-bytes (16 KiB) was refused: gunicorn counted its CRLF.
    bin_ = live_server.create_bin()
    name = "X-Big"
    exact = 16384 - len(name) - 2  # "X-Big: " + value is 16,384 bytes
    status_line, _, _ = raw(live_server, head_with(f"/b/{bin_['id']}", [(name, "v" * exact)]))
    assert status_line.startswith("HTTP/1.1 200 "), status_line
    status_line, _, _ = raw(live_server, head_with(f"/b/{bin_['id']}", [(name, "v" * (exact + 1))]))
    assert status_line.startswith("HTTP/1.1 431 "), status_line
