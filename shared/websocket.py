"""The websocket routes, shared by both halves: `@sock.route(path, bp=blueprint)`.

`sock` is flask-sock's `Sock`, imported on a route's first websocket rather than when the
server starts: flask-sock brings simple-websocket, wsproto and h11, a fifth of the serving
process's imports (start-up time: docs/benchmarks.md). Each route then runs flask-sock's own
handler, unchanged.

`whole_frames(ws)`: simple-websocket writes to the socket from two threads, the handler's
(`ws.send`) and its own background thread (pings every `ping_interval`, pongs, the close),
with no lock between them. A frame too big for the socket's buffer is written in pieces while
its reader is slow, and a ping written meanwhile lands inside it: the client's stream is
corrupt from there on (seen with a reader that paused 25 s during a 14 MB replay). Every
handler wraps its socket first, so each write is whole and one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint


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
                return made[0](*args, **kwargs)

            bp.route(path, websocket=True, **options)(websocket_route)
            return handler

        return decorator


sock = LazySock()


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
