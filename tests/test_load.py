"""Nothing lost under load: 20,000 captures over 32 concurrent connections, each checked.

Mixed sizes (empty to 2 MiB), content types (JSON, form, multipart, text, binary), methods and
framing (Content-Length and chunked), against `hooklab serve` (gunicorn) on a fresh database.
Every answer must be 2xx with a request id; afterwards the database must hold exactly the
20,000 requests, one per id, each body's sha256 equal to what was sent.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from tests.served import start

TOTAL = 20_000
CONNECTIONS = 32


@dataclass(frozen=True)
class Sent:
    """What one captured request carried, and the id the server answered with."""

    request_id: int
    bin_id: str
    method: str
    content_type: str | None
    sha256: str
    size: int


def make_body(rng: random.Random) -> tuple[str | None, bytes]:
    """A body of a random kind and size: mostly small, sometimes large."""
    roll = rng.random()
    if roll < 0.60:
        size = rng.randrange(0, 1024)
    elif roll < 0.95:
        size = rng.randrange(1024, 32 * 1024)
    elif roll < 0.999:
        size = rng.randrange(32 * 1024, 256 * 1024)
    else:
        size = rng.randrange(1024 * 1024, 2 * 1024 * 1024)
    kind = rng.randrange(5)
    if kind == 0:
        text = "".join(rng.choice('abcdéü€😀"\\<>&\n') for _ in range(size // 4))
        return "application/json", json.dumps({"n": size, "text": text}).encode()
    if kind == 1:
        return "application/x-www-form-urlencoded", f"a={size}&b=".encode() + b"x%26y+" * (
            size // 6
        )
    if kind == 2:
        boundary = f"b{rng.getrandbits(64):x}"
        part = rng.randbytes(size)
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="f.bin"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + part
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return f"multipart/form-data; boundary={boundary}", body
    if kind == 3:
        return "text/plain; charset=utf-8", ("line\n" * (size // 5)).encode()
    return (None if rng.random() < 0.2 else "application/octet-stream"), rng.randbytes(size)


class Connection:
    """One keep-alive HTTP/1.1 connection over a raw socket (so the client is not the limit)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.reader = self.sock.makefile("rb")

    def send(
        self, method: str, path: str, content_type: str | None, body: bytes, chunked: bool
    ) -> tuple[int, dict[str, str]]:
        lines = [f"{method} {path} HTTP/1.1", "Host: load.test"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        if chunked:
            lines.append("Transfer-Encoding: chunked")
            framed = b"".join(
                b"%x\r\n%s\r\n" % (len(body[i : i + 8192]), body[i : i + 8192])
                for i in range(0, len(body), 8192)
            )
            payload = framed + b"0\r\n\r\n"
        else:
            lines.append(f"Content-Length: {len(body)}")
            payload = body
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        status_line = self.reader.readline()
        status = int(status_line.split()[1])
        headers = {}
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        self.reader.read(int(headers.get("content-length", "0")))
        return status, headers

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("load")
    served = start(tmp, "--db", str(tmp / "load.db"), "--max-requests-per-bin", str(TOTAL))
    yield served
    served.stop()


def test_twenty_thousand_captures_all_stored_exactly(server):
    bins = [
        requests.post(f"{server.url}/api/bins", json={"name": f"load {n}"}, timeout=10).json()["id"]
        for n in range(4)
    ]
    per_connection = TOTAL // CONNECTIONS
    failures: list[str] = []
    lock = threading.Lock()

    def run(worker: int) -> list[Sent]:
        rng = random.Random(worker)
        conn = Connection(server.port)
        sent = []
        try:
            for n in range(per_connection):
                bin_id = bins[(worker + n) % len(bins)]
                method = rng.choice(["POST", "POST", "PUT", "PATCH", "DELETE"])
                content_type, body = make_body(rng)
                chunked = rng.random() < 0.05
                path = f"/b/{bin_id}/w{worker}/n{n}?q={n}"
                status, headers = conn.send(method, path, content_type, body, chunked)
                if not (200 <= status < 300 and "x-hooklab-request-id" in headers):
                    with lock:
                        failures.append(f"{method} {path}: {status}")
                    continue
                digest = hashlib.sha256(body).hexdigest()
                sent.append(
                    Sent(
                        int(headers["x-hooklab-request-id"]),
                        bin_id,
                        method,
                        content_type,
                        digest,
                        len(body),
                    )
                )
        finally:
            conn.close()
        return sent

    started = time.monotonic()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        results = list(pool.map(run, range(CONNECTIONS)))
    elapsed = time.monotonic() - started
    sent = [s for chunk in results for s in chunk]
    assert not failures, failures[:20]
    assert len(sent) == per_connection * CONNECTIONS == TOTAL

    # No two answers carry the same id: nothing was stored twice or answered for another.
    by_id = {s.request_id: s for s in sent}
    assert len(by_id) == TOTAL

    with sqlite3.connect(f"file:{server.db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT id, bin_id, method, content_type, body, body_size, truncated "
            "FROM captured_requests"
        ).fetchall()
    assert len(rows) == TOTAL
    mismatched = []
    for request_id, bin_id, method, content_type, body, body_size, truncated in rows:
        expected = by_id.get(request_id)
        stored = (bin_id, method, content_type, hashlib.sha256(body).hexdigest(), body_size)
        wanted = expected and (
            expected.bin_id,
            expected.method,
            expected.content_type,
            expected.sha256,
            expected.size,
        )
        if stored != wanted or truncated:
            mismatched.append((request_id, stored, wanted))
    assert not mismatched, mismatched[:5]

    # And through the API, as a user reads them back (a sample: the largest and some others).
    sample = sorted(sent, key=lambda s: -s.size)[:20] + random.Random(0).sample(sent, 80)
    with requests.Session() as session:
        for s in sample:
            raw = session.get(
                f"{server.url}/api/bins/{s.bin_id}/requests/{s.request_id}/raw", timeout=10
            )
            assert hashlib.sha256(raw.content).hexdigest() == s.sha256
    assert "Traceback" not in server.log(), server.log()
    megabytes = sum(s.size for s in sent) / 1e6
    print(
        f"\nload: {TOTAL} sent ({megabytes:.0f} MB) over {CONNECTIONS} connections in "
        f"{elapsed:.1f} s, {len(rows)} stored, 0 lost, 0 duplicated, 0 bodies differing"
    )
