"""Webhooks in the store: check, create, read, change, enable, disable, delete."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from hooklab.sender.catalog import WILDCARD, Catalog
from hooklab.shared.clock import iso, now_ms, readable
from hooklab.shared.errors import ApiError, FieldErrors
from hooklab.shared.own_server import ServerAddress, is_capture_url, points_here, this_server
from hooklab.shared.settings import Settings
from hooklab.shared.signing import (
    PREFIX,
    SCHEMES,
    check_secret,
    generate_secret,
    generate_signing_key,
    public_key,
    secret_key,
)
from hooklab.shared.store import Store, row, row_id, rows
from hooklab.shared.targets import TargetBlocked, check_target

FIELDS = (
    "name",
    "url",
    "event",
    "active",
    "secret",
    "payload_format",
    "timeout_s",
    "signature_scheme",
)
PAYLOAD_FORMATS = ("flat", "envelope")
MAX_NAME = 200
MAX_URL = 2048
MIN_TIMEOUT_S = 0.1
MAX_TIMEOUT_S = 60.0
# Standard Webhooks: a secret carries 24 to 64 bytes. Hooklab takes 16 and more (shared
# signing's check_secret), and at most this: a secret is a key, not a place to store data.
MAX_SECRET_BYTES = 64

# The list and page need counts and the last delivery; one query keeps that cheap.
SELECT = """
SELECT w.*,
  (SELECT count(*) FROM deliveries d WHERE d.webhook_id = w.id) AS delivery_count,
  (SELECT d.id FROM deliveries d WHERE d.webhook_id = w.id ORDER BY d.id DESC LIMIT 1)
    AS last_delivery_id
FROM webhooks w
"""


def json_kind(value: Any) -> str:
    """What a JSON value is, in words, for an error message: `null`, `a number`, `a list`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def event_problem(event: Any, catalog: Catalog) -> str | None:
    """Why `event` cannot be a webhook's event (a slug of the catalog, or "*"), or None."""
    if not isinstance(event, str):
        return f"Event must be an event slug (text) or '*', not {json_kind(event)}."
    if event != WILDCARD and event not in catalog:
        shown = event if len(event) <= 80 else event[:80] + "…"
        return (
            f"Event {shown!r} is not in the catalog: choose one of its events "
            "(GET /api/events lists them) or '*' for all events."
        )
    return None


