"""The websocket live stream of a bin, fed from the store.

The stream reads the store, not an in-memory queue: it works whichever process captured the
request. Captures in this process wake it at once (the Notifier); otherwise it re-reads the
store every POLL_S seconds.
"""

from __future__ import annotations

import json

from flask import Blueprint, Flask, current_app, request
from simple_websocket import ConnectionClosed

from hooklab.bin_server.bins import get_bin_row, looks_like_bin_id
from hooklab.bin_server.captured import SUMMARY_COLUMNS, summary
from hooklab.shared.live import sock
from hooklab.shared.store import Store, rows

bp = Blueprint("bin_live", __name__)
POLL_S = 1.0
BATCH = 200

NEWER = (
    f"SELECT {SUMMARY_COLUMNS} FROM captured_requests "  # noqa: S608 - constant column list
    "WHERE bin_id = ? AND id > ? ORDER BY id LIMIT ?"
)


def requests_after(store: Store, bin_id: str, after: int, limit: int = BATCH) -> list[dict]:
    """Stored rows of a bin's captured requests with id > after, oldest first."""
    return rows(store.conn, NEWER, (bin_id, after, limit))


def _after_param() -> int | None:
    raw = request.args.get("after", "0") or "0"
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


def _error(ws, code: str, message: str) -> None:
    ws.send(json.dumps({"type": "error", "error": {"code": code, "message": message}}))
    ws.close(reason=1008, message=message[:100])


@sock.route("/ws/bins/<bin_id>", bp=bp)
def stream_bin(ws, bin_id: str) -> None:
    """Send every request with id > after, then new ones as they arrive, until either side stops."""
    app = current_app._get_current_object()
    store: Store = app.extensions["hooklab.store"]
    notifier = app.extensions["hooklab.notifier"]
    settings = app.config["HOOKLAB"]
    base_url = settings.public_url or request.host_url
    trust_host = not settings.public_url

    after = _after_param()
    if after is None:
        _error(ws, "bad_request", "after must be a whole number (a captured request id).")
        return
    bin_row = get_bin_row(store, bin_id) if looks_like_bin_id(bin_id) else None
    if bin_row is None:
        _error(ws, "bin_not_found", f"No bin with id {bin_id!r}.")
        return
    cleared_at = bin_row["cleared_at"]
    try:
        while ws.connected:
            seen = notifier.version
            bin_row = get_bin_row(store, bin_id)
            if bin_row is None:
                ws.send(json.dumps({"type": "bin_deleted"}))
                ws.close()
                return
            if bin_row["cleared_at"] != cleared_at:
                cleared_at = bin_row["cleared_at"]
                ws.send(json.dumps({"type": "cleared"}))
            rows = requests_after(store, bin_id, after)
            for row in rows:
                frame = {"type": "request", "request": summary(row, base_url, trust_host)}
                ws.send(json.dumps(frame))
                after = row["id"]
            if len(rows) == BATCH:
                continue  # more to replay: no waiting
            notifier.wait(seen, POLL_S)
    except ConnectionClosed:
        return


def init_app(app: Flask) -> None:
    """Register the live stream route."""
    app.register_blueprint(bp)
