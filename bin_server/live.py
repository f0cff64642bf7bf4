"""The websocket live stream of a bin, fed from the store."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the live stream route."""
