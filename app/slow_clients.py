"""Slow clients: gunicorn's threaded serving process with a read deadline on every request.

Gunicorn's gthread process waits up to 5 s for a new connection's first byte without holding a
thread, but once a request has started it reads its headers and body with no time limit: a
client that trickles one byte every few seconds (slowloris) holds a server thread for as long
as it likes, and enough of them hold them all. This class counts the time each request spends
waiting for the client's bytes (headers and body together) and cuts the connection once that
passes `client_timeout_s`. A client still sending its headers gets `408 Request Timeout` first.

Only time spent waiting to read counts: a long poll, a bin's response delay or an open
websocket (which reads its socket directly, not through gunicorn's parser) are not cut.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable

from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import ThreadWorker

from hooklab.app import wire_errors

log = logging.getLogger("hooklab")

_TIMEOUT_BODY = json.dumps(
    {"error": {"code": "request_timeout", "message": "The request took too long to arrive."}}
).encode()
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(_TIMEOUT_BODY)
) + _TIMEOUT_BODY


class ReadClock:
    """How long one request has waited for the client's bytes so far."""

    __slots__ = ("spent", "since", "in_headers", "cut")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A new request on the connection: its budget starts again."""
        self.spent = 0.0
        self.since: float | None = None
        self.in_headers = True
        self.cut = False

    def waited(self, now: float) -> float:
        """Seconds spent waiting to read, counting a read in progress."""
        since = self.since
        return self.spent + (now - since if since is not None else 0.0)


class ReadDeadlineThreads(ThreadWorker):
    """gthread with a per-request read deadline (set `read_timeout_s` on a subclass)."""

    read_timeout_s = 30.0
    # Called (in a thread of its own) when a graceful stop begins (SIGTERM): set by `serve`.
    on_stop: Callable[[], None] | None = None

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        if self.on_stop is not None:
            # Not in the signal handler itself: the callback takes locks.
            threading.Thread(target=self.on_stop, name="hooklab-stop", daemon=True).start()

    def handle_quit(self, sig, frame) -> None:
        """A quick stop (SIGINT, Ctrl-C; SIGQUIT): the base worker's, without gthread's extra.

        gthread's own handler first calls `self.tpool.shutdown()`, here in the signal handler.
        A signal that lands while the main thread is inside `tpool.submit` (it is, whenever a
        connection closes as the stop begins) finds the pool's lock held by the very code it
        interrupted, and waits for it forever (python/cpython#121649): the serving process hung
        until gunicorn killed it 10 s later, and the kill skipped `worker_exit`, which hands
        back claimed deliveries. Leaving the pool alone is safe: the interpreter's exit shuts
        it down and lets what is running finish.

        Only the first quick-stop signal counts. Ctrl-C sends SIGINT to the whole process group,
        and gunicorn's arbiter sends a SIGQUIT of its own right after it: handled again, that
        raised SystemExit a second time, possibly inside `worker_exit` as it handed deliveries
        back.
        """
        if getattr(self, "_quitting", False):
            return
        self._quitting = True
        if self.on_stop is not None:
            # What waits stops waiting, as in a graceful stop: an open live page or `bin tail`
            # (a pool thread in its websocket loop) kept the exit waiting for that thread until
            # gunicorn killed the process 10 s later. Not in the handler itself: it takes locks.
            threading.Thread(target=self.on_stop, name="hooklab-stop", daemon=True).start()
        Worker.handle_quit(self, sig, frame)

    def init_process(self) -> None:
        wire_errors.install()  # gunicorn's own answers (a request it cannot parse) as JSON
        self._watched: dict[int, tuple[object, ReadClock]] = {}
        self._watched_lock = threading.Lock()
        watchdog = threading.Thread(target=self._watch, name="hooklab-read-deadline", daemon=True)
        watchdog.start()
        super().init_process()

    def handle(self, conn):
        clock = getattr(conn, "hooklab_clock", None)
        if clock is None:
            clock = conn.hooklab_clock = ReadClock()
            original_init = conn.init

            def init() -> None:
                original_init()
                _time_reads(conn, clock)

            conn.init = init
        clock.reset()
        with self._watched_lock:
            self._watched[id(conn)] = (conn, clock)
        try:
            return super().handle(conn)
        finally:
            with self._watched_lock:
                self._watched.pop(id(conn), None)

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = honour_connection_close(self.wsgi)

    def handle_request(self, req, conn):
        clock = getattr(conn, "hooklab_clock", None)
        if clock is not None:
            clock.in_headers = False  # from here on the application owns the response
        return super().handle_request(req, conn)

    def _watch(self) -> None:
        interval = min(0.25, self.read_timeout_s / 4)
        while True:
            time.sleep(interval)
            now = time.monotonic()
            with self._watched_lock:
                late = [
                    (conn, clock)
                    for conn, clock in self._watched.values()
                    # Only a request blocked in a read right now: one that got its bytes is
                    # handled (and may be answering), even if they took long to come.
                    if not clock.cut
                    and clock.since is not None
                    and clock.waited(now) > self.read_timeout_s
                ]
            for conn, clock in late:
                clock.cut = True
                _cut(conn, clock, self.read_timeout_s)


def _time_reads(conn, clock: ReadClock) -> None:
    """Wrap the parser's socket reads so the clock counts the time spent waiting in them."""
    unreader = getattr(getattr(conn, "parser", None), "unreader", None)
    if unreader is None or not hasattr(unreader, "sock") or hasattr(unreader, "hooklab_timed"):
        return
    read = unreader.chunk

    def chunk(size_hint=None):
        clock.since = time.monotonic()
        try:
            return read(size_hint)
        finally:
            clock.spent += time.monotonic() - clock.since
            clock.since = None

    unreader.chunk = chunk
    unreader.hooklab_timed = True


def _cut(conn, clock: ReadClock, timeout_s: float) -> None:
    """End a connection whose request is too slow to arrive; its blocked read then sees EOF."""
    sock = conn.sock
    log.warning("cut off a client that took over %.0f s to send its request", timeout_s)
    try:
        if clock.in_headers:
            # No response has started: say why before closing (never blocks this thread).
            sock.send(TIMEOUT_RESPONSE, socket.MSG_DONTWAIT)
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the client went away meanwhile


def honour_connection_close(app):
    """Close the connection after an answer that says `Connection: close`.

    gunicorn drops hop-by-hop headers an application sets and keeps the connection open; to
    reuse it, it would then read and discard the rest of the request body. After a 413 that
    body may be a terabyte: the capture says `Connection: close` so the rest is never read.
    """

    def wsgi(environ, start_response):
        def start(status, headers, exc_info=None):
            if any(n.lower() == "connection" and v.lower() == "close" for n, v in headers):
                force_close = getattr(
                    getattr(start_response, "__self__", None), "force_close", None
                )
                if force_close is not None:
                    force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wsgi


def serving_class(read_timeout_s: float) -> type[ReadDeadlineThreads]:
    """The class of the serving process (gunicorn's `worker_class`), with this read deadline."""
    return type("HooklabServing", (ReadDeadlineThreads,), {"read_timeout_s": float(read_timeout_s)})


def read_deadline_problem() -> str | None:
    """Why the read deadline cannot attach to the installed gunicorn, or None when it can.

    The deadline wraps gunicorn internals (a connection's parser's socket reads); a gunicorn
    that moved them would leave slow clients uncut without a word, so `serve` asks first.
    """
    try:
        from gunicorn.config import Config
        from gunicorn.workers.gthread import TConn

        missing = [
            name
            for name in ("handle", "handle_request", "init_process")
            if not callable(getattr(ThreadWorker, name, None))
        ]
        if missing:
            return f"gunicorn's threaded worker has no {', '.join(missing)}"
        ours, theirs = socket.socketpair()
        try:
            conn = TConn(Config(), ours, ("127.0.0.1", 0), ("127.0.0.1", 0))
            conn.init()
            unreader = getattr(getattr(conn, "parser", None), "unreader", None)
        finally:
            ours.close()
            theirs.close()
        if unreader is None or not hasattr(unreader, "sock"):
            return "gunicorn's connection parser no longer reads through a socket reader"
        if not callable(getattr(unreader, "chunk", None)):
            return "gunicorn's socket reader has no chunk()"
    except Exception as exc:  # any change in gunicorn's internals: say so, keep serving
        return f"gunicorn's internals changed ({type(exc).__name__}: {exc})"
    return None


def read_deadline_notice() -> str | None:
    """The one line `hooklab serve` prints at start when slow clients will not be cut off."""
    problem = read_deadline_problem()
    if problem is None:
        return None
    import gunicorn

    return (
        f"Warning: the read deadline (--client-timeout-s) is off: {problem} "
        f"(gunicorn {gunicorn.__version__}; Hooklab is tested with gunicorn < 28)."
    )
