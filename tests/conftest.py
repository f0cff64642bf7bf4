"""Fixtures shared by every test: settings on a temporary database, the app, a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask

from hooklab.shared.app import create_app
from hooklab.shared.local_server import LocalServer, serve_app
from hooklab.shared.settings import Settings

# A separate project with its own tests, run by tests/test_pytest_plugin.py in a subprocess.
collect_ignore = ["ci_user_project"]

# Short retry schedule so delivery tests run in seconds, not minutes.
TEST_SETTINGS = {"retry_schedule": "0.2,0.4,0.8", "retry_jitter": 0.0}


def make_settings(tmp_path, **overrides) -> Settings:
    """Settings on a database in `tmp_path`, ignoring any HOOKLAB_* in the environment."""
    values = {"db": str(tmp_path / "hooklab.db"), **TEST_SETTINGS, **overrides}
    return Settings(values, environ={})


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def app(settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


class LiveServer(LocalServer):
    """A real threaded HTTP server on a free port of 127.0.0.1, serving the test's `app`."""

    def create_bin(self, **fields) -> dict:
        """Create a bin through the API; returns its JSON."""
        response = requests.post(f"{self.url}/api/bins", json=fields, timeout=5)
        response.raise_for_status()
        return response.json()


def start_live_server(app: Flask) -> LiveServer:
    """Serve `app` on a free port in a daemon thread, with its delivery workers running."""
    return serve_app(app, kind=LiveServer)


@pytest.fixture
def live_server(app) -> Iterator[LiveServer]:
    live = start_live_server(app)
    yield live
    live.stop()


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServedProcess:
    """`hooklab serve` (gunicorn) running as a child process."""

    process: subprocess.Popen
    url: str
    db: str
    log: Path

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_serve(db: str, *args: str, env: dict | None = None, wait_s: float = 15) -> ServedProcess:
    """Start `hooklab serve` on a free port with database `db`; returns once it answers."""
    port = free_port()
    hooklab = str(Path(sys.executable).with_name("hooklab"))
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")}
    child_env.update({"HOOKLAB_RETRY_SCHEDULE": "0.2,0.4,0.8", "HOOKLAB_RETRY_JITTER": "0"})
    child_env.update(env or {})
    command = [hooklab, "serve", "--port", str(port), "--db", db, *args]
    log = Path(db).with_suffix(".log")
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=child_env, stdout=out, stderr=subprocess.STDOUT)
    served = ServedProcess(process, f"http://127.0.0.1:{port}", db, log)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hooklab serve exited: {served.output()}")
        try:
            if requests.get(f"{served.url}/api/health", timeout=1).ok:
                return served
        except requests.ConnectionError:
            time.sleep(0.05)
    served.stop(signal.SIGKILL)
    raise RuntimeError("hooklab serve did not answer in time")


@pytest.fixture
def served(tmp_path) -> Iterator[ServedProcess]:
    """A real `hooklab serve` process (gunicorn) on a free port with a fresh database."""
    proc = start_serve(str(tmp_path / "served.db"))
    yield proc
    proc.stop()
