"""Long polls and the server's threads: a poll given up by its client frees its thread, and a
capture tells its bin's waiters only once its own answer has been sent."""

from __future__ import annotations

import select
import socket
import struct
import threading
import time

import pytest
import requests
from werkzeug.test import EnvironBuilder

from hooklab.app.factory import create_app
from hooklab.bin_server.api import client_gone
from hooklab.shared.context import get_notifier
from tests.conftest import make_settings, start_live_server
from tests.waiting import wait_for, wait_until_reading

# Few server threads, so that long polls holding them all would show.
THREADS = 4


# -- client_gone: the peek at the connection ---------------------------------------------------


@pytest.fixture
def connection():
    """Both ends of a TCP connection on 127.0.0.1: (the server's end, the client's end)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname(), timeout=10)
        server, _ = listener.accept()
    yield server, client
    server.close()
    client.close()


@pytest.mark.parametrize("key", ["gunicorn.socket", "werkzeug.socket"])
def test_a_waiting_client_is_not_gone(connection, key):
    server, _ = connection
    assert client_gone({key: server}) is False


def test_a_pipelined_request_is_no_client_gone_and_stays_to_be_read(connection):
    server, client = connection
    request = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"
    client.sendall(request)
    assert select.select([server], [], [], 10)[0]  # arrived
    assert client_gone({"gunicorn.socket": server}) is False
    assert server.recv(1024) == request  # only peeked at


@pytest.mark.parametrize("key", ["gunicorn.socket", "werkzeug.socket"])
def test_a_client_that_closed_is_gone(connection, key):
    server, client = connection
    client.close()
    wait_for(lambda: client_gone({key: server}), what="the client's close to arrive")


def test_a_client_that_reset_the_connection_is_gone(connection):
    server, client = connection
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # with SO_LINGER 0: a reset, not a close
    wait_for(lambda: client_gone({"gunicorn.socket": server}), what="the reset to arrive")


def test_a_socket_closed_already_is_a_client_gone(connection):
    server, _ = connection
    server.close()
    assert client_gone({"gunicorn.socket": server}) is True


def test_without_a_socket_to_look_at_the_client_is_not_gone():
    assert client_gone({}) is False


# -- a live server with few threads --------------------------------------------------------------


def open_long_poll(port: int, bin_id: str, query: str = "") -> socket.socket:
    """A long poll of 30 s sent from a raw socket (closed by the caller, unread); `query`:
    more of its query string (`&path=/never`)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"GET /api/bins/{bin_id}/requests/wait?timeout=30{query} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n\r\n".encode()
    )
    return sock


def test_long_polls_given_up_by_their_clients_free_the_servers_threads(tmp_path):
    live = start_live_server(make_settings(tmp_path, threads=THREADS))
    try:
        bin_ = live.create_bin()
        # More polls than threads: those not yet served wait for a thread, and get one later.
        polls = [open_long_poll(live.port, bin_["id"]) for _ in range(3 * THREADS)]
        for sock in polls:
            sock.close()

        # Requests time out well before the polls' 30 s: a thread still held by one would show.
        api = f"{live.url}/api/bins/{bin_['id']}"
        assert requests.get(api, timeout=10).json()["id"] == bin_["id"]
        made = requests.post(f"{live.url}/api/bins", json={}, timeout=10)
        assert made.status_code == 201

        # A new long poll is served, and answered when its request comes.
        waiter = threading.current_thread()

        def send():
            wait_until_reading(waiter)
            requests.post(bin_["url"] + "/late", data=b"late", timeout=10)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        # The given-up polls keep their places until they notice (within a second or so):
        # meanwhile a new one is refused with Retry-After, as a client asks again.
        deadline = time.monotonic() + 10
        while True:
            answer = requests.get(f"{api}/requests/wait?timeout=30", timeout=10)
            if answer.status_code != 503 or time.monotonic() > deadline:
                break
            assert answer.json()["error"]["code"] == "too_many_waiting"
            time.sleep(float(answer.headers["Retry-After"]))
        sender.join()
        assert answer.status_code == 200
        assert (answer.json()["subpath"], answer.json()["body_text"]) == ("/late", "late")
    finally:
        live.kill()


# -- a capture's answer goes out before its bin's waiters are told -------------------------------


def make_bin(client, **fields) -> str:
    response = client.post("/api/bins", json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def capture_in_process(app, bin_id: str, data: bytes) -> tuple[list[str], object]:
    """Call the app's WSGI callable (the capture middleware) itself: (statuses, its body)."""
    environ = EnvironBuilder(path=f"/b/{bin_id}/hook", method="POST", data=data).get_environ()
    statuses: list[str] = []
    body = app.wsgi_app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    return statuses, body


def test_a_plain_capture_tells_its_waiters_once_its_answer_is_sent(app, client):
    bin_id = make_bin(client)
    other = make_bin(client)
    notifier = get_notifier(app)
    with notifier.bell(bin_id) as bell, notifier.bell(other) as other_bell:
        version = notifier.version
        statuses, body = capture_in_process(app, bin_id, b"first")
        # Stored and answered, nobody told yet: the server sends the answer first.
        assert statuses == ["200 OK"]
        [stored] = client.get(f"/api/bins/{bin_id}/requests").get_json()
        assert stored["subpath"] == "/hook"
        assert not bell.is_set()
        assert notifier.version == version
        assert b"".join(body)  # what the server writes
        body.close()  # what the server calls once it has written it (PEP 3333)
        assert bell.is_set()
        assert notifier.version > version
        assert not other_bell.is_set()  # another bin's waiters are not woken


@pytest.mark.parametrize("kind", ["delayed", "too large"])
def test_a_capture_answered_late_or_refused_tells_its_waiters_at_once(tmp_path, kind):
    app = create_app(make_settings(tmp_path, max_body_bytes=64))
    client = app.test_client()
    bin_id = make_bin(client, response={"delay_ms": 1} if kind == "delayed" else {})
    notifier = get_notifier(app)
    with notifier.bell(bin_id) as bell:
        statuses, body = capture_in_process(app, bin_id, b"x" * (100 if kind == "too large" else 1))
        assert [status.split()[0] for status in statuses] == ["200" if kind == "delayed" else "413"]
        # Told before the answer is sent (it was not a plain one).
        assert bell.is_set()
        getattr(body, "close", lambda: None)()