def secret_problem(secret: Any) -> str | None:
    """Why `secret` cannot be a webhook's whsec_ secret, or None."""
    if not isinstance(secret, str):
        return f"Secret must be text (whsec_ followed by base64), not {json_kind(secret)}."
    # Its length first: a secret of megabytes is refused without decoding it.
    if len(secret) > len(PREFIX) + 4 * (MAX_SECRET_BYTES // 3 + 1):
        return f"Secret: a secret carries at most {MAX_SECRET_BYTES} bytes."
    problem = check_secret(secret)
    if problem:
        return f"Secret: {problem}."
    if len(secret_key(secret)) > MAX_SECRET_BYTES:
        return f"Secret: a secret carries at most {MAX_SECRET_BYTES} bytes."
    return None


def url_problem(
    url: Any, block_private: bool = False, server: ServerAddress | None = None
) -> str | None:
    """Why `url` cannot be a webhook's URL, in words, or None when it can.

    `server`: this server's addresses; a URL there may only be a bin's capture URL.
    """
    if not isinstance(url, str) or not url.strip():
        return "URL is required."
    url = url.strip()
    if len(url) > MAX_URL:
        return f"URL is at most {MAX_URL} characters."
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "http://[::1": an unclosed or invalid bracketed host
        return f"URL is not a valid URL ({exc})."
    if parts.scheme.lower() not in ("http", "https"):
        return "URL must start with http:// or https://."
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "URL may not contain spaces or control characters."
    if not parts.hostname:
        return "URL must name a host, e.g. http://127.0.0.1:8000/b/…"
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "URL has a port that is not a number from 0 to 65535."
    if block_private:
        try:
            check_target(url)
        except TargetBlocked as exc:
            return exc.message
    if server is not None and points_here(url, server) and not is_capture_url(url):
        return (
            "URL points at this Hooklab server's own pages or API: each delivery there would "
            "set off more. To receive webhooks here, use a bin's capture URL (…/b/<bin id>)."
        )
    return None


def check_fields(
    data: Any, catalog: Catalog, settings: Settings, partial: bool = False
) -> dict[str, Any]:
    """Check a create or change request; returns the columns to write or raises FieldErrors."""
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "The request body must be a JSON object.")
    errors: dict[str, str] = {}
    columns: dict[str, Any] = {}
    for unknown in sorted(set(data) - set(FIELDS)):
        errors[unknown] = f"Unknown field {unknown!r}; a webhook has {', '.join(FIELDS)}."
    if not partial:
        for required, label in (("name", "Name"), ("url", "URL"), ("event", "Event")):
            if required not in data:
                errors[required] = f"{label} is required."

    if "name" in data:
        name = data["name"]
        if not isinstance(name, str):
            errors["name"] = f"Name must be text, not {json_kind(name)}."
        elif not name.strip():
            errors["name"] = "Name is required."
        elif len(name.strip()) < 2:
            errors["name"] = "Name must be at least 2 characters."
        elif len(name.strip()) > MAX_NAME:
            errors["name"] = f"Name is at most {MAX_NAME} characters."
        else:
            columns["name"] = name.strip()
    if "url" in data:
        problem = url_problem(data["url"], settings.block_private_targets, this_server(settings))
        if problem:
            errors["url"] = problem
        else:
            columns["url"] = data["url"].strip()
    if "event" in data:
        problem = event_problem(data["event"], catalog)
        if problem:
            errors["event"] = problem
        else:
            columns["event"] = data["event"]
    if "active" in data:
        if not isinstance(data["active"], bool):
            errors["active"] = "active must be true or false."
        else:
            columns["active"] = int(data["active"])
    if "secret" in data and data["secret"] not in (None, ""):
        problem = secret_problem(data["secret"])
        if problem:
            errors["secret"] = problem
        else:
            columns["secret"] = data["secret"]
    elif "secret" in data and partial:
        errors["secret"] = (
            "A secret cannot be removed; for a new one, "
            "use POST /api/webhooks/<id>/regenerate-secret."
        )
    if "payload_format" in data:
        if data["payload_format"] not in PAYLOAD_FORMATS:
            errors["payload_format"] = "Payload format is 'flat' or 'envelope'."
        else:
            columns["payload_format"] = data["payload_format"]
    if "signature_scheme" in data:
        scheme = data["signature_scheme"]
        if not isinstance(scheme, str) or scheme not in SCHEMES:
            errors["signature_scheme"] = (
                "Signature scheme is 'v1' (HMAC), 'v1a' (ed25519) or 'v1 v1a' (both)."
            )
        else:
            columns["signature_scheme"] = scheme
    if "timeout_s" in data:
        timeout = data["timeout_s"]
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not MIN_TIMEOUT_S <= timeout <= MAX_TIMEOUT_S  # first: 10**400 is no float
            or not math.isfinite(timeout)
        ):
            errors["timeout_s"] = (
                f"Timeout is a number of seconds from {MIN_TIMEOUT_S:g} to {MAX_TIMEOUT_S:g}."
            )
        else:
            columns["timeout_s"] = float(timeout)
    if errors:
        raise FieldErrors(errors)
    return columns


