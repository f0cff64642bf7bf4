"""Retention: the delivery log does not grow forever (`--retention-days`, 0 keeps everything).

The delivery workers' housekeeper deletes finished deliveries older than the setting (their
attempts go with them), then the events left with no delivery. A pending delivery is never
deleted, however old: it is still due. Deletes run in small batches, each its own short write
transaction, so captures and deliveries are never held up behind a long prune.
"""

from __future__ import annotations

from hooklab.shared.clock import now_ms
from hooklab.shared.store import Store

BATCH = 500
DAY_MS = 24 * 3600 * 1000


def prune(store: Store, retention_days: float, now: int | None = None) -> dict[str, int]:
    """Delete deliveries, attempts and events older than `retention_days`; the counts deleted."""
    counts = {"deliveries": 0, "attempts": 0, "events": 0}
    if retention_days <= 0:
        return counts
    cutoff = (now_ms() if now is None else now) - int(retention_days * DAY_MS)
    while True:
        with store.write() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM deliveries WHERE created_at < ? AND status != 'pending' "
                    "ORDER BY id LIMIT ?",
                    (cutoff, BATCH),
                )
            ]
            if not ids:
                break
            marks = ", ".join("?" for _ in ids)
            counts["attempts"] += conn.execute(
                f"DELETE FROM attempts WHERE delivery_id IN ({marks})",  # noqa: S608 - only ? marks
                ids,
            ).rowcount
            counts["deliveries"] += conn.execute(
                f"DELETE FROM deliveries WHERE id IN ({marks})",  # noqa: S608 - only ? marks
                ids,
            ).rowcount
    while True:
        with store.write() as conn:
            deleted = conn.execute(
                "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.created_at < ? "
                "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) "
                "ORDER BY e.id LIMIT ?)",
                (cutoff, BATCH),
            ).rowcount
        counts["events"] += deleted
        if deleted < BATCH:
            break
    return counts
