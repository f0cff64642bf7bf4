"""Replay with edits: send a captured request again, changed and re-signed, and keep the answer.

See ../shared/design.md, "Replay with edits". Nothing edited: the captured method, headers (less
hop-by-hop, Host and Content-Length) and body bytes go out as they came in. The send follows the
outgoing-request policy (shared/targets.py), never follows a redirect, and always carries a
Content-Length body.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from hooklab.bin_server.rules import HEADER_VALUE, HEADER_VALUE_CHARS
from hooklab.shared.clock import iso, now_ms
from hooklab.shared.errors import ApiError
from hooklab.shared.own_server import ServerAddress, is_capture_url, points_here
from hooklab.shared.resend import resend_headers, resent_pairs, send_as_captured, with_subpath
from hooklab.shared.signing import check_secret, sign
from hooklab.shared.store import Store, rows
from hooklab.shared.targets import TargetBlocked, check_target, guarded_session

FIELDS = ("url", "method", "headers", "body", "body_base64", "with_path", "resign")
MAX_URL = 2048
MAX_HEADERS = 200
KEPT_PER_REQUEST = 100  # replays kept per captured request, the oldest dropped
# An HTTP method or header name (fullmatch: `$` would let a trailing line break through).
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


@dataclass
class ReplayPlan:
    """A checked replay request: what to send where, and what was changed."""

    url: str
    method: str
    headers: list[list[str]]
    body: bytes
    edited: list[str] = field(default_factory=list)
    secret: str | None = None


def _invalid(field_name: str, message: str) -> ApiError:
    return ApiError(422, "invalid", message, field_name)


def new_message_id() -> str:
    """A new Standard Webhooks message id, `msg_` and 128 random bits."""
    return "msg_" + base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def plan(data: dict, captured_row: dict, server: ServerAddress | None = None) -> ReplayPlan:
    """Check a replay request against the captured request; 422 naming the first bad field.

    `server`: this server's addresses; a replay there may only go to a bin's capture URL.
    """
    for name in data:
        if name not in FIELDS:
            raise _invalid(name, f"Unknown field {name!r}; a replay takes {', '.join(FIELDS)}.")
    url = data.get("url")
    if not isinstance(url, str) or not url.strip():
        raise _invalid("url", "url is required: where to send the request.")
    url = url.strip()
    if len(url) > MAX_URL:
        raise _invalid("url", f"url is at most {MAX_URL} characters.")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # "http://[::1", "http://[zz]/": urlsplit refuses the host
        message = "url has a host that is not valid (in brackets: an IPv6 address, [::1])."
        raise _invalid("url", message) from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise _invalid("url", "url must be http:// or https:// with a host.")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise _invalid("url", "url may not contain spaces or control characters.")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _invalid("url", "url has a port that is not a number from 0 to 65535.") from None
    if server is not None and points_here(url, server) and not is_capture_url(url):
        raise _invalid(
            "url",
            "url points at this Hooklab server's own pages or API; to replay into a bin of "
            "this server, use its capture URL (…/b/<bin id>).",
        )

    with_path = data.get("with_path", False)
    if not isinstance(with_path, bool):
        raise _invalid("with_path", "with_path must be true or false.")
    if with_path:
        url = with_subpath(url, captured_row["subpath"] or "")
        if captured_row["query_string"]:
            url += "?" + captured_row["query_string"]

    captured_method = captured_row["method"]
    method = data.get("method", captured_method)
    if not isinstance(method, str) or not TOKEN.fullmatch(method):
        raise _invalid("method", "method must be an HTTP method, e.g. POST.")

    captured_headers = resent_pairs(json.loads(captured_row["headers"]))
    headers = captured_headers
    if "headers" in data:
        headers = _check_headers(data["headers"])

    body = _check_body(data, captured_row)

    secret = None
    if "resign" in data and data["resign"] is not None:
        secret = _check_resign(data["resign"])

    edited = []
    if method != captured_method:
        edited.append("method")
    if resent_pairs(headers) != captured_headers:
        edited.append("headers")
    if body != (captured_row["body"] or b""):
        edited.append("body")
    return ReplayPlan(url, method, resent_pairs(headers), body, edited, secret)


def _check_headers(value: Any) -> list[list[str]]:
    if not isinstance(value, list) or len(value) > MAX_HEADERS:
        raise _invalid(
            "headers", f"headers must be a list of [name, value] pairs (at most {MAX_HEADERS})."
        )
    pairs = []
    for index, pair in enumerate(value):
        where = f"headers[{index}]"
        is_pair = isinstance(pair, list) and len(pair) == 2
        if not (is_pair and all(isinstance(p, str) for p in pair)):
            raise _invalid(where, f"{where} must be a [name, value] pair of strings.")
        # Spaces and tabs around a value are not part of it (RFC 9110 5.5); requests refuses
        # a value that starts with one.
        name, header_value = pair[0].strip(), pair[1].strip(" \t")
        if not TOKEN.fullmatch(name):
            raise _invalid(where, f"{where}: {name!r} is not a header name.")
        if not HEADER_VALUE.fullmatch(header_value):
            # http.client sends values as Latin-1: U+0100 and up cannot go on the wire, and
            # control characters would be refused by the receiver (or split the request).
            raise _invalid(where, f"{where}: a header value may only hold {HEADER_VALUE_CHARS}.")
        if header_value[:1].isspace():  # U+0085 or U+00A0: requests refuses it first
            raise _invalid(where, f"{where}: a header value may not start with a space character.")
        pairs.append([name, header_value])
    return pairs


def _check_body(data: dict, captured_row: dict) -> bytes:
    if data.get("body") is not None and data.get("body_base64") is not None:
        raise _invalid("body", "Give body or body_base64, not both.")
    if data.get("body") is not None:
        if not isinstance(data["body"], str):
            raise _invalid("body", "body must be text (use body_base64 for bytes).")
        return data["body"].encode("utf-8")
    if data.get("body_base64") is not None:
        try:
            return base64.b64decode(data["body_base64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise _invalid("body_base64", "body_base64 is not valid base64.") from None
    if captured_row["truncated"]:
        raise _invalid(
            "body",
            "The captured body was cut at the size limit, so it cannot be sent as it came: "
            "give a body.",
        )
    return captured_row["body"] or b""


def _check_resign(value: Any) -> str:
    if not isinstance(value, dict):
        raise _invalid("resign", 'resign must be an object: {"secret": "whsec_…"}.')
    for name in value:
        if name != "secret":
            raise _invalid(f"resign.{name}", f"Unknown field resign.{name}; resign takes secret.")
    secret = value.get("secret")
    problem = check_secret(secret) if isinstance(secret, str) else "a secret is required"
    if problem:
        raise _invalid("resign.secret", f"resign.secret: {problem}.")
    return secret


def resign(headers: list[list[str]], body: bytes, secret: str, now_s: int) -> list[list[str]]:
    """The headers with a new webhook-timestamp and webhook-signature over `body`.

    The webhook-id stays the one sent (a new `msg_…` when there is none), so a receiver that
    remembers ids to refuse duplicates sees the same message.
    """
    values = {name.lower(): value for name, value in headers}
    msg_id = values.get("webhook-id") or new_message_id()
    new = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(now_s),
        "webhook-signature": sign(secret, msg_id, now_s, body),
    }
    out = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in new:
            if lowered in values:  # the first of a repeated name takes the new value
                out.append([name, new[lowered]])
                del values[lowered]
            continue
        out.append([name, value])
    present = {name.lower() for name, _ in out}
    out.extend([name, value] for name, value in new.items() if name not in present)
    return out


def send(replay: ReplayPlan, timeout_s: float, body_cap: int, block_private: bool) -> dict:
    """Send the replay; the answer `{status_code, headers, body_text|body_base64, duration_ms,
    error}` (an error in words, and no status, when there was no answer)."""
    headers = replay.headers
    if replay.secret is not None:
        headers = resign(headers, replay.body, replay.secret, int(time.time()))
    answer: dict[str, Any] = {
        "status_code": None,
        "headers": [],
        "body_text": None,
        "duration_ms": 0,
        "error": None,
    }
    session = guarded_session() if block_private else requests.Session()
    session.trust_env = False  # no proxy or .netrc credentials from the environment
    session.headers.clear()  # only the request's own headers
    started = time.monotonic()
    try:
        if block_private:
            check_target(replay.url)
        # The method as captured (a `get` goes out as `get`), as the replay's history says.
        with send_as_captured(
            session, replay.method, replay.url, replay.body, resend_headers(headers), timeout_s
        ) as response:
            body = _read_capped(response, body_cap)
            answer["status_code"] = response.status_code
            answer["headers"] = [list(pair) for pair in response.raw.headers.items()]
        try:
            answer["body_text"] = body.decode("utf-8")
        except UnicodeDecodeError:
            del answer["body_text"]
            answer["body_base64"] = base64.b64encode(body).decode("ascii")
    except TargetBlocked as exc:
        answer["error"] = exc.message
    except requests.Timeout:
        answer["error"] = f"no answer within {timeout_s:g} s"
    except requests.ConnectionError as exc:
        answer["error"] = f"cannot connect to {urlsplit(replay.url).netloc}: {_reason(exc)}"
    except requests.RequestException as exc:
        answer["error"] = f"the request failed: {_reason(exc)}"
    finally:
        session.close()
    answer["duration_ms"] = round((time.monotonic() - started) * 1000)
    return answer


def _read_capped(response: requests.Response, cap: int) -> bytes:
    """At most `cap` bytes of the answer's body (a receiver cannot fill the memory)."""
    chunks, size = [], 0
    for chunk in response.iter_content(16 * 1024):
        chunks.append(chunk[: cap - size])
        size += len(chunks[-1])
        if size >= cap:
            break
    return b"".join(chunks)


