"""Run the app under gunicorn: one serving process with many threads, and its guards.

`serve(settings)` is the one server of Hooklab: `hooklab serve` runs it in the foreground, and
`app/launcher.py` runs it in a child process for the tests, the pytest fixture, the demo and
the benchmarks, so every one of them gets the same header handling and read deadline.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from hooklab.shared.settings import Settings

log = logging.getLogger("hooklab")


def host_port(host: str, port: int) -> str:
    """`host:port` as a URL and gunicorn's bind write it: an IPv6 address in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def banner(settings: Settings) -> str:
    """The line printed when the server starts."""
    return (
        f"Hooklab on http://{host_port(settings.host, settings.port)}/  "
        f"(database {settings.db}, {settings.threads} threads)"
    )


def listen_problem(host: str, port: int, exc: OSError, pick: str = "pick another --port") -> str:
    """Why the server cannot listen on host:port, in one line (`pick`: how to choose another
    port where the caller gives it)."""
    where = f"cannot listen on {host_port(host, port)}"
    if exc.errno == errno.EADDRINUSE:
        return f"{where}: the address is in use (is `hooklab serve` already running? {pick})"
    # create_server adds "(while attempting to bind …)" to strerror: show the plain reason.
    plain = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)
    return f"{where}: {plain}"


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: a free port), as gunicorn would bind it; OSError if
    it cannot be bound."""
    host = host.strip("[]")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, _, _, _, address = infos[0]
    return socket.create_server(address, family=family, backlog=2048)


def gunicorn_config(settings: Settings, listen_fd: int | None = None) -> dict:
    """The gunicorn settings of `hooklab serve` (bench/ serves its contenders with the same).

    `listen_fd`: a socket already bound by the parent (app/launcher.py), served as `fd://N`.
    """
    from hooklab.app.slow_clients import serving_class  # imports gunicorn (POSIX only)

    bind = f"fd://{listen_fd}" if listen_fd is not None else host_port(settings.host, settings.port)
    return {
        "bind": bind,
        "workers": 1,  # several processes would not share the live notifier
        # gthread with a read deadline per request, so slow clients cannot hold threads.
        "worker_class": serving_class(settings.client_timeout_s),
        "threads": settings.threads,
        # A bin captures any method that is an HTTP token ("x-custom", "M-SEARCH#1"), not only
        # the upper-case ones gunicorn lets through by default.
        "permit_unconventional_http_method": True,
        # What a request's head may hold before gunicorn refuses it (414/431, a JSON error:
        # app/wire_errors.py): settings, so a bin takes long callback URLs and big cookies.
        "limit_request_line": settings.max_request_line,
        "limit_request_fields": settings.max_header_count,
        # gunicorn counts a header line with its CRLF; the setting counts name and value.
        "limit_request_field_size": settings.max_header_bytes + 2,
        "keepalive": 5,
        "timeout": 60,
        # Time to stop (after SIGTERM or Ctrl-C) before gunicorn kills the serving process:
        # enough for the delivery workers' stop (sender/delivery.py, 5 s at most).
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
    }


def run_gunicorn(
    load: Callable[[], Any],
    config: dict,
    post_worker_init: Callable[[Any], None] | None = None,
    worker_exit: Callable[[Any, Any], None] | None = None,
) -> None:
    """Serve the WSGI app that `load()` builds inside the serving process, until stopped."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in config.items():
                self.cfg.set(key, value)
            if post_worker_init is not None:
                self.cfg.set("post_worker_init", post_worker_init)
            if worker_exit is not None:
                self.cfg.set("worker_exit", worker_exit)

        def load(self):
            # Built inside the serving process, so threads started later survive the fork.
            return load()

    Server().run()


