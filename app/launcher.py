"""A Hooklab server in a background thread on a free port (for `hooklab demo` and the fixture)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from hooklab.shared.settings import Settings


class QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request: the demo's output and a test's stay readable."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class LocalServer:
    """A running threaded Werkzeug server with its delivery workers; `stop()` ends both."""

    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread
    temp_dir: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.server_port}"

    @property
    def db(self) -> str:
        return self.app.config["HOOKLAB"].db

    def stop(self) -> None:
        """Stop the workers and the server, and remove the temporary database if there is one."""
        from hooklab.app.factory import stop_background

        if self._stopped:
            return
        self._stopped = True
        stop_background(self.app)
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        self.app.extensions["hooklab.store"].close()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_local_server(
    db: str | Path | None = None, port: int = 0, **overrides: Any
) -> LocalServer:
    """Serve Hooklab on 127.0.0.1:`port` (0: a free one), on `db` or a temporary database.

    The environment's HOOKLAB_* variables are ignored: the server is self-contained.
    """
    from hooklab.app.factory import create_app

    temp_dir = None
    if db is None:
        temp_dir = Path(tempfile.mkdtemp(prefix="hooklab-"))
        db = temp_dir / "hooklab.db"
    settings = Settings({"db": str(db), "host": "127.0.0.1", "port": port, **overrides}, environ={})
    try:
        return serve_app(create_app(settings), port, temp_dir=temp_dir)
    except BaseException:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise


def serve_app(
    app: Flask, port: int = 0, temp_dir: Path | None = None, kind: type[LocalServer] = LocalServer
) -> LocalServer:
    """Serve an app already built on 127.0.0.1:`port` in a daemon thread, with its workers."""
    from hooklab.app.factory import start_background

    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietRequestHandler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="hooklab-server",
        daemon=True,
    )  # fmt: skip
    thread.start()
    start_background(app)
    return kind(app, server, thread, temp_dir)
