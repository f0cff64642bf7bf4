"""Firing an event: write it and one delivery per subscribed active webhook in one transaction.

This is the outbox: once `fire` returns, the deliveries are in the database, and a delivery
worker (in this process or in `hooklab worker`) sends them even after a crash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from hooklab.sender.catalog import DEFAULT_CATALOG, WILDCARD, Catalog
from hooklab.shared.clock import iso, now_ms
from hooklab.shared.errors import ApiError
from hooklab.shared.store import Store, row, rows

MAX_IDEMPOTENCY_KEY = 255


def new_message_id() -> str:
    """A delivery's message id (the webhook-id header): `msg_` and 128 random bits."""
    return "msg_" + base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def render_body(payload: Any, slug: str, fired_at_ms: int, payload_format: str) -> str:
    """The JSON body a webhook receives: the payload as is (flat) or in an envelope."""
    if payload_format == "envelope":
        payload = {"type": slug, "timestamp": iso(fired_at_ms), "data": payload}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _request_hash(slug: str, payload: Any) -> str:
    canonical = json.dumps([slug, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def fire(
    store: Store,
    slug: str,
    payload: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    *,
    catalog: Catalog = DEFAULT_CATALOG,
) -> dict[str, Any]:
    """Fire an event: returns `{"event_id", "deliveries": [...], "replayed"}`.

    `payload` None sends the event's example payload. The same `idempotency_key` with the
    same slug and payload returns the first event (`replayed` true) instead of firing again.
    """
    event = catalog.get(slug)
    if event is None:
        raise ApiError(404, "event_not_found", f"No event {slug!r} in the catalog.")
    if payload is None:
        payload = event.example()
    if not isinstance(payload, dict):
        raise ApiError(422, "invalid", "The payload must be a JSON object.", "payload")
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 255:
            raise ApiError(
                422,
                "invalid",
                f"Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY} characters.",
                "Idempotency-Key",
            )
    request_hash = _request_hash(slug, payload)
    payload_text = json.dumps(payload, ensure_ascii=False)
    fired_at = now_ms()
    with store.write() as conn:
        if idempotency_key is not None:
            earlier = row(
                conn,
                "SELECT id, request_hash FROM events WHERE idempotency_key = ?",
                (idempotency_key,),
            )
            if earlier is not None:
                if earlier["request_hash"] != request_hash:
                    raise ApiError(
                        409,
                        "idempotency_conflict",
                        "This Idempotency-Key was already used to fire a different event or "
                        "payload; use a new key.",
                        "Idempotency-Key",
                    )
                return _result(conn, earlier["id"], replayed=True)
        event_id = conn.execute(
            "INSERT INTO events (slug, payload, created_at, idempotency_key, request_hash) "
            "VALUES (?, ?, ?, ?, ?)",
            (slug, payload_text, fired_at, idempotency_key, request_hash),
        ).lastrowid
        webhooks = rows(
            conn,
            "SELECT id, payload_format FROM webhooks "
            "WHERE active = 1 AND (event = ? OR event = ?) ORDER BY id",
            (slug, WILDCARD),
        )
        for webhook in webhooks:
            conn.execute(
                "INSERT INTO deliveries (event_id, webhook_id, message_id, event, body, status, "
                "next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                (
                    event_id,
                    webhook["id"],
                    new_message_id(),
                    slug,
                    render_body(payload, slug, fired_at, webhook["payload_format"]),
                    fired_at,
                    fired_at,
                ),
            )
        result = _result(conn, event_id, replayed=False)
    if result["deliveries"]:
        store.notifier("deliveries").changed()
    return result


def _result(conn, event_id: int, replayed: bool) -> dict[str, Any]:
    deliveries = rows(
        conn,
        "SELECT id, webhook_id, status FROM deliveries WHERE event_id = ? ORDER BY id",
        (event_id,),
    )
    return {"event_id": event_id, "deliveries": deliveries, "replayed": replayed}
