"""Delete bins left idle longer than `bin_ttl_s` (off by default: bins never expire)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask

from hooklab.bin_server.bins import delete_bin
from hooklab.shared.clock import now_ms
from hooklab.shared.context import get_notifier, get_settings, get_store
from hooklab.shared.store import Store

log = logging.getLogger("hooklab")

# A bin's last activity is its newest captured request, or its creation when it has none.
IDLE_BINS = """
SELECT bins.id FROM bins
WHERE max(bins.created_at, coalesce(
    (SELECT received_at FROM captured_requests WHERE bin_id = bins.id ORDER BY id DESC LIMIT 1),
    0)) < ?
"""


def expire_idle_bins(store: Store, ttl_s: int, now: int | None = None) -> list[str]:
    """Delete the bins idle for more than `ttl_s` seconds; returns their ids."""
    cutoff = (now if now is not None else now_ms()) - ttl_s * 1000
    ids = [row[0] for row in store.conn.execute(IDLE_BINS, (cutoff,)).fetchall()]
    for bin_id in ids:
        delete_bin(store, bin_id)
    return ids


def start_expiry(app: Flask) -> Callable[[], None] | None:
    """Start the thread that expires idle bins, when a TTL is set; returns its stop()."""
    settings = get_settings(app)
    if settings.bin_ttl_s <= 0:
        return None
    store, notifier = get_store(app), get_notifier(app)
    stopped = threading.Event()
    interval = max(0.5, min(60.0, settings.bin_ttl_s / 4))

    def run() -> None:
        while not stopped.wait(interval):
            try:
                if expire_idle_bins(store, settings.bin_ttl_s):
                    notifier.changed()  # live streams of deleted bins say bin_deleted
            except Exception:  # keep expiring later; a locked database is a passing state
                log.exception("expiring idle bins failed")
        store.close()

    thread = threading.Thread(target=run, name="hooklab-bin-expiry", daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        thread.join(5)

    return stop
