"""Routes that belong to neither half: settings, health."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, redirect, request
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException, NotFound

import hooklab.shared
from hooklab.bin_server.holds import thread_holds
from hooklab.shared.bidi import BIDI_SPLIT
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


# A bidirectional control in a name, shown (shared/bidi.py); static/common.js shows them alike.
CONTROL_MARK = Markup(
    '<span class="control-char" title="{0}, a bidirectional control character: shown, not '
    'applied">{0}</span>'
)


def shown_text(value: object) -> Markup:
    """A name for a page: escaped, each bidi control shown as a mark instead of applied."""
    parts = BIDI_SPLIT.split(str(value))
    if len(parts) == 1:
        return escape(parts[0])
    return Markup("").join(
        CONTROL_MARK.format(f"U+{ord(part):04X}") if odd else escape(part)
        for part, odd in zip(parts, [False, True] * len(parts), strict=False)
    )


def without_trailing_slash():
    """A page asked for with a slash too many (`/webhooks/1/`): redirected to the page, when
    there is one, instead of a 404 that names no webhook. Pages only; the API stays exact."""
    path = request.path
    if (
        not isinstance(request.routing_exception, NotFound)
        or request.method not in ("GET", "HEAD")
        or not path.endswith("/")
        or path.startswith(("/api/", "/ws/"))
    ):
        return None
    bare = path.rstrip("/")
    if not bare.startswith("/") or bare.startswith("//"):  # never another host's URL
        return None
    try:
        current_app.url_map.bind_to_environ(request.environ).match(bare, method=request.method)
    except HTTPException:
        return None
    query = request.query_string.decode("latin-1")
    return redirect(bare + ("?" + query if query else ""), code=308)


def init_app(app: Flask) -> None:
    """Register the shared routes, and what every page may show of the settings (the limits
    a user runs into: design.md, "shown in the UI and GET /api/settings")."""
    app.register_blueprint(bp)
    app.add_template_filter(size_text, "size")
    app.add_template_filter(duration_text, "duration")
    app.add_template_filter(lambda number: f"{number:,}", "thousands")
    app.add_template_filter(shown_text, "shown")
    app.before_request(without_trailing_slash)

    @app.context_processor
    def _settings() -> dict:
        return {"settings": get_settings()}
