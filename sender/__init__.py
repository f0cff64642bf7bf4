"""The webhook manager and sender: event catalog, webhooks, deliveries, attempts."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from hooklab.shared.context import get_settings, get_store


def init_app(app: Flask) -> None:
    """Register the manager's routes and its delivery workers.

    A bad catalog file (`--catalog`) raises `hooklab.sender.catalog.CatalogError` here, at
    start-up, with a message naming the file, the event and the field.
    """
    from hooklab.sender import api, catalog_api, pages
    from hooklab.sender.catalog import build_catalog

    app.extensions["hooklab.catalog"] = build_catalog(get_settings(app).catalog, get_store(app))
    app.register_blueprint(api.bp)
    app.register_blueprint(catalog_api.bp)
    app.register_blueprint(pages.bp)
    app.extensions["hooklab.background"].append(start_delivery_workers)


def start_delivery_workers(app: Flask) -> Callable[[], None]:
    """Start the delivery worker threads of a serving process; returns their `stop()`."""
    from hooklab.sender.delivery import DeliveryWorkers

    workers = DeliveryWorkers(get_store(app), get_settings(app))
    return workers.start()
