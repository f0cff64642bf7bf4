"""Routes that belong to neither half: settings, health."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify

import hooklab.shared
from hooklab.shared.context import get_settings

bp = Blueprint("web", __name__)


@bp.get("/api/settings")
def settings():
    """Every setting with its value, default, help and environment variable."""
    return jsonify({"version": hooklab.shared.__version__, "settings": get_settings().public()})


@bp.get("/api/health")
def health():
    """A cheap liveness check."""
    return jsonify({"ok": True, "version": hooklab.shared.__version__})


def init_app(app: Flask) -> None:
    """Register the shared routes."""
    app.register_blueprint(bp)
