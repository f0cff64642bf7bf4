"""The live pusher: one thread writes a bin's new frames to every caught-up subscriber without
waiting, and hands a subscriber back to its own thread when its socket cannot take a frame.

The feed and pusher run against a real store, with real sockets (socket pairs) as the
subscribers' connections; the served tests use a real server and raw websocket clients.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time

import pytest
import requests
import wsproto.frame_protocol as frame_protocol

from hooklab.bin_server.live import BinFeed, Feeds, Subscriber
from hooklab.shared.notify import Notifier
from hooklab.shared.websocket import Sent, text_frame, whole_frames

from .conftest import make_settings, start_live_server
from .test_websocket_writes import FakeServer
from .waiting import wait_for


def split_frames(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The whole unmasked frames at the start of `data`, as (first byte, payload), and the
    bytes of a frame still coming."""
    frames, at = [], 0
    while len(data) - at >= 2:
        assert data[at + 1] & 0x80 == 0, "a server's frame is never masked"
        size, head = data[at + 1] & 0x7F, 2
        if size >= 126:
            head = 4 if size == 126 else 10
            if len(data) - at < head:
                break
            size = int.from_bytes(data[at + 2 : at + head], "big")
        if len(data) - at < head + size:
            break
        frames.append((data[at], data[at + head : at + head + size]))
        at += head + size
    return frames, data[at:]


def parse_frames(data: bytes) -> list[str]:
    """Whole text frames from a server, in order; fails on anything else."""
    frames, rest = split_frames(data)
    assert rest == b"", "a frame cut short"
    assert all(first == 0x81 for first, _ in frames), "not a whole text frame"
    return [payload.decode() for _, payload in frames]


def read_all(reader: socket.socket, quiet_s: float = 0.3) -> bytes:
    """Everything the reader has, until nothing more comes for quiet_s."""
    reader.settimeout(quiet_s)
    data = b""
    try:
        while chunk := reader.recv(1 << 20):
            data += chunk
    except TimeoutError:
        pass
    return data