def _reason(exc: BaseException) -> str:
    # requests nests the cause several levels deep; the innermost message says what happened.
    while exc.__context__ is not None and str(exc.__context__):
        exc = exc.__context__
    if isinstance(exc, TargetBlocked):
        return exc.message
    return str(exc).split(": ", 1)[-1] or type(exc).__name__


def record(store: Store, request_id: int, replay: ReplayPlan, answer: dict) -> dict:
    """Keep a replay this server sent on its captured request; returns the `replays` entry."""
    return _keep(
        store,
        request_id,
        {
            "url": replay.url,
            "method": replay.method,
            "edited": json.dumps(replay.edited),
            "resigned": int(replay.secret is not None),
            "status_code": answer["status_code"],
            "duration_ms": answer["duration_ms"],
            "error": answer["error"],
            "sent_from": "server",
        },
    )


REPORTED_FIELDS = ("url", "method", "status_code", "duration_ms", "error")
MAX_REPORTED_URL = 8192
MAX_REPORTED_ERROR = 2000
MAX_REPORTED_DURATION_MS = 24 * 3600 * 1000


def record_reported(store: Store, request_id: int, data: dict) -> dict:
    """Keep a replay a client sent itself (an unedited `hooklab replay`); returns the entry.

    `{"url", "method", "status_code" (100-599, or null when it failed), "duration_ms",
    "error"?}`: checked field by field (422 naming the field) before anything is written.
    """
    unknown = sorted(set(data) - set(REPORTED_FIELDS))
    if unknown:
        raise _invalid(unknown[0], f"Unknown field {unknown[0]!r}.")
    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise _invalid("url", "url must be the http:// or https:// URL the replay went to.")
    if len(url) > MAX_REPORTED_URL:
        raise _invalid("url", f"url must be at most {MAX_REPORTED_URL} characters.")
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid("url", "url must be the http:// or https:// URL the replay went to.")
    method = data.get("method")
    if not isinstance(method, str) or not TOKEN.fullmatch(method):
        raise _invalid("method", "method must be an HTTP method (letters, digits, -).")
    status = data.get("status_code")
    if status is not None and (
        not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599
    ):
        raise _invalid("status_code", "status_code must be a number from 100 to 599, or null.")
    duration = data.get("duration_ms")
    if (
        not isinstance(duration, int)
        or isinstance(duration, bool)
        or not 0 <= duration <= MAX_REPORTED_DURATION_MS
    ):
        raise _invalid(
            "duration_ms", f"duration_ms must be a number from 0 to {MAX_REPORTED_DURATION_MS}."
        )
    error = data.get("error")
    if error is not None and not isinstance(error, str):
        raise _invalid("error", "error must be text, or null.")
    if error is not None and len(error) > MAX_REPORTED_ERROR:
        raise _invalid("error", f"error must be at most {MAX_REPORTED_ERROR} characters.")
    if status is None and not error:
        raise _invalid("status_code", "Give the status_code it was answered, or the error.")
    return _keep(
        store,
        request_id,
        {
            "url": url,
            "method": method,
            "edited": "[]",
            "resigned": 0,
            "status_code": status,
            "duration_ms": duration,
            "error": error or None,
            "sent_from": "cli",
        },
    )


