"""A deadline on a whole delivery attempt, not just on each read.

requests' `timeout=` bounds the connect and each single read. A receiver that trickles its
answer (a header byte, then another, each inside the read timeout) would hold a delivery
worker for as long as it liked. Connections of a session passed to `track_connections` tell
the running `AttemptDeadline` which connection they send on; when the deadline passes, it shuts
that connection down, and the blocked read ends at once.
"""

from __future__ import annotations

import socket
import threading

import requests

_current = threading.local()


class AttemptDeadline:
    """`with AttemptDeadline(s):` around one attempt on this thread; `expired` tells if it cut."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.connection = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> AttemptDeadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()
        _current.deadline = None

    def _expire(self) -> None:
        self.expired = True
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: nothing left to cut


class _TrackedConnection:
    """A urllib3 connection that registers itself with this thread's running deadline."""

    def request(self, *args, **kwargs):
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.connection = self
        return super().request(*args, **kwargs)


def track_connections(session: requests.Session) -> requests.Session:
    """Make every connection of `session` (new or reused) answerable to AttemptDeadline."""
    for adapter in {id(a): a for a in session.adapters.values()}.values():
        manager = adapter.poolmanager
        manager.pool_classes_by_scheme = {
            scheme: type(
                pool.__name__,
                (pool,),
                {
                    "ConnectionCls": type(
                        pool.ConnectionCls.__name__,
                        (_TrackedConnection, pool.ConnectionCls),
                        {},
                    )
                },
            )
            for scheme, pool in manager.pool_classes_by_scheme.items()
        }
    return session