def create_webhook(store: Store, columns: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write a new webhook (a secret is generated when none is given); returns its row."""
    now = now_ms()
    values = {
        "name": columns["name"],
        "url": columns["url"],
        "event": columns["event"],
        "active": columns.get("active", 1),
        "secret": columns.get("secret") or generate_secret(),
        "payload_format": columns.get("payload_format", "flat"),
        "timeout_s": columns.get("timeout_s", float(settings.default_timeout_s)),
        "signature_scheme": columns.get("signature_scheme", "v1"),
        "signing_key": generate_signing_key(),
        "created_at": now,
        "updated_at": now,
    }
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    with store.write() as conn:
        webhook_id = conn.execute(
            f"INSERT INTO webhooks ({names}) VALUES ({marks})",  # noqa: S608 - fixed column names
            list(values.values()),
        ).lastrowid
    return require_webhook(store, webhook_id)


def get_webhook(store: Store, webhook_id: int | str) -> dict[str, Any] | None:
    """The row of a webhook (with its delivery count), or None."""
    number = row_id(webhook_id)
    if number is None:
        return None
    return row(store.conn, SELECT + " WHERE w.id = ?", (number,))


def require_webhook(store: Store, webhook_id: int | str) -> dict[str, Any]:
    """The row of a webhook, or a 404 API error."""
    found = get_webhook(store, webhook_id)
    if found is None:
        raise ApiError(404, "webhook_not_found", f"No webhook with id {webhook_id!r}.")
    return found


def also_delivering(store: Store, webhook: dict[str, Any]) -> list[dict[str, Any]]:
    """The other active webhooks that send some of `webhook`'s events to its URL too (a second
    click on "Add", a copy): each such event reaches that URL once per webhook."""
    return rows(
        store.conn,
        "SELECT id, name, event FROM webhooks WHERE url = ? AND id != ? AND active = 1 "
        "AND (event = ? OR event = '*' OR ? = '*') ORDER BY id",
        (webhook["url"], webhook["id"], webhook["event"], webhook["event"]),
    )


def list_webhooks(store: Store) -> list[dict[str, Any]]:
    """Every webhook, newest first."""
    return rows(store.conn, SELECT + " ORDER BY w.id DESC")


def update_webhook(store: Store, webhook_id: int, columns: dict[str, Any]) -> dict[str, Any]:
    """Change a webhook; enabling it again clears the reason it was disabled."""
    changes = dict(columns)
    current = require_webhook(store, webhook_id)
    if changes.get("active") == current["active"]:
        del changes["active"]  # no change: keep the reason it was disabled, if any
    elif changes.get("active") == 1:
        changes.update(consecutive_failures=0, disabled_reason=None, disabled_at=None)
    elif changes.get("active") == 0:
        changes.update(
            disabled_reason=f"Disabled by hand on {readable(now_ms())}.", disabled_at=now_ms()
        )
    if changes:
        changes["updated_at"] = now_ms()
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with store.write() as conn:
            conn.execute(
                f"UPDATE webhooks SET {assignments} WHERE id = ?",  # noqa: S608 - fixed names
                [*changes.values(), webhook_id],
            )
            if changes.get("active") == 0:
                cancel_pending(conn, webhook_id, changes["updated_at"])
    return require_webhook(store, webhook_id)


CANCELLED_BY_DISABLE = "cancelled: the webhook was disabled"


def cancel_pending(conn: Any, webhook_id: int, now: int) -> int:
    """Cancel a disabled webhook's deliveries that wait for a retry, at once (the log said
    "pending, next attempt in 30 min" until then); one being sent right now finishes, and is
    cancelled then instead of retried (sender/delivery.py, `_move_on`)."""
    return conn.execute(
        "UPDATE deliveries SET status = 'cancelled', finished_at = ?, next_attempt_at = NULL, "
        "last_error = ? WHERE webhook_id = ? AND status = 'pending' AND claim_token IS NULL",
        (now, CANCELLED_BY_DISABLE, webhook_id),
    ).rowcount


def regenerate_secret(store: Store, webhook_id: int) -> dict[str, Any]:
    """Give a webhook a new random secret and signing key; the old ones stop at once."""
    return update_webhook(
        store,
        webhook_id,
        {
            "secret": generate_secret(),
            "signing_key": generate_signing_key(),
            "previous_secret": None,
            "previous_signing_key": None,
            "previous_secret_expires_at": None,
        },
    )


def rotate_secret(store: Store, webhook_id: int, grace_s: float) -> dict[str, Any]:
    """A new secret and signing key; the current ones stay valid for `grace_s` more seconds.

    Rotating again within the grace period keeps only the newest previous secret, so at
    most two secrets are valid at once.
    """
    current = require_webhook(store, webhook_id)
    return update_webhook(
        store,
        webhook_id,
        {
            "secret": generate_secret(),
            "signing_key": generate_signing_key(),
            "previous_secret": current["secret"],
            "previous_signing_key": current["signing_key"],
            "previous_secret_expires_at": now_ms() + round(grace_s * 1000),
        },
    )


def previous_valid(webhook: dict[str, Any], now: int | None = None) -> bool:
    """Whether the webhook's previous secret (from a rotation) still signs deliveries."""
    expires = webhook.get("previous_secret_expires_at")
    return (
        bool(webhook.get("previous_secret"))
        and expires is not None
        and ((now_ms() if now is None else now) < expires)
    )


