"""Bins in the store: create, read, change, delete, clear; and checking a bin's settings."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hooklab.bin_server import forward as forwarding
from hooklab.bin_server.rules import (
    rule_counts,
    rule_states,
    status_problem,
    validate_headers,
    validate_rules,
    validate_seed,
)
from hooklab.shared.clock import iso, now_ms
from hooklab.shared.errors import ApiError, FieldErrors
from hooklab.shared.own_server import ServerAddress
from hooklab.shared.signing import check_key
from hooklab.shared.store import Store, row, rows

BIN_ID = re.compile(r"^[a-z2-7]{26}$")
MAX_NAME = 200
MAX_RESPONSE_BODY = 1024 * 1024
# Changing any of these starts the rules' counts and seeded sequence again.
RULE_COLUMNS = ("rules", "rules_seed")


def new_bin_id() -> str:
    """A bin id: 128 random bits in lower-case base32 (26 characters)."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def looks_like_bin_id(value: str) -> bool:
    """Whether `value` has the shape of a bin id (a cheap filter before any query)."""
    return bool(BIN_ID.match(value))


class BinCache:
    """Bins by id for the capture path, re-read after a short time or any local change."""

    TTL_S = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, dict | None]] = {}

    def get(self, store: Store, bin_id: str) -> dict | None:
        now = time.monotonic()
        hit = self._items.get(bin_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        row = get_bin_row(store, bin_id)
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[bin_id] = (now + self.TTL_S, row)
        return row

    def forget(self, bin_id: str) -> None:
        with self._lock:
            self._items.pop(bin_id, None)


def bin_cache(store: Store) -> BinCache:
    """The bin cache of the app that owns `store`."""
    return store.attached("bin_cache", BinCache)


def get_bin_row(store: Store, bin_id: str) -> dict | None:
    """The stored row of a bin, or None."""
    return row(store.conn, "SELECT * FROM bins WHERE id = ?", (bin_id,))


def list_bins(store: Store, base_url: str, limit: int = -1, offset: int = 0) -> list[dict]:
    """Bins as the API shows them, newest first, with their request counts (-1: all), from
    the `offset`-th newest on."""
    found = rows(
        store.conn,
        "SELECT * FROM bins ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
        (limit, offset),
    )
    stats = bin_stats(store, [r["id"] for r in found])
    return [bin_to_json(r, base_url, stats[r["id"]]) for r in found]


def count_bins(store: Store) -> int:
    """How many bins there are."""
    return store.conn.execute("SELECT count(*) FROM bins").fetchone()[0]


def require_bin(store: Store, bin_id: str) -> dict:
    """The stored row of a bin, or a 404 API error."""
    row = get_bin_row(store, bin_id) if looks_like_bin_id(bin_id) else None
    if row is None:
        raise ApiError(404, "bin_not_found", f"No bin with id {bin_id!r}.")
    return row


BIN_FIELDS = ("name", "response", "secret", "rules", "rules_seed", "forward")
# A bin's answer when none is configured (the columns' defaults, bin_server/schema.py m001).
DEFAULT_RESPONSE = {
    "response_status": 200,
    "response_headers": "[]",
    "response_body": None,
    "response_delay_ms": 0,
}


def validate_bin_fields(
    data: Any,
    max_delay_ms: int,
    server: ServerAddress | None = None,
    block_private: bool = False,
) -> dict:
    """Check a create or change request; returns the columns to write, or raises a 422.

    Everything is checked before anything is written: a bad field saves nothing. Every bad
    field is named at once (FieldErrors), so a form shows each next to its field.
    `server`: this server's addresses, where a forward may not point.
    """
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "The request body must be a JSON object.")
    errors: dict[str, str] = {}
    for field in sorted(set(data) - set(BIN_FIELDS)):
        errors[field] = f"Unknown field {field!r}."
    # Each given field's check: the columns it writes.
    checks = {
        "name": lambda value: {"name": _checked_name(value)},
        "secret": lambda value: {"secret": _checked_secret(value)},
        # null: the default answer again, as null clears `secret`, `rules` and `forward`.
        "response": lambda value: (
            dict(DEFAULT_RESPONSE) if value is None else validate_response(value, max_delay_ms)
        ),
        "rules": lambda value: {"rules": json.dumps(validate_rules(value, max_delay_ms))},
        "rules_seed": lambda value: {"rules_seed": validate_seed(value)},
        "forward": lambda value: {"forward": _forward_json(value, server, block_private)},
    }
    columns: dict[str, Any] = {}
    for field, check in checks.items():
        if field in data:
            with _collected(errors):
                columns.update(check(data[field]))
    if errors:
        raise FieldErrors(errors)
    return columns


