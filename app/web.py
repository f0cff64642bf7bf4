"""Routes that belong to neither half: settings, health."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify

import hooklab.shared
from hooklab.bin_server.holds import thread_holds
from hooklab.shared.context import get_settings, get_store

bp = Blueprint("web", __name__)


@bp.get("/api/settings")
def settings():
    """Every setting with its value, default, help and environment variable."""
    return jsonify({"version": hooklab.shared.__version__, "settings": get_settings().public()})


@bp.get("/api/health")
def health():
    """A cheap liveness check, and how many of its places for waiting connections (long polls,
    live pages, delayed answers) are taken: past them, more are refused (bin_server/holds.py)."""
    holds = thread_holds(get_store(), get_settings())
    return jsonify(
        {
            "ok": True,
            "version": hooklab.shared.__version__,
            "waiting": {"connections": holds.count, "places": holds.cap},
        }
    )


def size_text(count: int) -> str:
    """A number of bytes in words: 10 MiB, 512 KiB, 100 bytes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            value = count / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{count} byte{'' if count == 1 else 's'}"


def duration_text(seconds: float) -> str:
    """A length of time in words: 5 s, 2 min, 1.5 h, 7 days."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            value = seconds / size
            text = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
            return f"{text} {'day' if unit == 'days' and text == '1' else unit}"
    return f"{seconds:g} s"


def init_app(app: Flask) -> None:
    """Register the shared routes, and what every page may show of the settings (the limits
    a user runs into: design.md, "shown in the UI and GET /api/settings")."""
    app.register_blueprint(bp)
    app.add_template_filter(size_text, "size")
    app.add_template_filter(duration_text, "duration")
    app.add_template_filter(lambda number: f"{number:,}", "thousands")

    @app.context_processor
    def _settings() -> dict:
        return {"settings": get_settings()}
