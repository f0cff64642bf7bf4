"""The webhook manager and sender: event catalog, webhooks, deliveries, attempts."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the manager's routes and its delivery workers."""
