"""Fixtures shared by every test: settings on a temporary database, the app, a real server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from hooklab.shared.app import create_app, start_background, stop_background
from hooklab.shared.settings import Settings

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


@dataclass
class LiveServer:
    """A real threaded HTTP server on a free port of 127.0.0.1, serving `app`."""

    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.server_port}"

    def create_bin(self, **fields) -> dict:
        """Create a bin through the API; returns its JSON."""
        response = requests.post(f"{self.url}/api/bins", json=fields, timeout=5)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        stop_background(self.app)
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_live_server(app: Flask) -> LiveServer:
    """Serve `app` on a free port in a daemon thread, with its delivery workers running."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    start_background(app)
    return LiveServer(app, server, thread)


@pytest.fixture
def live_server(app) -> Iterator[LiveServer]:
    live = start_live_server(app)
    yield live
    live.stop()
