"""Replays and forwards send the method as captured: requests upper-cases it on its own."""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from hooklab.shared.resend import send_as_captured


def one_request_line(listener: socket.socket, lines: list[bytes]) -> None:
    conn, _ = listener.accept()
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        lines.append(data.split(b"\r\n", 1)[0])
        conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize("method", ["get", "PuRgE", "POST", "m-search"])
def test_the_method_goes_out_as_given(method):
    listener = socket.create_server(("127.0.0.1", 0))
    lines: list[bytes] = []
    server = threading.Thread(target=one_request_line, args=(listener, lines))
    server.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/app/x?q=1"
    try:
        with requests.Session() as session:
            with send_as_captured(session, method, url, b"body", {"X-A": "1"}, 5) as answer:
                assert answer.status_code == 204
    finally:
        server.join(10)
        listener.close()
    assert lines == [f"{method} /app/x?q=1 HTTP/1.1".encode()]
