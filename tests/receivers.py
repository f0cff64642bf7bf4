"""Webhook receivers written for the tests, each a real HTTP server on 127.0.0.1.

- `correct`: checks with the official `standardwebhooks` package (signature and timestamp).
- `accepts_everything`: answers 200 to anything.
- `signature_only`: checks the signature but not the timestamp (replays get through).
- `redirecting`: answers 302 to everything; `hanging`: reads the request and never answers.

Each records what it received, so a test can check the signatures itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

from hooklab.shared.signing import verify

# (body, headers) -> status code
Judge = Callable[[bytes, dict[str, str]], int]


@dataclass
class Received:
    """One request a receiver got."""

    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """A running receiver: its URL and what it received."""

    url: str
    received: list[Received] = field(default_factory=list)


def correct(secret: str) -> Judge:
    """A receiver that follows the rules, built on the official standardwebhooks package."""
    webhook = Webhook(secret)

    def judge(body: bytes, headers: dict[str, str]) -> int:
        try:
            webhook.verify(body, headers)
        except WebhookVerificationError:
            return 400
        return 204

    return judge


def accepts_everything(body: bytes, headers: dict[str, str]) -> int:
    """A receiver that checks nothing."""
    return 200


def signature_only(secret: str) -> Judge:
    """A receiver that checks the signature but never the timestamp."""

    def judge(body: bytes, headers: dict[str, str]) -> int:
        valid, _ = verify(secret, headers, body)  # no arrival time: the HMAC alone
        return 200 if valid else 401

    return judge


def redirecting(body: bytes, headers: dict[str, str]) -> int:
    """A receiver that moved: 302 to everything."""
    return 302


@contextmanager
def serve(judge: Judge | None, path: str = "/hook", port: int = 0) -> Iterator[Receiver]:
    """Run a receiver on 127.0.0.1 (a free port by default); `judge` None hangs until the end."""
    release = threading.Event()
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {name: value for name, value in self.headers.items()}
            receiver.received.append(Received(body, headers))
            if judge is None:
                release.wait(30)  # a receiver that never answers (until the test ends)
                return
            status = judge(body, headers)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield receiver
    finally:
        release.set()
        server.shutdown()
        server.server_close()
