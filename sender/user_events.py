"""User events: the catalog entries a user added (`POST /api/events`) or imported (OpenAPI).

They live in the store's `catalog_events` table, so every process sees them and they survive a
restart. Each keeps its example payload and, when one was written or imported, its schema.
The `prefix` column groups them on the Webhooks page (an import's `--prefix`, else the slug up
to its first dot).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from hooklab.sender.schemas import Checker, InvalidSchema, UnusableSchema, check_schema
from hooklab.shared.clock import now_ms
from hooklab.shared.errors import ApiError
from hooklab.shared.store import Store, row, rows

# Wider than a built-in slug: providers name webhooks `newPet`, `charge.succeeded`, `push`.
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
SLUG_RULE = (
    "1-200 characters of letters, digits, '_', '.', ':', '-', starting with a letter or digit"
)
# `POST /api/events/import` is a route of its own, so no event can be fired under that name.
RESERVED = frozenset({"import"})
MAX_NAME = 200
MAX_DESCRIPTION = 5000
COLUMNS = "slug, prefix, name, description, payload, schema, source, created_at, updated_at"


def prefix_of(slug: str) -> str:
    """The group of a slug on the Webhooks page: up to and including its first dot, or ""."""
    head, dot, _ = slug.partition(".")
    return head + dot if dot else ""


def check_slug(slug: Any, is_builtin) -> str | None:
    """Why `slug` cannot name a user event, or None when it can."""
    if not isinstance(slug, str) or not SLUG.match(slug):
        return f"a slug is {SLUG_RULE} (got {str(slug)[:80]!r})"
    if slug in RESERVED:
        return f"{slug!r} is reserved (it is a route of the API)"
    if is_builtin(slug):
        return f"{slug!r} is a built-in event's slug; built-in events are read-only"
    return None


def check_fields(data: Any, is_builtin, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The columns of a user event from an API body (`current`: the event being changed).

    Raises a 422 ApiError naming the first bad field.
    """
    if not isinstance(data, dict):
        raise ApiError(422, "invalid", "The request body must be a JSON object.")
    allowed = {"name", "description", "payload", "schema"} | (
        {"slug"} if current is None else set()
    )
    unknown = sorted(set(data) - allowed)
    if unknown:
        hint = " (the slug of an event cannot change)" if unknown[0] == "slug" else ""
        raise ApiError(422, "invalid", f"Unknown field {unknown[0]!r}{hint}.", unknown[0])
    out: dict[str, Any] = {}
    if current is None:
        problem = check_slug(data.get("slug"), is_builtin)
        if problem:
            raise ApiError(422, "invalid", f"slug: {problem}.", "slug")
        out["slug"] = data["slug"]
    if current is None or "name" in data:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise ApiError(
                422,
                "invalid",
                f"name must be a non-empty string of at most {MAX_NAME} characters.",
                "name",
            )
        out["name"] = name.strip()
    if current is None or "description" in data:
        description = data.get("description", "")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise ApiError(
                422,
                "invalid",
                f"description must be a string of at most {MAX_DESCRIPTION} characters.",
                "description",
            )
        out["description"] = description.strip()
    if current is None or "payload" in data:
        if "payload" not in data:
            raise ApiError(422, "invalid", "payload is missing (the example payload).", "payload")
        if not isinstance(data["payload"], dict):
            raise ApiError(
                422, "invalid", "payload must be a JSON object (the example).", "payload"
            )
        out["payload"] = json.dumps(data["payload"], ensure_ascii=False)
    if "schema" in data:
        schema = data["schema"]
        if schema is not None:
            _check_schema(schema)
        out["schema"] = None if schema is None else json.dumps(schema, ensure_ascii=False)
    _example_fits_schema(out, current)
    return out


def _check_schema(schema: Any) -> None:
    """A 422 naming `schema` unless it is valid JSON Schema that can check payloads on its own.

    Its `$ref`s must point within it: nothing a schema names is ever fetched.
    """
    try:
        check_schema(schema)
    except UnusableSchema as exc:
        raise ApiError(422, "invalid", f"schema cannot be used: {exc}.", "schema") from None
    except InvalidSchema as exc:
        raise ApiError(
            422, "invalid", f"schema is not valid JSON Schema (2020-12): {exc}.", "schema"
        ) from None


def _example_fits_schema(out: dict[str, Any], current: dict[str, Any] | None) -> None:
    """An example that its own schema refuses would be fired and refused at once: say so now."""
    schema_text = out.get("schema", current["schema"] if current else None)
    if schema_text is None or ("schema" not in out and "payload" not in out):
        return
    payload = json.loads(out.get("payload") or current["payload"])
    checker = Checker.for_schema(json.loads(schema_text))
    if checker.problem is not None:
        # A schema saved before such schemas were refused, or one nested too deeply to compile.
        raise ApiError(422, "invalid", f"schema cannot be used: {checker.problem}.", "schema")
    try:
        result = checker.check(payload)
    except RecursionError:
        raise ApiError(
            422,
            "invalid",
            "payload: the example is nested too deeply to check against the schema.",
            "payload",
        ) from None
    if not result["valid"]:
        first = result["problems"][0]
        raise ApiError(
            422,
            "invalid",
            "payload: the example does not match the schema "
            f"({first['path'] or '/'}: {first['message']}).",
            "payload",
        )


