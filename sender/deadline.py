"""A deadline on a whole delivery attempt, not just on each read.

requests' `timeout=` bounds the connect and each single read. A receiver that trickles its
answer (a header byte, then another, each inside the read timeout) would hold a delivery
worker for as long as it liked. Connections of a session passed to `track_connections` tell
the running `AttemptDeadline` which connection they send on; when the deadline passes, it shuts
that connection down, and the blocked read ends at once. A name lookup cannot be cut that
way: inside the deadline it runs in a helper thread the attempt stops waiting for
(`hooklab.shared.targets.lookup`).
"""

from __future__ import annotations

import socket
import threading
import time

import requests
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError

from hooklab.shared.targets import connect_to_each, is_address, lookup, resolution_deadline

_current = threading.local()


class AttemptDeadline:
    """`with AttemptDeadline(s, watchdog):` around one attempt on this thread.

    `expired` tells if it cut.
    """

    def __init__(self, seconds: float, watchdog: Watchdog) -> None:
        self.seconds = seconds
        self.watchdog = watchdog
        self.expired = False
        self.connection = None
        self.ends_at = 0.0
        self._lookups = None

    def __enter__(self) -> AttemptDeadline:
        _current.deadline = self
        self.ends_at = time.monotonic() + self.seconds
        self.watchdog.watch(self, self.ends_at)
        self._lookups = resolution_deadline(self.ends_at)
        self._lookups.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._lookups.__exit__(*exc_info)
        self.watchdog.forget(self)
        _current.deadline = None

    def _expire(self) -> None:
        self.expired = True
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: nothing left to cut


class Watchdog:
    """One thread for every running deadline of an app (`Store.attached("deadlines", ...)`).

    A timer thread per attempt cost a thread start per delivery: 16 workers spent a fifth of
    their time in Thread.start (docs/benchmarks.md). Entering and leaving a deadline is now a
    dict operation under a lock; the thread starts on first use and sleeps until the
    earliest deadline (or until a nearer one is added).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[AttemptDeadline, float] = {}
        self._thread: threading.Thread | None = None

    def watch(self, deadline: AttemptDeadline, at: float) -> None:
        with self._cond:
            nearest = min(self._due.values(), default=None)
            self._due[deadline] = at
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="hooklab-attempt-deadlines", daemon=True
                )
                self._thread.start()
            elif nearest is None or at < nearest:
                self._cond.notify()

    def forget(self, deadline: AttemptDeadline) -> None:
        with self._cond:
            self._due.pop(deadline, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for deadline, at in list(self._due.items()):
                    if at <= now:
                        del self._due[deadline]
                        deadline._expire()
                nearest = min(self._due.values(), default=None)
                # Idle: wake now and then anyway, so the loop stays cheap and bounded.
                self._cond.wait(60.0 if nearest is None else max(0.0, nearest - now))


class _TrackedConnection:
    """A urllib3 connection that registers itself with this thread's running deadline."""

    def _new_conn(self):
        name = self._dns_host
        if getattr(_current, "deadline", None) is None or is_address(name):
            return super()._new_conn()
        # Look the name up here, within the deadline, then connect to what it gave.
        try:
            infos = lookup(name, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, str(exc)) from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise NameResolutionError(self.host, self, socket.gaierror(f"{name} has no address"))
        return connect_to_each(self, addresses, super()._new_conn)

    def request(self, *args, **kwargs):
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.connection = self
        return super().request(*args, **kwargs)


def track_connections(session: requests.Session, watchdog: Watchdog) -> requests.Session:
    """Make every connection of `session` (new or reused) answerable to AttemptDeadline."""
    session.hooklab_watchdog = watchdog  # the deadlines of perform() on this session
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
