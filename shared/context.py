"""What an app holds, reached one way: its settings, its store, the captures' notifier.

Everything with the lifetime of an app lives on the app: the store in `app.extensions`, and
what hangs off the store (`Store.attached`: write lock, notifiers, bin cache, live feeds).
Nothing is kept at module level, so two apps in one process share nothing.
"""

from __future__ import annotations

import threading

from flask import Flask, current_app

from hooklab.shared.notify import Notifier
from hooklab.shared.settings import Settings
from hooklab.shared.store import Store


def _app(app: Flask | None) -> Flask:
    return app if app is not None else current_app._get_current_object()


def get_settings(app: Flask | None = None) -> Settings:
    """The settings of `app` (default: the current app)."""
    return _app(app).config["HOOKLAB"]


def get_store(app: Flask | None = None) -> Store:
    """The store of `app` (default: the current app)."""
    return _app(app).extensions["hooklab.store"]


def get_notifier(app: Flask | None = None) -> Notifier:
    """The notifier that wakes live streams and long polls when a captured request changes."""
    return get_store(app).notifier("captures")


def get_stopping(app: Flask | None = None) -> threading.Event:
    """Set once the server is stopping (SIGTERM): waits end early (long polls answer 204,
    delayed answers go out, live pages are closed) instead of being cut off unanswered."""
    return stopping_of(get_store(app))


def stopping_of(store: Store) -> threading.Event:
    """`get_stopping` for code that holds the store, not the app (the capture middleware)."""
    return store.attached("stopping", threading.Event)