def read_row(conn, slug: str) -> dict[str, Any] | None:
    """The stored user event with this slug, or None."""
    return row(conn, f"SELECT {COLUMNS} FROM catalog_events WHERE slug = ?", (slug,))  # noqa: S608 (fixed column list)


def list_rows(
    conn, prefix: str | None = None, offset: int = 0, limit: int = -1
) -> list[dict[str, Any]]:
    """User events by prefix then slug (one prefix's when given); `limit` -1 is all."""
    if prefix is None:
        return rows(
            conn,
            f"SELECT {COLUMNS} FROM catalog_events ORDER BY prefix, slug LIMIT ? OFFSET ?",  # noqa: S608 (fixed column list)
            (limit, offset),
        )
    return rows(
        conn,
        f"SELECT {COLUMNS} FROM catalog_events WHERE prefix = ? ORDER BY slug LIMIT ? OFFSET ?",  # noqa: S608 (fixed column list)
        (prefix, limit, offset),
    )


def choice_rows(conn) -> list[dict[str, Any]]:
    """Slug, name and prefix of every user event, by prefix then slug (for a dropdown)."""
    return rows(conn, "SELECT slug, name, prefix FROM catalog_events ORDER BY prefix, slug")


def count_prefix(conn, prefix: str) -> int:
    """How many user events one prefix holds."""
    return conn.execute(
        "SELECT count(*) FROM catalog_events WHERE prefix = ?", (prefix,)
    ).fetchone()[0]


def all_slugs(conn) -> set[str]:
    """The slug of every user event."""
    return {found[0] for found in conn.execute("SELECT slug FROM catalog_events")}


def count_rows(conn) -> int:
    """How many user events there are."""
    return conn.execute("SELECT count(*) FROM catalog_events").fetchone()[0]


def prefix_counts(conn) -> list[tuple[str, int]]:
    """Each prefix of the user events with how many events it holds, in order."""
    return [
        (found[0], found[1])
        for found in conn.execute(
            "SELECT prefix, count(*) FROM catalog_events GROUP BY prefix ORDER BY prefix"
        )
    ]


def save_events(store: Store, events: Iterable[dict[str, Any]], source: str) -> dict[str, int]:
    """Add or update user events in one transaction: all of them, or none on an error.

    Each event is a dict of columns (slug, prefix?, name, description, payload, schema).
    Returns `{"added", "updated"}`.
    """
    added = updated = 0
    now = now_ms()
    with store.write() as conn:
        for event in events:
            existed = conn.execute(
                "SELECT 1 FROM catalog_events WHERE slug = ?", (event["slug"],)
            ).fetchone()
            conn.execute(
                "INSERT INTO catalog_events (slug, prefix, name, description, payload, schema, "
                "source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (slug) DO UPDATE SET prefix = excluded.prefix, name = excluded.name, "
                "description = excluded.description, payload = excluded.payload, "
                "schema = excluded.schema, source = excluded.source, "
                "updated_at = excluded.updated_at",
                (
                    event["slug"],
                    event.get("prefix", prefix_of(event["slug"])),
                    event["name"],
                    event.get("description", ""),
                    event["payload"],
                    event.get("schema"),
                    source,
                    now,
                    now,
                ),
            )
            if existed:
                updated += 1
            else:
                added += 1
    return {"added": added, "updated": updated}


def update_event(store: Store, slug: str, columns: dict[str, Any]) -> None:
    """Change some fields of a user event."""
    if not columns:
        return
    names = [name for name in ("name", "description", "payload", "schema") if name in columns]
    assignments = ", ".join(f"{name} = ?" for name in names)
    with store.write() as conn:
        conn.execute(
            f"UPDATE catalog_events SET {assignments}, updated_at = ? WHERE slug = ?",  # noqa: S608 (names from a fixed list)
            (*[columns[name] for name in names], now_ms(), slug),
        )


def delete_event(store: Store, slug: str, unless_used: bool = False) -> bool:
    """Delete a user event; False when there was none.

    `unless_used`: a 409 `event_in_use` naming the webhooks subscribed to it instead (checked
    in the same transaction, so none can subscribe in between).
    """
    with store.write() as conn:
        if unless_used:
            users = conn.execute(
                "SELECT id, name FROM webhooks WHERE event = ? ORDER BY id", (slug,)
            ).fetchall()
            if users:
                raise EventInUse(slug, users)
        return conn.execute("DELETE FROM catalog_events WHERE slug = ?", (slug,)).rowcount > 0


class EventInUse(ApiError):
    """A user event that webhooks subscribe to cannot be deleted: 409 naming them."""

    LISTED = 10  # webhooks named in the message; the rest are counted

    def __init__(self, slug: str, users: list[tuple[int, str]]) -> None:
        one = len(users) == 1
        named = ", ".join(f"{webhook_id} ({name})" for webhook_id, name in users[: self.LISTED])
        if len(users) > self.LISTED:
            named += f" and {len(users) - self.LISTED} more"
        them = "it" if one else "them"
        super().__init__(
            409,
            "event_in_use",
            f"Event {slug!r} is used by {len(users)} webhook{'' if one else 's'}: {named}. "
            f"Point {them} at another event, or delete {them}, first.",
        )
