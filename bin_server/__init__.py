"""The request bin: capture any request, inspect it, watch it live, read it from the API."""

from __future__ import annotations

from flask import Flask

from hooklab.shared.context import get_notifier, get_settings, get_store


def init_app(app: Flask) -> None:
    """Register the bin's routes and put the capture path in front of Flask."""
    from hooklab.bin_server import api, checks, live, pages
    from hooklab.bin_server.capture import CaptureMiddleware
    from hooklab.bin_server.expiry import start_expiry
    from hooklab.bin_server.forward import start_forwarding
    from hooklab.bin_server.search_index import start_search_indexer

    app.register_blueprint(api.bp)
    app.register_blueprint(checks.bp)
    app.register_blueprint(pages.bp)
    live.init_app(app)
    app.extensions["hooklab.background"].append(start_expiry)
    app.extensions["hooklab.background"].append(start_search_indexer)
    app.extensions["hooklab.background"].append(start_forwarding)
    app.wsgi_app = CaptureMiddleware(
        app.wsgi_app, get_store(app), get_settings(app), get_notifier(app)
    )