def _keep(store: Store, request_id: int, entry: dict) -> dict:
    """Write a `replays` entry (the newest KEPT_PER_REQUEST stay); returns it as the API shows."""
    try:
        _insert(store, request_id, entry)
    except sqlite3.IntegrityError:  # the request was evicted or deleted a moment ago
        raise ApiError(
            404, "request_not_found", f"Captured request {request_id} is gone (evicted or deleted)."
        ) from None
    kept = replays_of(store.conn, request_id)
    if not kept:  # deleted with its request just after the write
        raise ApiError(404, "request_not_found", f"Captured request {request_id} is gone.")
    return kept[0]


def _insert(store: Store, request_id: int, entry: dict) -> None:
    with store.write() as conn:
        conn.execute(
            "INSERT INTO replays (request_id, at, url, method, edited, resigned, status_code, "
            "duration_ms, error, sent_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request_id,
                now_ms(),
                entry["url"],
                entry["method"],
                entry["edited"],
                entry["resigned"],
                entry["status_code"],
                entry["duration_ms"],
                entry["error"],
                entry["sent_from"],
            ),
        )
        conn.execute(
            "DELETE FROM replays WHERE request_id = ? AND id NOT IN "
            "(SELECT id FROM replays WHERE request_id = ? ORDER BY id DESC LIMIT ?)",
            (request_id, request_id, KEPT_PER_REQUEST),
        )


def replays_of(conn: sqlite3.Connection, request_id: int) -> list[dict]:
    """The replays of a captured request, newest first."""
    found = rows(
        conn,
        "SELECT at, url, method, edited, resigned, status_code, duration_ms, error, sent_from "
        "FROM replays WHERE request_id = ? ORDER BY id DESC",
        (request_id,),
    )
    for entry in found:
        entry["at"] = iso(entry["at"])
        entry["edited"] = json.loads(entry["edited"])
        entry["resigned"] = bool(entry["resigned"])
    return found