def signing_keys(webhook: dict[str, Any], now: int | None = None) -> list[str]:
    """The keys that sign a delivery now: per scheme the current key, then a valid previous one."""
    scheme = (webhook.get("signature_scheme") or "v1").split()
    rotated = previous_valid(webhook, now)
    keys = []
    if "v1" in scheme:
        keys.append(webhook["secret"])
    if "v1a" in scheme:
        keys.append(webhook["signing_key"])
    if rotated and "v1" in scheme:
        keys.append(webhook["previous_secret"])
    if rotated and "v1a" in scheme and webhook.get("previous_signing_key"):
        keys.append(webhook["previous_signing_key"])
    return keys


def delete_webhook(store: Store, webhook_id: int) -> None:
    """Delete a webhook with its deliveries and their attempts."""
    with store.write() as conn:
        conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
        # Events left without any delivery are of no more use to anyone.
        conn.execute(
            "DELETE FROM events WHERE idempotency_key IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM deliveries d WHERE d.event_id = events.id)"
        )


def webhook_to_json(
    store: Store, webhook: dict[str, Any], catalog: Catalog, with_secret: bool = True
) -> dict[str, Any]:
    """A webhook as the API shows it."""
    last = None
    if webhook.get("last_delivery_id"):
        last = row(
            store.conn,
            "SELECT id, status, last_status_code, last_error, created_at, finished_at, test "
            "FROM deliveries WHERE id = ?",
            (webhook["last_delivery_id"],),
        )
    body = {
        "id": webhook["id"],
        "name": webhook["name"],
        "url": webhook["url"],
        "event": webhook["event"],
        "event_name": catalog.display_name(webhook["event"]),
        "active": bool(webhook["active"]),
        "payload_format": webhook["payload_format"],
        "timeout_s": webhook["timeout_s"],
        "created_at": iso(webhook["created_at"]),
        "updated_at": iso(webhook["updated_at"]),
        "disabled_reason": webhook["disabled_reason"],
        "disabled_at": iso(webhook["disabled_at"]),
        "consecutive_failures": webhook["consecutive_failures"],
        "delivery_count": webhook.get("delivery_count", 0),
        "last_status": _last_status(last),
        "last_delivery": None
        if last is None
        else {
            "id": last["id"],
            "status": last["status"],
            "status_code": last["last_status_code"],
            "error": last["last_error"],
            "test": bool(last["test"]),
            "created_at": iso(last["created_at"]),
            "finished_at": iso(last["finished_at"]),
        },
    }
    scheme = webhook.get("signature_scheme") or "v1"
    rotated = previous_valid(webhook)
    body["signature_scheme"] = scheme
    body["previous_secret_expires_at"] = (
        iso(webhook["previous_secret_expires_at"]) if rotated else None
    )
    if "v1a" in scheme.split():
        # The public key is no secret: the receiver needs it to check v1a signatures.
        body["public_key"] = public_key(webhook["signing_key"])
        if rotated and webhook.get("previous_signing_key"):
            body["previous_public_key"] = public_key(webhook["previous_signing_key"])
    if with_secret:
        body["secret"] = webhook["secret"]
        if rotated:
            body["previous_secret"] = webhook["previous_secret"]
    return body


def _last_status(last: dict[str, Any] | None) -> str | None:
    """The last delivery in a word or two: "200", "HTTP 500", "connection refused", "pending"."""
    if last is None:
        return None
    if last["status"] == "succeeded" and last["last_status_code"] is not None:
        return str(last["last_status_code"])
    if last["last_error"]:
        return last["last_error"].split(":", 1)[0]
    return last["status"]