@contextmanager
def _collected(errors: dict[str, str]) -> Iterator[None]:
    """Add a field's 422 (or every one of a nested form's) to `errors` instead of raising it."""
    try:
        yield
    except FieldErrors as exc:
        for field, message in exc.errors.items():
            errors.setdefault(field, message)
    except ApiError as exc:
        if exc.status != 422 or not exc.field:
            raise
        errors.setdefault(exc.field, exc.message)


def _forward_json(forward: Any, server: ServerAddress | None, block_private: bool) -> str | None:
    found = forwarding.validate_forward(forward, server, block_private)
    return json.dumps(found) if found is not None else None


def _checked_name(name: Any) -> str:
    if name is None:
        name = ""
    if not isinstance(name, str):
        raise ApiError(422, "invalid", "name must be a string.", "name")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise ApiError(422, "invalid", f"name is at most {MAX_NAME} characters.", "name")
    return name


def _checked_secret(secret: Any) -> str | None:
    if secret in (None, ""):
        return None
    problem = check_key(secret)
    if problem:
        raise ApiError(422, "invalid", f"secret: {problem}.", "secret")
    return secret


def validate_response(response: Any, max_delay_ms: int) -> dict:
    """Check a bin's configured response; returns its columns, or raises FieldErrors."""
    if not isinstance(response, dict):
        raise ApiError(422, "invalid", "response must be an object.", "response")
    errors: dict[str, str] = {}
    for field in sorted(set(response) - {"status", "headers", "body", "delay_ms"}):
        errors["response." + field] = f"Unknown field {'response.' + field!r}."
    columns: dict[str, Any] = {}
    if "status" in response:
        problem = status_problem(response["status"], "response.status")
        if problem:
            errors["response.status"] = problem
        else:
            columns["response_status"] = response["status"]
    if "headers" in response:
        with _collected(errors):
            columns["response_headers"] = json.dumps(
                validate_headers(response["headers"], "response.headers")
            )
    if "body" in response:
        body = response["body"]
        if body is not None and not isinstance(body, str):
            errors["response.body"] = "response.body must be a string."
        elif body is not None and len(body.encode()) > MAX_RESPONSE_BODY:
            errors["response.body"] = "response.body is at most 1 MiB."
        else:
            columns["response_body"] = body
    if "delay_ms" in response:
        delay = response["delay_ms"]
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int)
            or not (0 <= delay <= max_delay_ms)
        ):
            errors["response.delay_ms"] = (
                f"response.delay_ms must be a whole number from 0 to {max_delay_ms}."
            )
        else:
            columns["response_delay_ms"] = delay
    if errors:
        raise FieldErrors(errors)
    return columns


def create_bin(store: Store, columns: dict) -> dict:
    """Write a new bin; returns its row."""
    return create_bins(store, columns, 1)[0]


def create_bins(store: Store, columns: dict, count: int) -> list[dict]:
    """Write `count` new bins alike (each with its own id and rules seed), in one transaction."""
    made = [_new_bin_row(columns) for _ in range(count)]
    names = list(made[0])
    # Plain SQL: sqlite-utils' insert reads the table's schema first, on every call.
    with store.write() as conn:
        conn.executemany(
            f"INSERT INTO bins ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",  # noqa: S608 (fixed column names)
            [list(bin_row.values()) for bin_row in made],
        )
    return [get_bin_row(store, bin_row["id"]) for bin_row in made]


def _new_bin_row(columns: dict) -> dict:
    return {
        "id": new_bin_id(),
        "name": columns.get("name", ""),
        "created_at": now_ms(),
        "secret": columns.get("secret"),
        **{name: columns.get(name, default) for name, default in DEFAULT_RESPONSE.items()},
        "rules": columns.get("rules", "[]"),
        # A seed of its own unless given, so a bin's draws repeat after a reset.
        "rules_seed": columns.get("rules_seed", secrets.randbelow(2**31)),
        "forward": columns.get("forward"),
    }


