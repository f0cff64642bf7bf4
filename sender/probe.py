"""Probing a receiver: send it well- and badly-signed requests and say how it answered.

Each check sends one catalog event (fresh `webhook-id` each) shaped so that a receiver that
follows the Standard Webhooks rules answers in one way: a 2xx for what it must accept, a 4xx
for what it must refuse. Requests go out like deliveries (same session kind, redirects never
followed, a timeout each); a receiver that is down or hangs fails each check with its error.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests

from hooklab.sender.attempt import USER_AGENT, Outcome, new_session, perform
from hooklab.sender.catalog import WILDCARD, Catalog
from hooklab.sender.delivery import deadlines
from hooklab.sender.firing import new_message_id, render_body
from hooklab.sender.webhooks import (
    MAX_TIMEOUT_S,
    MIN_TIMEOUT_S,
    require_webhook,
    signing_keys,
    url_problem,
)
from hooklab.shared.clock import now_ms
from hooklab.shared.errors import ApiError
from hooklab.shared.own_server import this_server
from hooklab.shared.params import shown
from hooklab.shared.settings import Settings
from hooklab.shared.signing import (
    SIGNING_PREFIX,
    check_signing_secret,
    generate_secret,
    generate_signing_key,
    sign_all,
)
from hooklab.shared.store import Store

SKEW_S = 10 * 60  # how far the stale and future timestamps are from now
EXTRA_FIELD = "hooklab_probe_extra"
ACCEPT = "2xx"
REFUSE = "4xx"
DEDUP_NOTE = (
    "Whether the receiver then skips the repeat (de-duplication) cannot be seen from outside: "
    "both answers are 2xx either way."
)

# Each check, in order: its name, what a correct receiver answers, and what it does in words.
CHECKS: list[tuple[str, str, str]] = [
    ("valid_signature", ACCEPT, "accepts a correctly signed event with a 2xx"),
    ("wrong_signature", REFUSE, "refuses a signature made with another secret with a 4xx"),
    ("missing_signature", REFUSE, "refuses a request without webhook-signature with a 4xx"),
    ("missing_id", REFUSE, "refuses a request without webhook-id with a 4xx"),
    ("tampered_body", REFUSE, "refuses a body changed by one byte after signing with a 4xx"),
    ("stale_timestamp", REFUSE, "refuses a timestamp 10 minutes old with a 4xx (replays)"),
    ("future_timestamp", REFUSE, "refuses a timestamp 10 minutes ahead with a 4xx"),
    (
        "rotated_signatures",
        ACCEPT,
        "accepts a header with two signatures when one of them is right (a secret rotation)",
    ),
    ("repeated_id", ACCEPT, "answers 2xx to the same webhook-id sent twice. " + DEDUP_NOTE),
    ("extra_field", ACCEPT, "accepts a payload with one field it does not know with a 2xx"),
    ("answer_time", "", "answers every request within the timeout"),
]
NAMES = [name for name, _, _ in CHECKS]


@dataclass
class Probe:
    """What to probe: where, with which keys, which body, and how long to wait for each answer."""

    url: str
    keys: list[str]  # whsec_ and/or whsk_: what a real delivery would be signed with
    event: str
    payload: dict[str, Any]
    timeout_s: float
    body_cap: int = 4096


@dataclass
class _Request:
    body: bytes
    headers: dict[str, str]


def tamper(body: bytes) -> bytes:
    """The body with one byte changed inside a JSON string, so it is still valid JSON."""
    in_string = False
    index = 0
    while index < len(body):
        char = chr(body[index])
        if in_string and char == "\\":
            # Pass over the escape whole: \uXXXX is six bytes, any other two.
            index += 6 if body[index + 1 : index + 2] == b"u" else 2
            continue
        if char == '"':
            in_string = not in_string
        elif in_string and char.isascii() and char.isalnum():
            swapped = {"z": "a", "Z": "A", "9": "0"}.get(char, chr(body[index] + 1))
            return body[:index] + swapped.encode() + body[index + 1 :]
        index += 1
    # No letter in any string: change the last byte (the body is then no longer JSON).
    return body[:-1] + bytes([body[-1] ^ 1]) if body else b" "


def _other_keys(keys: list[str]) -> list[str]:
    """Keys of the same kinds as `keys`, but made up: their signatures are well-formed and wrong."""
    return [
        generate_signing_key() if k.startswith(SIGNING_PREFIX) else generate_secret() for k in keys
    ]


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _request(
    probe: Probe,
    name: str,
    body: bytes | None = None,
    *,
    keys: list[str] | None = None,
    timestamp: int | None = None,
    sign_body: bytes | None = None,
) -> _Request:
    """One probe request: the event signed with `keys` (default: the probe's) over `sign_body`
    (default: the body sent), under a fresh webhook-id."""
    body = _body(probe.payload) if body is None else body
    msg_id = new_message_id()
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_all(
            probe.keys if keys is None else keys,
            msg_id,
            timestamp,
            body if sign_body is None else sign_body,
        ),
        "X-Hooklab-Event": probe.event,
        "X-Hooklab-Probe": name,
    }
    return _Request(body, headers)


def _requests_for(probe: Probe) -> dict[str, list[_Request]]:
    """The request(s) each check sends."""
    now = int(time.time())
    body = _body(probe.payload)
    missing_signature = _request(probe, "missing_signature")
    del missing_signature.headers["webhook-signature"]
    missing_id = _request(probe, "missing_id")
    del missing_id.headers["webhook-id"]
    rotated = _request(probe, "rotated_signatures", keys=[*_other_keys(probe.keys), *probe.keys])
    repeated = _request(probe, "repeated_id")
    extra = {**probe.payload, EXTRA_FIELD: "a field the receiver does not know"}
    return {
        "valid_signature": [_request(probe, "valid_signature")],
        "wrong_signature": [_request(probe, "wrong_signature", keys=_other_keys(probe.keys))],
        "missing_signature": [missing_signature],
        "missing_id": [missing_id],
        "tampered_body": [_request(probe, "tampered_body", tamper(body), sign_body=body)],
        "stale_timestamp": [_request(probe, "stale_timestamp", timestamp=now - SKEW_S)],
        "future_timestamp": [_request(probe, "future_timestamp", timestamp=now + SKEW_S)],
        "rotated_signatures": [rotated],
        # The identical request twice: same id, timestamp, signature and body.
        "repeated_id": [repeated, repeated],
        "extra_field": [_request(probe, "extra_field", _body(extra))],
    }


def _answered(outcome: Outcome) -> str:
    """What came back, in a few words: "HTTP 200", or the error."""
    if outcome.status_code is None:
        return outcome.error or "no answer"
    if 300 <= outcome.status_code < 400:
        return outcome.error or f"HTTP {outcome.status_code}: a redirect, not followed"
    return f"HTTP {outcome.status_code}"


def _judge(name: str, wanted: str, expected: str, outcomes: list[Outcome]) -> dict[str, Any]:
    """One check's result from the answers to its request(s)."""
    error = None
    for number, outcome in enumerate(outcomes, 1):
        code = outcome.status_code
        which = f"the {'first' if number == 1 else 'second'} request: " if len(outcomes) > 1 else ""
        if code is None or 300 <= code < 400:
            error = which + _answered(outcome)
        elif wanted == ACCEPT and not 200 <= code < 300:
            error = f"{which}answered HTTP {code}, not a 2xx"
        elif wanted == REFUSE and not 400 <= code < 500:
            error = f"{which}answered HTTP {code}, not a 4xx" + (
                ": it accepted what it should refuse" if 200 <= code < 300 else ""
            )
        if error:
            break
    last = outcomes[-1]
    return {
        "name": name,
        "ok": error is None,
        "status_code": last.status_code,
        "duration_ms": sum(o.duration_ms for o in outcomes),
        "error": error,
        "expected": expected,
    }


def _answer_time(outcomes: list[Outcome], timeout_s: float, expected: str) -> dict[str, Any]:
    """The answer_time check: every request answered (any status) within the timeout."""
    slowest = max(outcomes, key=lambda o: o.duration_ms)
    late = [o for o in outcomes if o.status_code is None]
    error = None
    if late:
        error = f"{len(late)} of {len(outcomes)} requests got no answer ({_answered(late[0])})"
    elif slowest.duration_ms > timeout_s * 1000:
        error = f"the slowest answer took {slowest.duration_ms} ms, over {timeout_s:g} s"
    return {
        "name": "answer_time",
        "ok": error is None,
        "status_code": None,  # a time, not an answer of its own
        "duration_ms": slowest.duration_ms,
        "error": error,
        "expected": f"{expected} ({timeout_s:g} s); the slowest answer is shown",
    }


def run_probe(probe: Probe, session: requests.Session) -> dict[str, Any]:
    """Run every check against the receiver; returns `{"ok", "checks": [...]}` in CHECKS order."""
    planned = _requests_for(probe)
    checks = []
    every: list[Outcome] = []
    for name, wanted, expected in CHECKS:
        if name == "answer_time":
            checks.append(_answer_time(every, probe.timeout_s, expected))
            continue
        outcomes = [
            perform(session, probe.url, r.body, r.headers, probe.timeout_s, probe.body_cap)
            for r in planned[name]
        ]
        every.extend(outcomes)
        checks.append(_judge(name, wanted, expected, outcomes))
    return {"ok": all(c["ok"] for c in checks), "checks": checks}


def _payload(catalog: Catalog, slug: str | None, payload_format: str = "flat") -> tuple[str, dict]:
    """The event the checks send (`slug`, else the catalog's first) and its payload."""
    if slug in (None, WILDCARD):
        slug = next(iter(catalog)).slug
    event = catalog.get(slug)
    if event is None:
        raise ApiError(
            422, "invalid", f"No event {slug!r} in the catalog; see GET /api/events.", "event"
        )
    body = render_body(event.example(), slug, now_ms(), payload_format)
    return slug, json.loads(body)


def _send(store: Store, settings: Settings, probe: Probe) -> dict[str, Any]:
    # The same session kind as deliveries: the private-target block and the attempt deadline.
    with new_session(deadlines(store), settings.block_private_targets) as session:
        report = run_probe(probe, session)
    return {"url": probe.url, "event": probe.event, "timeout_s": probe.timeout_s, **report}


WEBHOOK_PROBE_FIELDS = ("event", "timeout_s")


def _refuse_unknown(data: Any, fields: tuple[str, ...], what: str) -> None:
    """A 422 naming the first field of `data` that `what` does not take."""
    unknown = sorted(set(data) - set(fields))
    if unknown:
        name = unknown[0]
        raise ApiError(
            422, "invalid", f"Unknown field {shown(name)}; {what} takes {', '.join(fields)}.", name
        )


def _checked_event(data: dict) -> str | None:
    event = data.get("event")
    if event is not None and not isinstance(event, str):
        raise ApiError(422, "invalid", "event must be an event slug.", "event")
    return event


def _checked_timeout(data: dict, default: float) -> float:
    timeout = data.get("timeout_s", default)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not MIN_TIMEOUT_S <= timeout <= MAX_TIMEOUT_S
    ):
        raise ApiError(
            422,
            "invalid",
            f"timeout_s is a number of seconds from {MIN_TIMEOUT_S:g} to {MAX_TIMEOUT_S:g}.",
            "timeout_s",
        )
    return float(timeout)