def serve(settings: Settings, listen_fd: int | None = None) -> None:
    """Serve Hooklab until interrupted (gunicorn; Werkzeug only where gunicorn cannot run)."""
    from hooklab.app.factory import begin_stop, create_app, start_background, stop_background

    try:
        import fcntl  # noqa: F401  (gunicorn needs a POSIX system)
    except ImportError:  # pragma: no cover - Windows
        _serve_werkzeug(settings)
        return
    listener = None
    if listen_fd is None and settings.port == 0:
        # A free port: bound here, so the banner (and this server's idea of its own address)
        # names the port it got, not 0. gunicorn serves the socket as it does the launcher's
        # (`listener` stays referenced while it serves: the socket closes when collected).
        listener = bind_listener(settings.host, 0)
        settings = settings.replace(port=listener.getsockname()[1])
        listen_fd = listener.fileno()
    config = gunicorn_config(settings, listen_fd)
    print(banner(settings), flush=True)
    if _served_elsewhere(settings.db):
        print(
            f"Warning: another `hooklab serve` is using {settings.db}. Each server counts its "
            "bins' response rules on its own (a rule for the first N requests answers up to N "
            "times on each), and both send webhook deliveries; to send deliveries faster, add "
            "`hooklab worker` to one server instead.",
            file=sys.stderr,
            flush=True,
        )
    from hooklab.app.slow_clients import read_deadline_notice

    if notice := read_deadline_notice():
        print(notice, flush=True)
    built = []  # the app of the serving process, for its background threads

    def load():
        built.append(create_app(settings))
        return built[-1]

    def stopping() -> None:
        if built:
            begin_stop(built[-1])

    # A graceful stop (SIGTERM) first ends what waits (long polls, delayed answers, live
    # pages), so each gets its answer within gunicorn's graceful time.
    config["worker_class"].on_stop = staticmethod(stopping)

    def stop(server: Any, serving: Any) -> None:
        # The serving process ends (SIGTERM, Ctrl-C): attempts in flight may finish, claimed
        # deliveries not sent yet are handed back, outcomes are written; else a stop would
        # leave them as a kill -9 does (sent again once their claims lapse).
        if built:
            stop_background(built[-1])

    def ready(serving: Any) -> None:
        start_background(built[-1])
        freeze_startup_objects()

    run_gunicorn(load, config, ready, stop)


def freeze_startup_objects() -> None:
    """Leave what the start made (imported modules, the app) out of later garbage collections.

    Python's full collection walks every container object the process holds: in the serving
    process about 50,000 of them, almost all from imports, at 40-70 ms a time in which no
    thread runs. One landed in a test now and then, inside a capture or a long poll's answer
    (docs/benchmarks.md, the fixture). Frozen, a full collection walks only what was made
    since. Objects frozen are never freed, so this runs once, right after the start.
    """
    gc.freeze()


def _served_elsewhere(db: str) -> bool:
    """Whether another `hooklab serve` serves `db`; if not, this process marks it as served.

    The mark is an advisory lock (flock) on the database file itself, on a descriptor left open
    for the server's life (gunicorn's processes inherit it; the lock goes with the last of
    them). flock and the POSIX locks SQLite takes do not meet on Linux; elsewhere (BSD, macOS)
    they may, so there is no mark and no warning. A file that cannot be opened is the store's
    to report.
    """
    import fcntl

    if not sys.platform.startswith("linux"):
        return False
    try:
        fd = os.open(db, os.O_RDONLY | os.O_CREAT, 0o644)  # an empty file is a new database
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:  # held elsewhere, or a file system without flock
        os.close(fd)
        return isinstance(exc, BlockingIOError)
    return False


def _serve_werkzeug(settings: Settings) -> None:  # pragma: no cover - Windows
    from werkzeug.serving import make_server

    from hooklab.app.factory import create_app, start_background

    app = create_app(settings)
    server = make_server(settings.host, settings.port, app, threaded=True)
    start_background(app)
    freeze_startup_objects()
    print(banner(settings.replace(port=server.server_port)), flush=True)  # (--port 0: its port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


def run_workers(settings: Settings) -> None:
    """`hooklab worker`: delivery workers alone on the database, until Ctrl-C."""
    from hooklab.app.factory import open_store
    from hooklab.sender.worker import run_worker

    run_worker(open_store(settings.db), settings)
