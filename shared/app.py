"""The app factory: one Flask app holding the bin, the manager and the shared routes."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app

import hooklab.shared
from hooklab import bin_server, sender
from hooklab.shared import errors, security, web
from hooklab.shared.live import sock
from hooklab.shared.notify import Notifier
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

    store = Store(settings.db)
    store.migrate()
    app.extensions["hooklab.store"] = store
    app.extensions["hooklab.notifier"] = Notifier()
    # Callables run once the serving process is up (delivery workers); see shared/server.py.
    app.extensions["hooklab.background"] = []

    sock.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    web.init_app(app)
    bin_server.init_app(app)
    sender.init_app(app)
    return app


def get_settings() -> Settings:
    """The settings of the current app."""
    return current_app.config["HOOKLAB"]


def get_store() -> Store:
    """The store of the current app."""
    return current_app.extensions["hooklab.store"]


def get_notifier() -> Notifier:
    """The change notifier of the current app."""
    return current_app.extensions["hooklab.notifier"]


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