def probe_webhook(
    store: Store, settings: Settings, catalog: Catalog, webhook_id: int | str, data: dict
) -> dict[str, Any]:
    """Probe a webhook's receiver with its URL, signing keys and payload format:
    `{event?, timeout_s?}` (the webhook's event and timeout when not given; bad fields: 422)."""
    webhook = require_webhook(store, webhook_id)
    _refuse_unknown(data, WEBHOOK_PROBE_FIELDS, "a webhook's probe")
    event = _checked_event(data)
    timeout_s = _checked_timeout(data, webhook["timeout_s"])
    slug, payload = _payload(catalog, event or webhook["event"], webhook["payload_format"])
    probe = Probe(
        url=webhook["url"],
        # Only the current keys: the rotated_signatures check brings its own wrong one.
        keys=signing_keys({**webhook, "previous_secret": None}),
        event=slug,
        payload=payload,
        timeout_s=timeout_s,
    )
    return _send(store, settings, probe)


PROBE_FIELDS = ("url", "secret", "event", "timeout_s")


def probe_url(store: Store, settings: Settings, catalog: Catalog, data: dict) -> dict[str, Any]:
    """Probe any receiver: `{url, secret, event?, timeout_s?}` (bad fields are a 422)."""
    _refuse_unknown(data, PROBE_FIELDS, "a probe")
    problem = url_problem(data.get("url"), settings.block_private_targets, this_server(settings))
    if problem:
        raise ApiError(422, "invalid", problem, "url")
    secret = data.get("secret")
    problem = "a secret is required" if secret in (None, "") else check_signing_secret(secret)
    if problem:
        raise ApiError(422, "invalid", f"Secret: {problem}.", "secret")
    event = _checked_event(data)
    timeout = _checked_timeout(data, settings.default_timeout_s)
    slug, payload = _payload(catalog, event)
    probe = Probe(data["url"].strip(), [secret], slug, payload, timeout)
    return _send(store, settings, probe)
