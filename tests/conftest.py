"""Fixtures shared by every test: settings on a temporary database, the app, a real server."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from hooklab.app.factory import create_app
from hooklab.app.launcher import RunningServer, start_server
from hooklab.shared.settings import Settings
from tests.served import Served, start

# A script running `make test &` starts the tests with Ctrl-C (SIGINT) ignored, and every
# process they start inherits that: the tests that press Ctrl-C on the CLI would wait in vain.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# A separate project with its own tests, run by tests/test_pytest_plugin.py in a subprocess.
collect_ignore = ["ci_user_project"]

# Short retry schedule so delivery tests run in seconds, not minutes.
TEST_SETTINGS = {"retry_schedule": "0.2,0.4,0.8", "retry_jitter": 0.0}
SHORT_RETRIES = {"HOOKLAB_RETRY_SCHEDULE": "0.2,0.4,0.8", "HOOKLAB_RETRY_JITTER": "0"}


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


class LiveServer(RunningServer):
    """The server of `hooklab serve` (gunicorn, a child process) on a free port of 127.0.0.1."""

    def create_bin(self, **fields) -> dict:
        """Create a bin through the API; returns its JSON."""
        response = requests.post(f"{self.url}/api/bins", json=fields, timeout=5)
        response.raise_for_status()
        return response.json()

    def add_webhook(self, **fields) -> dict:
        """Add a webhook through the API; returns its JSON."""
        response = requests.post(f"{self.url}/api/webhooks", json=fields, timeout=5)
        response.raise_for_status()
        return response.json()


def start_live_server(settings: Settings) -> LiveServer:
    """Serve Hooklab with `settings` on a free port, delivery workers running.

    Its log goes beside the database (the test's tmp_path): a temporary folder of its own
    would outlive the `kill()` the tests stop it with, one left in /tmp per test.
    """
    return start_server(settings=settings, kind=LiveServer, folder=Path(settings.db).parent)


@pytest.fixture
def live_server(settings) -> Iterator[LiveServer]:
    """A real server on the test's settings (its database is the `app` fixture's too)."""
    live = start_live_server(settings)
    yield live
    live.kill()  # no need to wait for a graceful stop: the database is the test's own


@pytest.fixture
def served(tmp_path) -> Iterator[Served]:
    """A real `hooklab serve` process (gunicorn) on a free port, database tmp_path/served.db."""
    proc = start(tmp_path, "--db", str(tmp_path / "served.db"), env=SHORT_RETRIES)
    yield proc
    proc.stop()