def update_bin(store: Store, bin_id: str, columns: dict) -> dict:
    """Change a bin; returns its row. New rules (or seed) start their counts again."""
    if columns:
        with store.atomic() as db:
            db["bins"].update(bin_id, columns)
            new_rules = any(name in columns for name in RULE_COLUMNS)
            if new_rules:
                _restart_rules(db.conn, bin_id)
        # Other changes keep the rule state in memory: captures still being written count.
        _forget(store, bin_id, rules=new_rules)
    return require_bin(store, bin_id)


def reset_rules(store: Store, bin_id: str) -> dict:
    """Start a bin's rule counts and seeded sequence again; returns its row."""
    with store.write() as conn:
        _restart_rules(conn, bin_id)
    _forget(store, bin_id)
    return require_bin(store, bin_id)


def _restart_rules(conn: Any, bin_id: str) -> None:
    # A new version: captures chosen under the old one no longer write their state.
    conn.execute(
        "UPDATE bins SET rules_state = NULL, rules_version = rules_version + 1 WHERE id = ?",
        (bin_id,),
    )


def _forget(store: Store, bin_id: str, rules: bool = True) -> None:
    bin_cache(store).forget(bin_id)
    if rules:
        rule_states(store).forget(bin_id)


def delete_bin(store: Store, bin_id: str) -> None:
    """Delete a bin and everything it captured."""
    delete_bins(store, [bin_id])


def delete_bins(store: Store, bin_ids: list[str]) -> list[str]:
    """Delete bins and everything they captured, in one transaction; returns those there were."""
    deleted = []
    with store.atomic() as db:
        for bin_id in bin_ids:
            # The queue first: its forwards go with the bin (and nothing is copied for them).
            db.execute("DELETE FROM pending_forwards WHERE bin_id = ?", [bin_id])
            db.execute("DELETE FROM captured_requests WHERE bin_id = ?", [bin_id])
            if db.execute("DELETE FROM bins WHERE id = ?", [bin_id]).rowcount:
                deleted.append(bin_id)
    for bin_id in bin_ids:
        _forget(store, bin_id)
    return deleted


def clear_bin(store: Store, bin_id: str) -> int:
    """Delete a bin's captured requests; returns how many."""
    with store.atomic() as db:
        cur = db.execute("DELETE FROM captured_requests WHERE bin_id = ?", [bin_id])
        db.execute("UPDATE bins SET cleared_at = ? WHERE id = ?", [now_ms(), bin_id])
    return cur.rowcount


def bin_stats(store: Store, bin_ids: list[str]) -> dict[str, tuple[int, int | None]]:
    """For each bin: (captured requests kept, time of the last one in ms)."""
    out: dict[str, tuple[int, int | None]] = {}
    for bin_id in bin_ids:
        # Both from the (bin_id, id) index: max(received_at) would read every row of the bin
        # (2.6 s for 1,000 full bins, see docs/benchmarks.md); the newest is the last request.
        count, last = store.conn.execute(
            "SELECT count(*), (SELECT received_at FROM captured_requests WHERE bin_id = ? "
            "ORDER BY id DESC LIMIT 1) FROM captured_requests WHERE bin_id = ?",
            (bin_id, bin_id),
        ).fetchone()
        out[bin_id] = (count, last)
    return out


def bin_to_json(row: dict, base_url: str, stats: tuple[int, int | None] | None = None) -> dict:
    """A bin as the API shows it."""
    base = base_url.rstrip("/")
    body = {
        "id": row["id"],
        "name": row["name"],
        "url": f"{base}/b/{row['id']}",
        "inspect_url": f"{base}/bins/{row['id']}",
        "created_at": iso(row["created_at"]),
        "response": {
            "status": row["response_status"],
            "headers": json.loads(row["response_headers"]),
            "body": row["response_body"],
            "delay_ms": row["response_delay_ms"],
        },
        "has_secret": bool(row["secret"]),
        "secret": row["secret"],
        "rules": json.loads(row["rules"]),
        "rules_seed": row["rules_seed"],
        "rule_counts": rule_counts(row),
        "forward": forwarding.forward_config(row["forward"]),
    }
    if stats is not None:
        body["request_count"] = stats[0]
        body["last_request_at"] = iso(stats[1])
    return body
