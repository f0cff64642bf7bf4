"""The websocket routes, shared by both halves: `@sock.route(path, bp=blueprint)`.

`sock` is flask-sock's `Sock`, imported on a route's first websocket rather than when the
server starts: flask-sock brings simple-websocket, wsproto and h11, a fifth of the serving
process's imports (start-up time: docs/benchmarks.md). Each route then runs flask-sock's own
handler, unchanged, with one thing taken out of the handshake: the client's offer of
`permessage-deflate` (browsers always make it). Over loopback, compressing every frame for
every open page costs CPU and saves nothing, and an uncompressed frame is the same bytes for
every subscriber, so a live feed can encode it once (`text_frame`).

`whole_frames(ws)`: simple-websocket writes to the socket from two threads, the handler's
(`ws.send`) and its own background thread (pings every `ping_interval`, pongs, the close),
with no lock between them. A frame too big for the socket's buffer is written in pieces while
its reader is slow, and a ping written meanwhile lands inside it: the client's stream is
corrupt from there on (seen with a reader that paused 25 s during a 14 MB replay). Every
handler wraps its socket first, so each write is whole and one at a time. The wrapped socket
can also be written without waiting (`try_send`), by a thread that must not be held up by
one slow reader: what the socket's buffer cannot take is kept, and goes out first with the
socket's next write (`flush`).
"""

from __future__ import annotations

import errno
import select
import socket
import struct
import threading
from collections.abc import Callable
from enum import Enum
from functools import wraps
from typing import Any

from flask import Blueprint, request


class _Catch:
    """Stands in for the blueprint flask-sock registers a route on, to keep the view instead."""

    view: Callable[..., Any]

    def route(self, path: str, **options: Any) -> Callable:
        def keep(view: Callable[..., Any]) -> Callable[..., Any]:
            self.view = view
            return view

        return keep


class LazySock:
    """flask-sock's `Sock.route`, with flask-sock imported on the route's first websocket."""

    def route(self, path: str, bp: Blueprint, **options: Any) -> Callable:
        """Register `handler(ws, **url_values)` as the websocket route `path` of `bp`."""

        def decorator(handler: Callable[..., None]) -> Callable[..., None]:
            made: list[Callable[..., Any]] = []

            @wraps(handler)
            def websocket_route(*args: Any, **kwargs: Any) -> Any:
                if not made:  # two first sockets at once both make it: the same view
                    from flask_sock import Sock

                    catch = _Catch()
                    Sock().route(path, bp=catch, **options)(handler)
                    made.append(catch.view)
                # No extension is negotiated: every frame goes out as plain bytes (above).
                request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
                return made[0](*args, **kwargs)

            bp.route(path, websocket=True, **options)(websocket_route)
            return handler

        return decorator


sock = LazySock()


def text_frame(text: str) -> bytes:
    """`text` as one whole websocket text frame from a server (RFC 6455 5.2: FIN, opcode 1,
    no mask, no extension): what simple-websocket's `send(text)` writes, made once for any
    number of sockets."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + payload


class Sent(Enum):
    """What `try_send` did."""

    WHOLE = "whole"  # every byte is in the socket's buffer
    PART = "part"  # the rest is kept for the next write (or `flush`)
    NOTHING = "nothing"  # another write was under way, bytes were kept, or the socket failed


class _OneWriter:
    """A socket written by one thread at a time, each write whole.

    A reader that takes no byte for `stall_s` while a write waits (a `hooklab bin tail`
    suspended with Ctrl-Z, a client that stopped reading) is cut off: the socket is shut
    down and the write raises BrokenPipeError, as for a reader that went away. Otherwise
    the handler's thread, and simple-websocket's (its close after a missed pong waits for
    this lock), would wait for it for ever, holding a place of the live connections.
    """

    def __init__(self, raw, stall_s: float) -> None:
        self._raw = raw
        self._lock = threading.Lock()
        self._kept = b""  # what `try_send` could not write; goes out before anything else
        self.stall_s = stall_s
        # Writing without waiting needs a plain blocking socket (gunicorn's and werkzeug's):
        # one with a timeout would first wait for room, and TLS takes no send flags.
        self.can_try = type(raw) is socket.socket and raw.gettimeout() is None

    def send(self, data: bytes) -> int:
        with self._lock:
            if self._kept:
                self._write(self._kept)
                self._kept = b""
            self._write(data)
        return len(data)

    def flush(self) -> None:
        """Write what `try_send` kept, waiting for the reader (up to `stall_s` without a byte)."""
        if self._kept:
            self.send(b"")

    def _write(self, data: bytes) -> None:
        if not self.can_try:  # a socket with its own timeout, or TLS: as it writes
            self._raw.sendall(data)
            return
        view = memoryview(data)
        while view:
            try:
                view = view[self._raw.send(view, socket.MSG_DONTWAIT) :]
                continue
            except BlockingIOError:
                pass
            room = select.poll()  # not select(): a busy server's descriptors pass 1024
            room.register(self._raw, select.POLLOUT)
            if not room.poll(self.stall_s * 1000):
                try:
                    self._raw.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                raise BrokenPipeError(
                    errno.EPIPE, f"the reader took nothing for {self.stall_s:g} s: cut off"
                )

    def try_send(self, data: bytes) -> Sent:
        """Write `data` without waiting for the reader or for another writer."""
        if not self.can_try or not self._lock.acquire(blocking=False):
            return Sent.NOTHING
        try:
            if self._kept:
                return Sent.NOTHING
            try:
                sent = self._raw.send(data, socket.MSG_DONTWAIT)
            except OSError:  # full (BlockingIOError), or gone: the handler's thread finds out
                return Sent.NOTHING
            if sent < len(data):
                self._kept = data[sent:]
                return Sent.PART
            return Sent.WHOLE
        finally:
            self._lock.release()

    def __getattr__(self, name: str):
        return getattr(self._raw, name)


def whole_frames(ws, stall_s: float):
    """`ws` (a simple-websocket Server) with its socket's writes serialized; returns it.

    A reader that takes nothing for `stall_s` while a frame waits is cut off (`_OneWriter`).
    """
    if not isinstance(ws.sock, _OneWriter):
        ws.sock = _OneWriter(ws.sock, stall_s)
    return ws
