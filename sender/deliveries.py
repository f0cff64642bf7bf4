"""Reading the delivery log: deliveries with their attempts, as the API and pages show them."""

from __future__ import annotations

import json
from typing import Any

from hooklab.sender.catalog import Catalog
from hooklab.shared.clock import iso, now_ms
from hooklab.shared.errors import ApiError
from hooklab.shared.store import Store, row, row_id, rows

MAX_LIMIT = 200


def attempt_to_json(attempt: dict[str, Any]) -> dict[str, Any]:
    """One attempt as the API shows it (the signature header is already redacted)."""
    return {
        "number": attempt["number"],
        "trigger": attempt["trigger"],
        "started_at": iso(attempt["started_at"]),
        "finished_at": iso(attempt["finished_at"]),
        "duration_ms": attempt["duration_ms"],
        "in_progress": attempt["finished_at"] is None,
        "ok": None if attempt["ok"] is None else bool(attempt["ok"]),
        "status_code": attempt["status_code"],
        "error_kind": attempt["error_kind"],
        "error": attempt["error"],
        "retry_after_s": attempt["retry_after_s"],
        "request": {"url": attempt["url"], "headers": json.loads(attempt["request_headers"])},
        "response": {
            "headers": json.loads(attempt["response_headers"] or "[]"),
            "body": attempt["response_body"],
            "body_size": attempt["response_body_size"],
            "truncated": bool(attempt["response_truncated"]),
        },
    }


def delivery_status(delivery: dict[str, Any], now: int | None = None) -> str:
    """pending, sending (claimed right now), succeeded, failed or cancelled."""
    if delivery["status"] == "pending" and delivery["claim_token"] is not None:
        if (delivery["claim_expires_at"] or 0) > (now or now_ms()):
            return "sending"
    return delivery["status"]


def delivery_to_json(
    delivery: dict[str, Any], attempts: list[dict[str, Any]], catalog: Catalog
) -> dict[str, Any]:
    """A delivery with its attempts, as the API shows it."""
    try:
        payload = json.loads(delivery["body"])
    except ValueError:
        payload = None
    return {
        "id": delivery["id"],
        "webhook_id": delivery["webhook_id"],
        "event_id": delivery["event_id"],
        "event": delivery["event"],
        "event_name": catalog.display_name(delivery["event"]),
        "message_id": delivery["message_id"],
        "test": bool(delivery["test"]),
        "status": delivery_status(delivery),
        "attempt_count": len(attempts),
        "next_attempt_at": iso(delivery["next_attempt_at"])
        if delivery["status"] == "pending"
        else None,
        "created_at": iso(delivery["created_at"]),
        "finished_at": iso(delivery["finished_at"]),
        "last_status_code": delivery["last_status_code"],
        "last_error": delivery["last_error"],
        "payload": payload,
        "attempts": [attempt_to_json(a) for a in attempts],
    }


def _attempts_of(store: Store, delivery_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in delivery_ids}
    if not delivery_ids:
        return out
    marks = ", ".join("?" for _ in delivery_ids)
    for attempt in rows(
        store.conn,
        f"SELECT * FROM attempts WHERE delivery_id IN ({marks}) "  # noqa: S608 - only ? marks
        "ORDER BY delivery_id, number",
        delivery_ids,
    ):
        out[attempt["delivery_id"]].append(attempt)
    return out


def _log_filter(
    webhook_id: int, before: int | None, after: int | None, status: str | None
) -> tuple[str, list[Any]]:
    """The WHERE clause (and its values) of a page of a webhook's delivery log."""
    sql = "webhook_id = ?"
    params: list[Any] = [webhook_id]
    if before is not None:
        sql += " AND id < ?"
        params.append(before)
    if after is not None:
        sql += " AND id > ?"
        params.append(after)
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    return sql, params


def list_deliveries(
    store: Store,
    catalog: Catalog,
    webhook_id: int,
    limit: int = 50,
    before: int | None = None,
    status: str | None = None,
    after: int | None = None,
) -> list[dict[str, Any]]:
    """A webhook's deliveries, newest first, each with its attempts (ids between `after` and
    `before`, both left out)."""
    where, params = _log_filter(webhook_id, before, after, status)
    found = rows(
        store.conn,
        f"SELECT * FROM deliveries WHERE {where} ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed
        [*params, max(1, min(limit, MAX_LIMIT))],
    )
    attempts = _attempts_of(store, [d["id"] for d in found])
    return [delivery_to_json(d, attempts[d["id"]], catalog) for d in found]


def count_deliveries(
    store: Store,
    webhook_id: int,
    before: int | None = None,
    status: str | None = None,
    after: int | None = None,
) -> int:
    """How many deliveries `list_deliveries` would find with no limit."""
    where, params = _log_filter(webhook_id, before, after, status)
    sql = f"SELECT count(*) FROM deliveries WHERE {where}"  # noqa: S608 - fixed clauses
    return store.conn.execute(sql, params).fetchone()[0]


def get_delivery(store: Store, catalog: Catalog, delivery_id: int | str) -> dict[str, Any]:
    """One delivery with its attempts, or a 404 API error."""
    number = row_id(delivery_id)
    found = row(store.conn, "SELECT * FROM deliveries WHERE id = ?", (number,)) if number else None
    if found is None:
        raise ApiError(404, "delivery_not_found", f"No delivery with id {delivery_id!r}.")
    attempts = _attempts_of(store, [found["id"]])[found["id"]]
    return delivery_to_json(found, attempts, catalog)
