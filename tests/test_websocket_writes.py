"""A websocket's socket is written by two threads (the handler's frames, simple-websocket's
pings): `whole_frames` keeps each write whole, never one inside another."""

from __future__ import annotations

import socket
import threading

from hooklab.shared.websocket import whole_frames


class FakeServer:
    """What whole_frames needs of a simple-websocket Server: its `sock`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


def drain(reader: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += reader.recv(1 << 20)
    return data


def test_a_small_write_waits_for_a_big_one_stalled_by_a_slow_reader():
    writer_end, reader = socket.socketpair()
    ws = whole_frames(FakeServer(writer_end), 30)
    assert whole_frames(ws, 30) is ws and ws.sock is whole_frames(ws, 30).sock  # wrapped once
    big = b"A" * (4 * 1024 * 1024)  # far more than the socket's buffer: written in pieces
    frame = threading.Thread(target=ws.sock.send, args=(big,))
    frame.start()
    # The reader has not read yet: the big write is stuck partway. A ping comes meanwhile.
    pinged = threading.Event()
    ping = threading.Thread(target=lambda: (ws.sock.send(b"\x89\x00"), pinged.set()))
    ping.start()
    assert not pinged.wait(0.3), "the ping was written while the frame was half written"
    data = drain(reader, len(big) + 2)
    frame.join(5)
    ping.join(5)
    assert data == big + b"\x89\x00"
    assert ws.sock.fileno() == writer_end.fileno()  # everything else is the socket's own
    writer_end.close()
    reader.close()
