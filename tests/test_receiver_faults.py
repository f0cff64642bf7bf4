"""Receiver faults that tests/test_delivery.py does not cover, and secrets kept out of records.

tests/test_delivery.py covers 500s, a receiver that never answers, resets, 410, 429 with
Retry-After and redirects. Here: receivers that trickle their answer (a header or body byte at
a time, each byte inside the read timeout), which must not hold a delivery worker past the
webhook's timeout; and the secrets (webhook secrets, the access token, bin secrets), which must
never show in the attempt records or the server's log.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import sqlite3
import threading
import time

import pytest
import requests

from tests.served import start

TOKEN = "tok-" + "s" * 30


class TricklingReceiver:
    """A raw-socket receiver: sends `at_once`, then `answer` one byte every `every_s` seconds."""

    def __init__(self, at_once: bytes, answer: bytes, every_s: float = 0.1) -> None:
        self.at_once = at_once
        self.answer = answer
        self.every_s = every_s
        self.started = threading.Event()
        self.sent = 0  # bytes of the answer sent so far
        self.finished = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)  # the request (small: headers and a JSON body)
                self.started.set()
                conn.sendall(self.at_once)
                for byte in self.answer:
                    conn.sendall(bytes([byte]))
                    self.sent += 1
                    time.sleep(self.every_s)
            except OSError:
                return  # the sender gave up and closed: what it should do
            finally:
                self.finished.set()

    def close(self) -> None:
        self.listener.close()


SLOW_HEAD = (b"", b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100 + b"\r\nContent-Length: 0\r\n\r\n")
SLOW_BODY = (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"b" * 100)
# The status line at once, then the headers a byte at a time: not a 200 until they end.
SLOW_HEADERS = (b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"a" * 200 + b"\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("receivers")
    served = start(
        tmp,
        "--db",
        str(tmp / "receivers.db"),
        "--token",
        TOKEN,
        env={"HOOKLAB_RETRY_SCHEDULE": "0.2,0.4", "HOOKLAB_RETRY_JITTER": "0"},
    )
    yield served
    served.stop()


def api(server, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return requests.request(method, f"{server.url}/api{path}", headers=headers, **kwargs)


def add_webhook(server, url: str, **fields) -> dict:
    body = {"name": "Receiver", "url": url, "event": "*", **fields}
    response = api(server, "POST", "/webhooks", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize(
    "answer",
    [SLOW_HEAD, SLOW_HEADERS, SLOW_BODY],
    ids=["slow status line", "slow headers", "slow body"],
)
def test_a_trickling_receiver_does_not_hold_the_sender_past_the_timeout(server, answer):
    # Each byte comes well inside the 0.5 s read timeout; the whole answer takes ~14 s.
    receiver = TricklingReceiver(*answer, every_s=0.1)
    try:
        webhook = add_webhook(server, receiver.url, timeout_s=0.5)
        result = api(server, "POST", f"/webhooks/{webhook['id']}/test", timeout=30).json()
        sent_when_answered = receiver.sent
        assert receiver.started.is_set()
        assert sent_when_answered < len(answer[1]), "the sender waited for the whole trickle"
        if answer is not SLOW_BODY:
            assert result["ok"] is False
            assert result["error_kind"] == "timeout", result
        else:
            # The status arrived in time: the receiver accepted. The log says the body was cut.
            assert result["status_code"] == 200
            assert result["response_truncated"] is True
        assert receiver.finished.wait(5), "the sender did not close the connection"
    finally:
        receiver.close()


def test_secrets_never_appear_in_attempt_records_or_the_log(server):
    bin_secret = "whsec_" + base64.b64encode(b"bin-secret-bytes-0123456789").decode()
    capture_bin = api(
        server, "POST", "/bins", json={"name": "signed", "secret": bin_secret}, timeout=10
    ).json()
    webhook = add_webhook(server, capture_bin["url"])
    failing = add_webhook(server, f"http://127.0.0.1:{closed_port()}/none")
    secrets = {
        "webhook secret": webhook["secret"],
        "webhook key": webhook["secret"].removeprefix("whsec_"),
        "failing webhook secret": failing["secret"],
        "bin secret": bin_secret,
        "access token": TOKEN,
    }
    slug = api(server, "GET", "/events", timeout=10).json()[0]["slug"]
    assert api(server, "POST", f"/events/{slug}", json={"n": 1}, timeout=10).status_code == 202
    api(server, "POST", f"/webhooks/{webhook['id']}/test", timeout=30)
    api(server, "POST", f"/webhooks/{failing['id']}/test", timeout=30)
    # A login with a wrong token, and one with the right token, through the form.
    for token in ("wrong-" + TOKEN, TOKEN):
        requests.post(
            f"{server.url}/login",
            data={"token": token},
            headers={"Origin": server.url},
            allow_redirects=False,
            timeout=10,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = api(server, "GET", f"/webhooks/{failing['id']}/deliveries", timeout=10).json()
        if all(d["status"] == "failed" for d in found) and len(found) == 2:
            break
        time.sleep(0.2)
    records = []
    for hook in (webhook, failing):
        deliveries = api(server, "GET", f"/webhooks/{hook['id']}/deliveries", timeout=10)
        records.append(deliveries.text)
        assert deliveries.json(), "the webhook should have deliveries"
    with sqlite3.connect(f"file:{server.db}?mode=ro", uri=True) as conn:
        cursor = conn.execute("SELECT * FROM attempts")
        columns = [c[0] for c in cursor.description]
        attempts = cursor.fetchall()
    assert attempts
    attempt_text = repr(attempts)
    log = server.log()
    for what, secret in secrets.items():
        assert secret not in attempt_text, f"{what} in the attempts table"
        for text in records:
            assert secret not in text, f"{what} in the deliveries API"
        assert secret not in log, f"{what} in the server log"
    # The signature each attempt sent is replaced in the record (it would let a reader forge).
    signatures = [
        value
        for attempt in attempts
        for name, value in json.loads(attempt[columns.index("request_headers")])
        if name.lower() == "webhook-signature"
    ]
    assert signatures and all(not re.search(r"v1,[A-Za-z0-9+/]{43}=", v) for v in signatures)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