def ids_of(texts: list[str]) -> list[int]:
    return [json.loads(text)["request"]["id"] for text in texts]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_shared_frame_is_byte_for_byte_what_the_websocket_library_writes(size):
    text = ("é" * size)[: max(0, size // 2)] + "x" * (size - size // 2)
    server = frame_protocol.FrameProtocol(client=False, extensions=[])
    assert text_frame(text) == server.send_data(text, fin=True)


def test_try_send_writes_what_fits_and_keeps_the_rest_for_the_next_write():
    writer, reader = socket.socketpair()
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ws = whole_frames(FakeServer(writer), 30)
    assert ws.sock.can_try
    assert ws.sock.try_send(b"small") is Sent.WHOLE
    big = os.urandom(1 << 20)  # far more than both buffers hold
    assert ws.sock.try_send(big) is Sent.PART
    assert ws.sock.try_send(b"after") is Sent.NOTHING  # bytes are kept: nothing jumps them
    received = []
    drain = threading.Thread(target=lambda: received.append(read_all(reader, 1.0)))
    drain.start()
    ws.sock.send(b"next")  # a blocking write sends what was kept first
    drain.join(10)
    assert received == [b"small" + big + b"next"]
    writer.close()
    reader.close()


def test_try_send_never_waits_for_another_writer_or_on_a_socket_with_a_timeout():
    writer, reader = socket.socketpair()
    ws = whole_frames(FakeServer(writer), 30)
    with ws.sock._lock:  # a ping being written by simple-websocket's thread
        assert ws.sock.try_send(b"frame") is Sent.NOTHING
    writer.settimeout(5)
    assert not whole_frames(FakeServer(writer), 30).sock.can_try
    writer.close()
    reader.close()
    assert ws.sock.try_send(b"frame") is Sent.NOTHING  # closed: its own thread finds out


@pytest.fixture
def bin_id(client) -> str:
    return client.post("/api/bins", json={}).get_json()["id"]


@pytest.fixture
def sockets():
    """Sockets a test opens, closed after it."""
    opened: list[socket.socket] = []
    yield opened
    for conn in opened:
        conn.close()


@pytest.fixture
def feeds(app) -> Feeds:
    store = app.extensions["hooklab.store"]
    return Feeds(store, Notifier(), threading.Event())


def capture(client, bin_id: str, pad: int = 0) -> int:
    headers = {"X-Pad": "p" * pad} if pad else {}
    response = client.post(f"/b/{bin_id}", data="{}", headers=headers)
    assert response.status_code == 200
    return int(response.headers["X-Hooklab-Request-Id"])


def subscribe(feed: BinFeed, store, sockets: list, sndbuf: int | None = None):
    """A caught-up subscriber on a socket pair, handed to the pusher; returns it and its reader."""
    writer, reader = socket.socketpair()
    sockets += [writer, reader]
    if sndbuf:
        writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sndbuf)
    ws = whole_frames(FakeServer(writer), 30)
    bin_row, frames = feed.poll(store, 0, seen=0)
    sub = Subscriber(ws, frames[-1][0] if frames else feed.high, bin_row["cleared_at"])
    assert feed.hand_to_pusher(sub)
    return sub, reader


def test_one_write_of_each_new_frame_reaches_every_caught_up_subscriber(
    app, client, bin_id, feeds, sockets
):
    store = app.extensions["hooklab.store"]
    feed = feeds.join(bin_id, "http://localhost/", True)
    first = capture(client, bin_id)
    subs = [subscribe(feed, store, sockets) for _ in range(3)]
    assert all(sub.after == first for sub, _ in subs)
    new = [capture(client, bin_id) for _ in range(5)]
    assert feeds.pusher._push(feed, seen=1) is False  # nothing more to read
    for sub, reader in subs:
        assert sub.pushed and sub.after == new[-1]
        assert ids_of(parse_frames(read_all(reader))) == new


def test_a_slow_reader_is_handed_back_and_loses_nothing_while_the_others_go_on(
    app, client, bin_id, feeds, sockets
):
    store = app.extensions["hooklab.store"]
    feed = feeds.join(bin_id, "http://localhost/", True)
    fast, fast_reader = subscribe(feed, store, sockets)
    slow, slow_reader = subscribe(feed, store, sockets, sndbuf=4096)
    sent, seen = [], 0
    # Frames of ~6 KB: the slow socket's buffers fill within a few, and it never reads.
    while slow.pushed:
        assert len(sent) < 200, "the slow subscriber was never handed back"
        sent.append(capture(client, bin_id, pad=6000))
        seen += 1
        feeds.pusher._push(feed, seen)
        assert fast.pushed and fast.after == sent[-1]
    assert slow.wake.is_set() and slow not in feed.pushed
    later = [capture(client, bin_id, pad=6000) for _ in range(3)]
    feeds.pusher._push(feed, seen + 1)
    assert ids_of(parse_frames(read_all(fast_reader))) == sent + later  # never held up
    # The slow subscriber's own thread: what was kept first, then the frames after its cursor.
    received = []
    drain = threading.Thread(target=lambda: received.append(read_all(slow_reader, 1.0)))
    drain.start()
    slow.ws.sock.flush()
    _, frames = feed.poll(store, slow.after, seen + 1)
    for _, text in frames:
        slow.ws.sock.send(text_frame(text))
    drain.join(10)
    assert ids_of(parse_frames(received[0])) == sent + later  # every frame once, in order


def test_a_cleared_bin_or_a_stopping_server_hands_every_subscriber_back(
    app, client, bin_id, feeds, sockets
):
    store = app.extensions["hooklab.store"]
    feed = feeds.join(bin_id, "http://localhost/", True)
    capture(client, bin_id)
    sub, _ = subscribe(feed, store, sockets)
    assert client.delete(f"/api/bins/{bin_id}/requests").status_code in (200, 204)
    feeds.pusher._push(feed, seen=1)
    assert not sub.pushed and sub.wake.is_set()
    other, _ = subscribe(feed, store, sockets)
    feed.push(store, 2, stopping=True)
    assert not other.pushed and other.wake.is_set()


def handshake(
    port: int, bin_id: str, extensions: str | None = None, rcvbuf: int | None = None
) -> tuple[socket.socket, bytes]:
    """A raw websocket handshake on /ws/bins/<bin_id>; returns the socket and the 101's head."""
    conn = socket.socket()
    if rcvbuf:  # before connecting, so the window is set from the start
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    conn.settimeout(5)
    conn.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET /ws/bins/{bin_id} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(1)
        assert chunk, "the server closed the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return conn, head


def test_a_browsers_compression_offer_is_declined_and_frames_come_plain(live_server):
    """Browsers offer permessage-deflate; Hooklab answers without it, so every subscriber
    gets the same plain frames (and the server compresses nothing over loopback)."""
    bin_row = live_server.create_bin(name="plain")
    conn, head = handshake(
        live_server.port, bin_row["id"], "permessage-deflate; client_max_window_bits"
    )
    assert b"sec-websocket-extensions" not in head.lower()
    response = requests.post(f"{live_server.url}/b/{bin_row['id']}", data="x" * 500, timeout=5)
    rid = int(response.headers["X-Hooklab-Request-Id"])
    texts = parse_frames(read_all(conn, 1.0))
    assert ids_of(texts) == [rid]
    conn.close()


class FrameReader:
    """Reads whole text frames from a raw websocket as they come (each parsed once)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.pending = b""
        self.found: list[int] = []

    def ids(self, count: int, timeout: float = 10.0) -> list[int]:
        """The ids of the first `count` request frames, waiting up to `timeout` for them."""
        deadline = time.monotonic() + timeout
        while len(self.found) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"only {len(self.found)} of {count} frames came in {timeout} s"
            self.conn.settimeout(left)
            try:
                chunk = self.conn.recv(1 << 20)
            except TimeoutError:
                continue  # the assertion above says how far it got
            assert chunk, f"the server closed the stream after {len(self.found)} frames"
            self.pending += chunk
            self._take_whole_frames()
        return self.found[:count]

    def _take_whole_frames(self) -> None:
        frames, self.pending = split_frames(self.pending)
        for first, payload in frames:
            if first == 0x89:  # the server's ping (every 20 s): answer it, as a client must
                self.conn.sendall(pong(payload))
            else:
                assert first == 0x81, "not a whole text frame"
                self.found += ids_of([payload.decode()])


def pong(payload: bytes) -> bytes:
    """A client's pong frame (masked, as RFC 6455 requires of a client) for a short ping."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes((0x8A, 0x80 | len(payload))) + mask + masked


def test_a_reader_that_stops_reading_does_not_hold_up_the_others(live_server, sockets):
    """Served: one subscriber reads nothing while ~6 MB of frames come, more than its socket's
    buffers hold (the server's send buffer grows to 4 MB at most, its receive buffer is set to
    128 KB; smaller than two 64 KB loopback segments, the kernel would stall the stream by
    itself); another gets each frame as it comes; then the first reads and gets every frame
    once, in order."""
    bin_id = live_server.create_bin(name="slow and fast")["id"]
    stalled, _ = handshake(live_server.port, bin_id, rcvbuf=128 * 1024)
    fast_conn, _ = handshake(live_server.port, bin_id)
    sockets += [stalled, fast_conn]
    fast = FrameReader(fast_conn)
    sent = []
    with requests.Session() as session:
        for _ in range(110):  # frames of 60 KB: four headers of 15,000 bytes
            pads = {f"X-Pad-{n}": "p" * 15000 for n in range(4)}
            response = session.post(f"{live_server.url}/b/{bin_id}", headers=pads, timeout=10)
            sent.append(int(response.headers["X-Hooklab-Request-Id"]))
            assert fast.ids(len(sent)) == sent  # within seconds: nobody holds it up
    assert FrameReader(stalled).ids(len(sent), timeout=30) == sent
    assert read_all(stalled, 0.5) == b""  # nothing twice


def test_the_werkzeug_fallback_serves_the_live_stream_through_the_pusher(app):
    """Where gunicorn is missing `hooklab serve` runs werkzeug's threaded server: the websocket
    route (flask-sock, imported on first use) works there, and caught-up subscribers are
    written by the pusher (werkzeug's sockets are plain blocking ones)."""
    from werkzeug.serving import make_server

    from hooklab.client.http import LiveSocket

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"127.0.0.1:{server.server_port}"
    try:
        bin_id = requests.post(f"http://{base}/api/bins", json={}, timeout=5).json()["id"]
        subscribers = [LiveSocket.connect(f"ws://{base}/ws/bins/{bin_id}") for _ in range(2)]
        try:
            store = app.extensions["hooklab.store"]

            def handed_over():  # both, once they have every frame (none yet)
                feeds = store._attached.get("live_feeds")  # made by the route: only looked at
                if feeds is None:
                    return None
                found = [f for f in list(feeds._feeds.values()) if f.bin_id == bin_id]
                return found[0] if found and len(found[0].pushed) == 2 else None

            feed = wait_for(handed_over, what="both subscribers handed to the pusher")
            ids = [
                int(
                    requests.post(f"http://{base}/b/{bin_id}", data=str(n), timeout=5).headers[
                        "X-Hooklab-Request-Id"
                    ]
                )
                for n in range(3)
            ]
            for ws in subscribers:
                got = [json.loads(ws.receive(timeout=5))["request"]["id"] for _ in ids]
                assert got == ids
            assert len(feed.pushed) == 2  # still the pusher's: every frame went out whole
        finally:
            for ws in subscribers:
                ws.close()
    finally:
        server.shutdown()
        thread.join(5)


def test_a_reader_that_takes_nothing_for_the_client_timeout_is_cut_off(tmp_path):
    """Served, `client_timeout_s` 1: a subscriber that reads nothing (a `bin tail` suspended
    with Ctrl-Z) while frames wait for it is cut off once it has taken no byte for 1 s, and
    its place among the waiting connections is free again. Before, its thread waited for it
    for ever (and simple-websocket's close after a missed pong waited behind it)."""
    live = start_live_server(make_settings(tmp_path, client_timeout_s=1.0))
    health = f"{live.url}/api/health"
    try:
        bin_id = live.create_bin(name="stalled")["id"]
        stalled, _ = handshake(live.port, bin_id, rcvbuf=128 * 1024)

        def waiting() -> int:
            return requests.get(health, timeout=5).json()["waiting"]["connections"]

        wait_for(lambda: waiting() == 1, what="the live connection to be counted")
        with requests.Session() as session:
            for _ in range(110):  # ~6.6 MB of frames: more than the sockets' buffers hold
                pads = {f"X-Pad-{n}": "p" * 15000 for n in range(4)}
                assert session.post(f"{live.url}/b/{bin_id}", headers=pads, timeout=10).ok
        wait_for(lambda: waiting() == 0, timeout=30, what="the stalled reader to be cut off")
        # It gets what was in the buffers, then the end of the stream: not every frame.
        stalled.settimeout(10)
        received = b""
        while chunk := stalled.recv(1 << 20):
            received += chunk
        whole, _ = split_frames(received)
        assert 0 < len(whole) < 110
        stalled.close()
    finally:
        live.kill()
