"""The websocket extension, shared by both halves (`sock.init_app(app)` in the factory).

`whole_frames(ws)`: simple-websocket writes to the socket from two threads, the handler's
(`ws.send`) and its own background thread (pings every `ping_interval`, pongs, the close),
with no lock between them. A frame too big for the socket's buffer is written in pieces while
its reader is slow, and a ping written meanwhile lands inside it: the client's stream is
corrupt from there on (seen with a reader that paused 25 s during a 14 MB replay). Every
handler wraps its socket first, so each write is whole and one at a time.
"""

from __future__ import annotations

import threading

from flask_sock import Sock

sock = Sock()


class _OneWriter:
    """A socket written by one thread at a time, each write whole (`sendall`)."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self._lock = threading.Lock()

    def send(self, data: bytes) -> int:
        with self._lock:
            self._raw.sendall(data)
        return len(data)

    def __getattr__(self, name: str):
        return getattr(self._raw, name)


def whole_frames(ws):
    """`ws` (a simple-websocket Server) with its socket's writes serialized; returns it."""
    if not isinstance(ws.sock, _OneWriter):
        ws.sock = _OneWriter(ws.sock)
    return ws
