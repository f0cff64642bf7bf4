"""The app factory: one Flask app holding the bin, the manager and the common routes."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

import hooklab.shared
from hooklab import bin_server, sender
from hooklab.app import web
from hooklab.bin_server.schema import migrations as bin_migrations
from hooklab.sender.catalog_api import check_payload
from hooklab.sender.schema import migrations as sender_migrations
from hooklab.shared import errors, security
from hooklab.shared.context import get_notifier, get_stopping
from hooklab.shared.settings import Settings
from hooklab.shared.store import Store

PACKAGE_ROOT = Path(hooklab.shared.__file__).resolve().parent.parent


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app for `settings` (defaults, then environment, when not given)."""
    settings = settings or Settings()
    app = Flask(
        "hooklab",
        root_path=str(PACKAGE_ROOT),
        template_folder=str(PACKAGE_ROOT / "templates"),
        static_folder=str(PACKAGE_ROOT / "static"),
    )
    app.config["HOOKLAB"] = settings
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 20}
    app.json.sort_keys = False

    store = open_store(settings.db)
    store.migrate()
    app.extensions["hooklab.store"] = store  # reached through hooklab.shared.context.get_store
    # Callables run once the serving process is up (delivery workers); see app/server.py.
    app.extensions["hooklab.background"] = []

    errors.init_app(app)
    security.init_app(app)
    web.init_app(app)
    bin_server.init_app(app)
    sender.init_app(app)
    # The bin checks captured requests against the sender's catalog through this callable.
    app.extensions["hooklab.check_payload"] = check_payload
    return app


def open_store(path: str) -> Store:
    """The store on `path` with both halves' migrations (not applied yet: `migrate()`)."""
    return Store(path, [bin_migrations, sender_migrations])


def start_background(app: Flask) -> None:
    """Start what runs beside the server (delivery workers); call once per serving process.

    Each registered start function may return a `stop()` callable, run by `stop_background`.
    """
    if app.extensions.get("hooklab.stoppers") is not None:
        return
    stoppers = app.extensions["hooklab.stoppers"] = []
    for start in app.extensions["hooklab.background"]:
        stop = start(app)
        if stop is not None:
            stoppers.append(stop)


def stop_background(app: Flask) -> None:
    """Stop what `start_background` started (tests, and a clean shutdown)."""
    for stop in reversed(app.extensions.pop("hooklab.stoppers", None) or []):
        stop()


def begin_stop(app: Flask) -> None:
    """The server is stopping (gunicorn's graceful stop, SIGTERM): what waits stops waiting,
    so each answer goes out before the serving process ends (bin_server: long polls, delayed
    answers, live pages)."""
    get_stopping(app).set()
    get_notifier(app).changed()  # wake the waiters now, not at their next look
