"""A developer's app for forwarding tests: a real HTTP server on 127.0.0.1 that records requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    """One request as the app received it."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class AppReceiver:
    """Answers every request with `status`, `headers`, `body`; `sleep` first; `hold` blocks."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b'{"ok": true}'
    sleep: float = 0.0
    hold: threading.Event | None = None
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                app.seen.append(Seen(self.command, self.path, list(self.headers.items()), body))
                if app.hold is not None:
                    app.hold.wait(30)
                if app.sleep:
                    time.sleep(app.sleep)
                self.send_response(app.status)
                for name, value in app.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(app.body)))
                self.end_headers()
                self.wfile.write(app.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(check: Callable[[], object], timeout: float = 15.0, what: str = "condition"):
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
