"""Slow and oversized clients against `hooklab serve` (gunicorn): cut off, never blocking others.

The server runs with a 1 s read deadline (`--client-timeout-s 1`) and few threads, so that a
handful of slow clients would hold every thread if nothing cut them off.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

import pytest
import requests
import simple_websocket

from hooklab.app.slow_clients import read_deadline_notice, read_deadline_problem
from tests.served import start

CLIENT_TIMEOUT_S = 1
THREADS = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slow")
    served = start(
        tmp,
        "--db",
        str(tmp / "slow.db"),
        "--client-timeout-s",
        str(CLIENT_TIMEOUT_S),
        "--threads",
        str(THREADS),
    )
    yield served
    served.stop()


@pytest.fixture
def bin_id(server) -> str:
    return requests.post(f"{server.url}/api/bins", json={"name": "slow"}, timeout=5).json()["id"]


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def trickle(sock: socket.socket, data: bytes, every_s: float, give_up_s: float) -> bool:
    """Send `data` one byte at a time; False when the server closed the connection first."""
    deadline = time.monotonic() + give_up_s
    for byte in data:
        if time.monotonic() > deadline:
            return True
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return False
        time.sleep(every_s)
    return True


def read_until_closed(sock: socket.socket, timeout_s: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (or resets it)."""
    sock.settimeout(timeout_s)
    parts = []
    with suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            parts.append(chunk)
    return b"".join(parts)


def request_count(server, bin_id: str) -> int:
    bins = requests.get(f"{server.url}/api/bins/{bin_id}", timeout=5).json()
    return bins["request_count"]


def test_slow_headers_are_cut_off_with_408(server, bin_id):
    sock = connect(server)
    sock.sendall(f"POST /b/{bin_id} HTTP/1.1\r\nHost: x\r\n".encode())
    # One header byte every 0.2 s, for up to 20 s: far longer than the 1 s deadline.
    finished = trickle(sock, b"X-Slow: " + b"a" * 200 + b"\r\n\r\n", 0.2, 20)
    answer = read_until_closed(sock)
    sock.close()
    assert not finished, "the server let a slowloris client trickle its headers for 20 s"
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"
    assert request_count(server, bin_id) == 0


def test_stalled_headers_are_cut_off(server, bin_id):
    sock = connect(server)
    sock.sendall(f"GET /b/{bin_id} HTTP/1.1\r\nHost: x\r\nX-Half".encode())
    answer = read_until_closed(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_slow_body_is_cut_off_and_not_stored(server, bin_id):
    sock = connect(server)
    sock.sendall(f"POST /b/{bin_id} HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\n".encode())
    finished = trickle(sock, b"b" * 400, 0.1, 30)
    read_until_closed(sock)
    sock.close()
    assert not finished, "the server let a client trickle its body for 40 s"
    assert request_count(server, bin_id) == 0


def test_slow_clients_filling_every_thread_do_not_lock_others_out(server, bin_id):
    # Twice as many slowloris connections as server threads, all at once.
    slow = [connect(server) for _ in range(THREADS * 2)]
    for sock in slow:
        sock.sendall(f"POST /b/{bin_id} HTTP/1.1\r\nHost: x\r\n".encode())
    stop = threading.Event()

    def keep_trickling(sock):
        while not stop.is_set():
            try:
                sock.sendall(b"X")
            except OSError:
                return "cut"
            time.sleep(0.2)
        return "still open"

    with ThreadPoolExecutor(len(slow) + 4) as pool:
        slow_results = [pool.submit(keep_trickling, s) for s in slow]
        time.sleep(0.5)  # the slow clients now hold every thread

        def honest(n: int) -> int:
            body = f"honest {n}".encode()
            return requests.post(f"{server.url}/b/{bin_id}", data=body, timeout=15).status_code

        honest_codes = list(pool.map(honest, range(20)))
        # Wait, bounded, for every slow client to be cut off.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(r.done() for r in slow_results):
            time.sleep(0.1)
        stop.set()
        outcomes = [r.result() for r in slow_results]
    for sock in slow:
        sock.close()
    assert honest_codes == [200] * 20
    assert outcomes == ["cut"] * len(slow)
    assert request_count(server, bin_id) == 20


@pytest.mark.parametrize("path", ["/b/{bin_id}", "/b/{bin_id}/deep/path", "/api/bins"])
def test_huge_content_length_gets_413_without_the_body_being_sent(server, bin_id, path):
    sock = connect(server)
    target = path.format(bin_id=bin_id)
    sock.sendall(
        # The server's own name: /api refuses any other (DNS rebinding); capture takes any.
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10**12}\r\n\r\n".encode()
    )
    # Not a byte of the body is sent: the answer must come from the headers alone.
    sock.settimeout(5)
    head = sock.recv(4096)
    sock.close()
    assert head.startswith(b"HTTP/1.1 413 "), head
    if target.startswith("/b/"):
        newest = requests.get(f"{server.url}/api/bins/{bin_id}/requests", timeout=5).json()[0]
        assert newest["truncated"] is True
        assert newest["body_size"] == 10**12


def test_body_over_the_limit_from_a_real_client_gets_413(server, bin_id):
    # A normal client that sends its (too large) body at once still reads the 413.
    limit = requests.get(f"{server.url}/api/settings", timeout=5).json()["settings"]
    too_big = b"z" * (limit["max_body_bytes"]["value"] + 1)
    response = requests.post(f"{server.url}/b/{bin_id}", data=too_big, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_waiting_is_not_reading_long_polls_and_websockets_outlive_the_deadline(server, bin_id):
    ws = simple_websocket.Client.connect(f"ws://127.0.0.1:{server.port}/ws/bins/{bin_id}")
    try:
        wait = requests.get(
            f"{server.url}/api/bins/{bin_id}/requests/wait",
            params={"after": 10**9, "timeout": CLIENT_TIMEOUT_S + 1.5},
            timeout=15,
        )
        assert wait.status_code == 204  # answered when its own timeout passed, not cut
        assert ws.connected
        requests.post(f"{server.url}/b/{bin_id}/late", data=b"late", timeout=5)
        frame = json.loads(ws.receive(timeout=5))
        assert frame["request"]["subpath"] == "/late"
    finally:
        with suppress(simple_websocket.ConnectionClosed):
            ws.close()


def test_server_log_has_no_traceback(server):
    assert "Traceback" not in server.log(), server.log()


def test_the_read_deadline_attaches_to_the_installed_gunicorn():
    assert read_deadline_problem() is None
    assert read_deadline_notice() is None


def test_serve_says_so_in_one_line_when_the_deadline_cannot_attach(monkeypatch):
    from gunicorn.http.unreader import SocketUnreader

    # A gunicorn whose socket reader keeps its socket under another name.
    original = SocketUnreader.__init__

    def renamed(self, sock, *args, **kwargs):
        original(self, sock, *args, **kwargs)
        self._sock = self.__dict__.pop("sock")

    monkeypatch.setattr(SocketUnreader, "__init__", renamed)
    assert "socket reader" in read_deadline_problem()
    notice = read_deadline_notice()
    assert notice.startswith("Warning: the read deadline (--client-timeout-s) is off")
    assert "\n" not in notice
