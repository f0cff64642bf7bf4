"""Delivering: claim due deliveries, send them, record every attempt, retry or give up.

Workers claim due deliveries inside one write transaction (BEGIN IMMEDIATE), with a claim
that expires: two workers never send the same attempt, and a worker that dies mid-attempt
leaves a claim that another worker picks up once it expires (the lost attempt is logged as
abandoned). Test sends and redeliveries run in the request thread and wait for the answer.

A pool of workers shares its transactions: one claim takes several due deliveries (the rest
wait, claimed, for the pool's next free worker) and one recorder thread writes the outcomes
that arrived together in one transaction. With 16 workers and two transactions per delivery,
the workers spent a quarter of their time waiting their turn to write (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from hooklab.sender.attempt import Outcome, delivery_headers, new_session, perform
from hooklab.sender.catalog import WILDCARD, Catalog
from hooklab.sender.deadline import Watchdog
from hooklab.sender.firing import new_message_id, render_body
from hooklab.sender.retention import prune
from hooklab.sender.webhooks import (
    CANCELLED_BY_DISABLE,
    MAX_TIMEOUT_S,
    cancel_pending,
    require_webhook,
    signing_keys,
)
from hooklab.shared.clock import now_ms, readable
from hooklab.shared.errors import ApiError
from hooklab.shared.notify import Notifier
from hooklab.shared.settings import Settings
from hooklab.shared.store import Store, is_busy, row, row_id, rows

log = logging.getLogger("hooklab.sender")

POLL_S = 1.0  # how often the idle pool looks at the store (deliveries fired by other processes)
IDLE_S = 30.0  # an idle worker other than the poller: nudged when there is work, else this often
CLAIM_MARGIN_S = 5.0  # a claim outlives the attempt's timeout by at least this
CLAIM_BATCH = 4  # due deliveries a pool's worker claims in one transaction
RECORD_BATCH = 64  # outcomes the pool's recorder writes in one transaction
BUSY_RETRY_S = 1.0  # the recorder's pause before it tries again a write the database refused
ABANDONED = "abandoned"
INTERRUPTED = "interrupted"
PRUNE_EVERY_S = 600.0  # the delivery log is pruned by age this often (and once at start)

# The keys are read when an attempt starts: a rotation applies from the next attempt on.
CLAIM_DUE = """
SELECT d.id, d.claim_token, d.message_id, d.event, d.body, d.test, d.scheduled_attempts,
       w.id AS webhook_id, w.url, w.timeout_s, w.active,
       w.secret, w.signature_scheme, w.signing_key, w.previous_secret, w.previous_signing_key,
       w.previous_secret_expires_at
FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
WHERE d.status = 'pending' AND d.next_attempt_at <= ?
  AND (d.claim_expires_at IS NULL OR d.claim_expires_at <= ?)
ORDER BY d.next_attempt_at, d.id
LIMIT ?
"""

DELIVERY_WITH_WEBHOOK = """
SELECT d.id, d.claim_token, d.message_id, d.event, d.body, d.test, d.scheduled_attempts,
       d.status, w.id AS webhook_id, w.url, w.timeout_s, w.active,
       w.secret, w.signature_scheme, w.signing_key, w.previous_secret, w.previous_signing_key,
       w.previous_secret_expires_at
FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
WHERE d.id = ?
"""


@dataclass
class Claim:
    """One attempt a worker (or a request thread) holds: what to send, and where to record it."""

    delivery_id: int
    attempt_id: int
    number: int
    trigger: str  # scheduled, manual (a redelivery someone asked for) or test
    token: str | None
    message_id: str
    event: str
    body: str
    test: bool
    webhook_id: int
    url: str
    keys: list[str]  # one signature each (see webhooks.signing_keys)
    timeout_s: float
    expires_at: int | None = None  # when the claim lapses (ms), for a scheduled attempt


def _mark_abandoned(conn, delivery_id: int, now: int) -> None:
    conn.execute(
        "UPDATE attempts SET finished_at = ?, ok = 0, error_kind = ?, error = ? "
        "WHERE delivery_id = ? AND finished_at IS NULL",
        (
            now,
            ABANDONED,
            "abandoned: the sender stopped before recording an answer (its claim expired)",
            delivery_id,
        ),
    )


def _start_attempt(conn, found: dict, trigger: str, worker: str, token: str | None) -> Claim:
    number = conn.execute(
        "SELECT coalesce(max(number), 0) + 1 FROM attempts WHERE delivery_id = ?", (found["id"],)
    ).fetchone()[0]
    attempt_id = conn.execute(
        "INSERT INTO attempts (delivery_id, number, trigger, worker, started_at, url) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (found["id"], number, trigger, worker, now_ms(), found["url"]),
    ).lastrowid
    return Claim(
        delivery_id=found["id"],
        attempt_id=attempt_id,
        number=number,
        trigger=trigger,
        token=token,
        message_id=found["message_id"],
        event=found["event"],
        body=found["body"],
        test=bool(found["test"]),
        webhook_id=found["webhook_id"],
        url=found["url"],
        keys=signing_keys(found),
        timeout_s=found["timeout_s"],
    )


def claim_due(store: Store, settings: Settings, worker: str) -> Claim | None | bool:
    """Claim the next due delivery: a Claim, None when nothing is due, False after housekeeping.

    False means a delivery was taken off the queue without sending (its webhook was disabled
    meanwhile); the caller should simply look again.
    """
    claims = claim_batch(store, settings, worker, 1)
    if claims is None:
        return None
    return claims[0] if claims else False


def claim_batch(store: Store, settings: Settings, worker: str, limit: int) -> list[Claim] | None:
    """Claim up to `limit` due deliveries in one transaction; None when nothing is due.

    An empty list means the due deliveries were taken off the queue without sending (their
    webhook was disabled meanwhile): look again.
    """
    now = now_ms()
    # A plain read first: idle workers poll, and must not take the write lock for nothing.
    if row(store.conn, CLAIM_DUE, (now, now, 1)) is None:
        return None
    claims: list[Claim] = []
    with store.write() as conn:
        now = now_ms()
        found = rows(conn, CLAIM_DUE, (now, now, limit))
        if not found:
            return None
        for due in found:
            if due["claim_token"] is not None:
                _mark_abandoned(conn, due["id"], now)
            if not due["active"]:
                conn.execute(
                    "UPDATE deliveries SET status = 'cancelled', finished_at = ?, "
                    "next_attempt_at = NULL, claim_token = NULL, claim_expires_at = NULL, "
                    "last_error = ? WHERE id = ?",
                    (now, "cancelled: the webhook was disabled before this attempt", due["id"]),
                )
                continue
            token = secrets.token_hex(8)
            hold_s = max(settings.claim_timeout_s, due["timeout_s"] + CLAIM_MARGIN_S)
            expires_at = now + int(hold_s * 1000)
            conn.execute(
                "UPDATE deliveries SET claim_token = ?, claim_expires_at = ?, "
                "scheduled_attempts = scheduled_attempts + 1 WHERE id = ?",
                (token, expires_at, due["id"]),
            )
            claim = _start_attempt(conn, due, "scheduled", worker, token)
            claim.expires_at = expires_at
            claims.append(claim)
    return claims


def renew_claim(store: Store, settings: Settings, claim: Claim) -> bool:
    """Extend a claim that waited before its send; False when it lapsed and is another's now."""
    hold_s = max(settings.claim_timeout_s, claim.timeout_s + CLAIM_MARGIN_S)
    with store.write() as conn:
        expires_at = now_ms() + int(hold_s * 1000)
        renewed = conn.execute(
            "UPDATE deliveries SET claim_expires_at = ? WHERE id = ? AND claim_token = ?",
            (expires_at, claim.delivery_id, claim.token),
        ).rowcount
    if renewed:
        claim.expires_at = expires_at
    return bool(renewed)


def release_claims(store: Store, claims: list[Claim], interrupted: str | None = None) -> None:
    """Hand back claimed deliveries, due again at once and not counted against the schedule.

    Never sent: their attempts are deleted. `interrupted` (why): sent, but the pool stopped
    before the receiver answered; the attempt is closed as interrupted, the delivery's last
    error says so, and the next server or `hooklab worker` sends it again (same webhook-id)
    instead of leaving it claimed until the claim runs out. Neither counts against the webhook.
    """
    with store.write() as conn:
        now = now_ms()
        for claim in claims:
            released = conn.execute(
                "UPDATE deliveries SET claim_token = NULL, claim_expires_at = NULL, "
                "scheduled_attempts = scheduled_attempts - 1, last_error = coalesce(?, last_error) "
                "WHERE id = ? AND claim_token = ?",
                (interrupted, claim.delivery_id, claim.token),
            ).rowcount
            if not released:  # the claim lapsed and another worker logged it as abandoned
                continue
            if interrupted is None:
                conn.execute(
                    "DELETE FROM attempts WHERE id = ? AND finished_at IS NULL", (claim.attempt_id,)
                )
            else:
                conn.execute(
                    "UPDATE attempts SET finished_at = ?, ok = 0, error_kind = ?, error = ? "
                    "WHERE id = ? AND finished_at IS NULL",
                    (now, INTERRUPTED, interrupted, claim.attempt_id),
                )


def deadlines(store: Store) -> Watchdog:
    """The attempt-deadline watchdog of the app that owns `store` (one thread per app)."""
    return store.attached("attempt_deadlines", Watchdog)


def send_claim(
    store: Store, claim: Claim, settings: Settings, session: requests.Session | None = None
) -> Outcome:
    """Send the claimed attempt over HTTP and return what came back."""
    if session is None:
        # A request thread (test send, redelivery): a Session of its own, closed right after,
        # so no idle connection outlives the short-lived thread.
        with new_session(deadlines(store), settings.block_private_targets) as own:
            return send_claim(store, claim, settings, own)
    body = claim.body.encode()
    headers = delivery_headers(
        claim.keys,
        claim.message_id,
        body,
        claim.event,
        claim.delivery_id,
        claim.number,
        test=claim.test,
    )
    return perform(session, claim.url, body, headers, claim.timeout_s, settings.response_body_cap)


def retry_delay_s(
    settings: Settings, scheduled_attempts: int, retry_after_s: float | None
) -> float:
    """Seconds before the next scheduled attempt: the schedule with jitter, or Retry-After."""
    base = settings.retry_schedule[scheduled_attempts - 1]
    jitter = settings.retry_jitter
    delay = base * (1 + random.uniform(-jitter, jitter)) if jitter else base
    if retry_after_s is not None:
        # The receiver said when it can take more; never earlier than that.
        delay = max(delay, retry_after_s)
    return max(delay, 0.0)


def record(store: Store, settings: Settings, claim: Claim, outcome: Outcome) -> dict[str, Any]:
    """Record an attempt and move its delivery (and webhook) on; returns the delivery's row."""
    with store.write() as conn:
        delivery = _record(conn, settings, claim, outcome)
        if delivery is None:  # deleted with its webhook meanwhile
            return {}
        return row(conn, "SELECT * FROM deliveries WHERE id = ?", (claim.delivery_id,)) or {}


def record_many(store: Store, settings: Settings, outcomes: list[tuple[Claim, Outcome]]) -> bool:
    """Record several attempts in one transaction; True when one of them is to be retried."""
    retry = False
    with store.write() as conn:
        for claim, outcome in outcomes:
            delivery = _record(conn, settings, claim, outcome)
            retry = retry or (delivery is not None and not outcome.ok)
    return retry


def _record(conn, settings: Settings, claim: Claim, outcome: Outcome) -> dict | None:
    """The attempt's answer and the delivery's next state, in the caller's transaction."""
    now = now_ms()
    conn.execute(
        "UPDATE attempts SET started_at = ?, finished_at = ?, duration_ms = ?, "
        "request_headers = ?, status_code = ?, ok = ?, error_kind = ?, error = ?, "
        "retry_after_s = ?, response_headers = ?, response_body = ?, "
        "response_body_size = ?, response_truncated = ? WHERE id = ?",
        (
            outcome.started_at_ms or now,
            now,
            outcome.duration_ms,
            json.dumps(outcome.request_headers),
            outcome.status_code,
            int(outcome.ok),
            outcome.error_kind,
            outcome.error,
            outcome.retry_after_s,
            json.dumps(outcome.response_headers),
            outcome.response_body,
            outcome.response_body_size,
            int(outcome.response_truncated),
            claim.attempt_id,
        ),
    )
    delivery = row(
        conn,
        "SELECT id, status, claim_token, scheduled_attempts, test FROM deliveries WHERE id = ?",
        (claim.delivery_id,),
    )
    if delivery is not None:
        _move_on(conn, settings, claim, outcome, delivery, now)
    return delivery


def _move_on(conn, settings: Settings, claim: Claim, outcome: Outcome, delivery, now) -> None:
    holds_claim = claim.token is not None and delivery["claim_token"] == claim.token
    if claim.trigger == "scheduled" and not holds_claim:
        return  # our claim expired and another worker took over: it decides the state
    changes: dict[str, Any] = {
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
    }
    if holds_claim:
        changes.update(claim_token=None, claim_expires_at=None)
    webhook_changes: dict[str, Any] = {}
    counts_for_webhook = not delivery["test"]
    if outcome.ok:
        if delivery["status"] != "succeeded":
            changes.update(status="succeeded", finished_at=now, next_attempt_at=None)
        if counts_for_webhook:
            # Only a webhook that had failures is written: most successes change nothing there.
            conn.execute(
                "UPDATE webhooks SET consecutive_failures = 0, updated_at = ? "
                "WHERE id = ? AND consecutive_failures != 0",
                (now, claim.webhook_id),
            )
    elif delivery["status"] == "succeeded":
        pass  # a delivery that arrived once stays delivered; the failed attempt is in the log
    elif outcome.status_code == 410:
        changes.update(status="failed", finished_at=now, next_attempt_at=None)
        # Whatever sent it (a test too): the receiver says this URL takes nothing any more.
        # A webhook disabled already keeps the reason it was disabled for.
        disabled = conn.execute(
            "UPDATE webhooks SET active = 0, disabled_at = ?, disabled_reason = ?, "
            "updated_at = ? WHERE id = ? AND active = 1",
            (
                now,
                f"Disabled on {readable(now)}: the receiver answered 410 Gone, which says this "
                "URL will never accept deliveries again.",
                now,
                claim.webhook_id,
            ),
        ).rowcount
        if disabled:
            cancel_pending(conn, claim.webhook_id, now)
    elif claim.trigger == "scheduled":
        attempts = delivery["scheduled_attempts"]
        if attempts > len(settings.retry_schedule):
            changes.update(status="failed", finished_at=now, next_attempt_at=None)
            if counts_for_webhook:
                _count_failure(conn, settings, claim.webhook_id, outcome, now, webhook_changes)
        elif not _webhook_active(conn, claim.webhook_id):
            # Disabled while this attempt was out (cancel_pending leaves a claimed delivery
            # alone): no retry to wait for, as for the webhook's other deliveries.
            cancelled = {"finished_at": now, "next_attempt_at": None}
            changes.update(status="cancelled", last_error=CANCELLED_BY_DISABLE, **cancelled)
        else:
            delay = retry_delay_s(settings, attempts, outcome.retry_after_s)
            changes.update(status="pending", next_attempt_at=now + int(delay * 1000))
    elif claim.trigger == "test":
        changes.update(status="failed", finished_at=now, next_attempt_at=None)
    # A failed redelivery leaves the delivery as it was (its retries, if any, go on).
    _update(conn, "deliveries", claim.delivery_id, changes)
    if webhook_changes:
        webhook_changes["updated_at"] = now
        _update(conn, "webhooks", claim.webhook_id, webhook_changes)
        if webhook_changes.get("active") == 0:  # too many failures in a row
            cancel_pending(conn, claim.webhook_id, now)


def _webhook_active(conn, webhook_id: int) -> bool:
    found = conn.execute("SELECT active FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
    return found is not None and bool(found[0])


def _count_failure(conn, settings, webhook_id: int, outcome: Outcome, now: int, changes) -> None:
    failures = (
        conn.execute(
            "SELECT consecutive_failures FROM webhooks WHERE id = ?", (webhook_id,)
        ).fetchone()[0]
        + 1
    )
    changes["consecutive_failures"] = failures
    limit = settings.disable_after_failures
    if limit and failures >= limit:
        changes.update(
            active=0,
            disabled_at=now,
            disabled_reason=(
                f"Disabled on {readable(now)} after {failures} failed deliveries in a row "
                f"(last: {outcome.error or 'no answer'}). Enable it again once the receiver "
                "works."
            ),
        )


def _update(conn, table: str, row_id: int, changes: dict[str, Any]) -> None:
    assignments = ", ".join(f"{name} = ?" for name in changes)
    conn.execute(
        f"UPDATE {table} SET {assignments} WHERE id = ?",  # noqa: S608 - fixed names
        [*changes.values(), row_id],
    )


def process_one(store: Store, settings: Settings, session: requests.Session, worker: str) -> bool:
    """Claim, send and record one due delivery; False when nothing was due."""
    claim = claim_due(store, settings, worker)
    if claim is None:
        return False
    if claim is False:
        return True
    outcome = send_claim(store, claim, settings, session)
    record(store, settings, claim, outcome)
    return True


def seconds_until_due(store: Store) -> float | None:
    """How long until the next delivery is due (0 when one is), or None when none waits."""
    due = store.conn.execute(
        "SELECT min(max(next_attempt_at, coalesce(claim_expires_at, 0))) FROM deliveries "
        "WHERE status = 'pending' AND next_attempt_at IS NOT NULL"
    ).fetchone()[0]
    if due is None:
        return None
    return max(0.0, (due - now_ms()) / 1000)


def fail_abandoned_sends(store: Store) -> int:
    """Close attempts whose sender died (a server restart, a killed worker), whatever started them.

    A test send's delivery fails once its claim expires. Any attempt still unfinished when no
    attempt could still be running (the largest timeout plus a margin) is closed as abandoned:
    a redelivery's, a test's, or a scheduled one whose delivery will not be claimed again (a
    later attempt already settled it).
    """
    now = now_ms()
    # No attempt runs longer than the largest timeout (the attempt deadline cuts it there).
    stale = now - int((MAX_TIMEOUT_S + CLAIM_MARGIN_S) * 1000)
    conn = store.conn
    stuck_tests = conn.execute(
        "SELECT count(*) FROM deliveries WHERE status = 'pending' AND next_attempt_at IS NULL "
        "AND claim_expires_at <= ?",
        (now,),
    ).fetchone()[0]
    stuck_attempts = conn.execute(
        "SELECT count(*) FROM attempts WHERE finished_at IS NULL AND started_at < ?",
        (stale,),
    ).fetchone()[0]
    if not (stuck_tests or stuck_attempts):
        return 0
    with store.write() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at IS NULL "
                "AND claim_expires_at <= ?",
                (now,),
            ).fetchall()
        ]
        for delivery_id in ids:
            _mark_abandoned(conn, delivery_id, now)
            conn.execute(
                "UPDATE deliveries SET status = 'failed', finished_at = ?, claim_token = NULL, "
                "claim_expires_at = NULL, last_error = ? WHERE id = ?",
                (now, "abandoned: the sender stopped before the answer came", delivery_id),
            )
        attempts = conn.execute(
            "UPDATE attempts SET finished_at = ?, ok = 0, error_kind = ?, error = ? "
            "WHERE finished_at IS NULL AND started_at < ?",
            (now, ABANDONED, "abandoned: the sender stopped before the answer came", stale),
        ).rowcount
    return len(ids) + attempts


# --- sends a person asks for: a test event, a redelivery -------------------------------------


def send_test(
    store: Store,
    settings: Settings,
    catalog: Catalog,
    webhook_id: int | str,
    event: str | None = None,
) -> dict[str, Any]:
    """Send the event's example payload now and wait; the result, logged as a test delivery."""
    webhook = require_webhook(store, webhook_id)
    slug = webhook["event"]
    if slug == WILDCARD:
        slug = event or next(iter(catalog)).slug
    elif event not in (None, slug):
        raise ApiError(
            422,
            "invalid",
            f"This webhook is for {slug!r}; a test can only send that event.",
            "event",
        )
    catalog_event = catalog.get(slug)
    if catalog_event is None and webhook["event"] == WILDCARD:  # the caller's choice
        raise ApiError(422, "invalid", f"No event {slug!r} in the catalog.", "event")
    if catalog_event is None:
        # The webhook's own event is gone (a user event deleted behind its back, a --catalog
        # file no longer given): nothing the caller sent is wrong.
        raise ApiError(
            409,
            "event_gone",
            f"Webhook {webhook['id']} is for event {slug!r}, which is no longer in the "
            "catalog: give it another event (PATCH its event) or add the event again.",
        )
    payload = catalog_event.example()
    with store.write() as conn:
        now = now_ms()
        event_id = conn.execute(
            "INSERT INTO events (slug, payload, created_at, test) VALUES (?, ?, ?, 1)",
            (slug, json.dumps(payload, ensure_ascii=False), now),
        ).lastrowid
        token = secrets.token_hex(8)
        hold_s = max(settings.claim_timeout_s, webhook["timeout_s"] + CLAIM_MARGIN_S)
        # next_attempt_at stays NULL: workers never pick a test up, this thread sends it.
        delivery_id = conn.execute(
            "INSERT INTO deliveries (event_id, webhook_id, message_id, event, test, body, "
            "status, claim_token, claim_expires_at, created_at) "
            "VALUES (?, ?, ?, ?, 1, ?, 'pending', ?, ?, ?)",
            (
                event_id,
                webhook["id"],
                new_message_id(),
                slug,
                render_body(payload, slug, now, webhook["payload_format"]),
                token,
                now + int(hold_s * 1000),
                now,
            ),
        ).lastrowid
        found = row(conn, DELIVERY_WITH_WEBHOOK, (delivery_id,))
        claim = _start_attempt(conn, found, "test", "request", token)
    outcome = send_claim(store, claim, settings)
    record(store, settings, claim, outcome)
    return {
        "ok": outcome.ok,
        # A 410 disables the webhook, a test's too: the answer says so.
        "webhook_active": bool(require_webhook(store, webhook["id"])["active"]),
        "status_code": outcome.status_code,
        "duration_ms": outcome.duration_ms,
        "response_headers": outcome.response_headers,
        "response_body": outcome.response_body,
        "response_truncated": outcome.response_truncated,
        "error": outcome.error,
        "error_kind": outcome.error_kind,
        "delivery_id": delivery_id,
        "event": slug,
        "message_id": claim.message_id,
    }


def redeliver(store: Store, settings: Settings, delivery_id: int | str) -> dict[str, Any]:
    """One more attempt of a delivery now (same webhook-id, same body); returns the attempt."""
    number = row_id(delivery_id)
    with store.write() as conn:
        found = row(conn, DELIVERY_WITH_WEBHOOK, (number,)) if number else None
        if found is None:
            raise ApiError(404, "delivery_not_found", f"No delivery with id {delivery_id!r}.")
        claim = _start_attempt(conn, found, "manual", "request", None)
    outcome = send_claim(store, claim, settings)
    record(store, settings, claim, outcome)
    return {"delivery_id": number, "attempt_number": claim.number, "ok": outcome.ok}


# --- the workers ------------------------------------------------------------------------------


class Recorder:
    """The pool's recorder thread: outcomes that arrived together are written in one commit.

    A worker hands its outcome over and claims its next delivery at once. Until the outcome is
    committed the delivery stays claimed, so nobody sends it again meanwhile; if the process
    dies first, the claim lapses and the attempt is logged as abandoned and sent again, as
    when a worker dies between its send and its record. A write the database refuses because
    another program holds its lock is tried again every BUSY_RETRY_S, and once more at stop.
    """

    def __init__(self, store: Store, settings: Settings, bell) -> None:
        self.store = store
        self.settings = settings
        self._bell = bell
        self._pending: list[tuple[Claim, Outcome]] = []
        self._ready = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="hooklab-delivery-recorder", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def add(self, claim: Claim, outcome: Outcome) -> None:
        """Queue an attempt's outcome for the next commit."""
        with self._ready:
            self._pending.append((claim, outcome))
            self._ready.notify()

    def stop(self, timeout: float) -> None:
        """Write what is queued, then end the thread."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                with self._ready:
                    while not self._pending and not self._stopping:
                        self._ready.wait()
                    if not self._pending:
                        return
                    batch = self._pending[:RECORD_BATCH]
                    del self._pending[:RECORD_BATCH]
                self._write(batch)
        finally:
            self.store.close()

    def _write(self, batch: list[tuple[Claim, Outcome]]) -> None:
        try:
            retry = record_many(self.store, self.settings, batch)
        except Exception as exc:
            if is_busy(exc):
                if self._stopping:  # tried once more at stop; each alone would wait as long
                    log.error(
                        "delivery recorder: the database is busy; %d outcomes not recorded "
                        "(their deliveries are sent again once their claims run out)",
                        len(batch),
                    )
                    return
                # Another program held the database past the busy timeout: the outcomes wait
                # their turn again (their deliveries stay claimed meanwhile), first in line.
                log.warning("delivery recorder: the database is busy; %d outcomes wait", len(batch))
                with self._ready:
                    self._pending[:0] = batch
                    self._ready.wait(BUSY_RETRY_S)  # stop() cuts the pause short
                return
            if len(batch) == 1:
                log.exception("delivery recorder: attempt %s not recorded", batch[0][0].attempt_id)
                return
            # One bad outcome must not cost the others their record: each alone, once.
            retry = False
            for claim, outcome in batch:
                try:
                    retry = record_many(self.store, self.settings, [(claim, outcome)]) or retry
                except Exception:
                    log.exception("delivery recorder: attempt %s not recorded", claim.attempt_id)
        if retry:
            self._bell.changed()  # a retry may be due before the idle workers look again


class DeliveryWorkers:
    """A pool of delivery threads on one database; `start()`, then `stop()`.

    Idle, one worker at a time (the poller) looks at the store for due deliveries, every
    POLL_S, when the next one is due, or when the bell rings (an event fired here). The others
    sleep on the pool's own condition and are woken one at a time: one for each delivery
    claimed for them, one to take the poller's role when the poller takes work. Each worker
    opens its connection and HTTP session when it first has something to do. Before, every
    idle worker polled (16 store reads and thread wake-ups a second) and all 16 opened theirs
    at start, which stalled a new server's first requests by ~15 ms (bench/fixture.py); and
    until 1 December every event fired woke all the idle workers, each looking at the store,
    so the one that got the delivery waited for the others' reads (a claim took 4-6 ms instead
    of under 1 ms; fired-to-received p50 20-30 ms at 100 events a second, 7 ms after).
    """

    def __init__(self, store: Store, settings: Settings, count: int | None = None) -> None:
        self.store = store
        self.settings = settings
        self.count = settings.delivery_workers if count is None else count
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._bell = store.notifier("deliveries")
        self._claimed: deque[Claim] = deque()  # claimed by one worker for the next free ones
        self._recorder = Recorder(store, settings, self._bell)
        self.name = "w" + secrets.token_hex(3)
        self._pruned_at: float | None = None  # first prune on the first idle moment
        self._poller: str | None = None  # the idle worker that looks at the store
        self._poller_lock = threading.Lock()
        # The other idle workers sleep here, woken one per piece of work, never all at once.
        self._idle = Notifier()
        # The attempt each worker is sending: what stop() closes as interrupted if it cannot
        # wait for it. Once stop() has taken them, a late answer is not recorded.
        self._sending: dict[str, Claim] = {}
        self._sending_lock = threading.Lock()
        self._cut_off = False

    def start(self) -> Callable[[], None]:
        """Start the threads; returns `stop`."""
        self._recorder.start()
        started_at = self._idle.version
        for index in range(self.count):
            thread = threading.Thread(
                target=self._run,
                args=(f"{self.name}-{index}", index == 0, started_at),
                name=f"hooklab-delivery-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self.stop

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every thread to stop and wait for them (an attempt in flight may finish).

        Deliveries claimed for the pool but not sent are handed back, and the outcomes not
        written yet are written. An attempt still waiting for its receiver after `timeout` is
        closed as interrupted and its delivery handed back (`release_claims`).
        """
        self._stop.set()
        self._bell.changed()
        self._idle.nudge(self.count)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []
        with self._sending_lock:
            self._cut_off = True
            cut = list(self._sending.values())
            self._sending.clear()
        unsent = []
        while self._claimed:
            unsent.append(self._claimed.popleft())
        if unsent:
            try:
                release_claims(self.store, unsent)
            except Exception:  # their claims lapse instead, and another worker sends them
                log.exception("delivery workers: claims not handed back")
        self._recorder.stop(max(0.5, deadline - time.monotonic()))
        if cut:
            why = (
                "interrupted: the sender stopped before the receiver answered (it waited "
                f"{timeout:g} s for the answer); sent again at the next start"
            )
            try:
                release_claims(self.store, cut, interrupted=why)
            except Exception:  # their claims lapse instead, logged as abandoned, sent again
                log.exception("delivery workers: interrupted attempts not closed")

    def _next_claim(self, worker: str) -> Claim | None | bool:
        """A delivery to send: one another worker claimed for the pool, else claim from the store.

        None when nothing is due; False when the store's due deliveries were all cancelled.
        """
        while True:
            try:
                claim = self._claimed.popleft()
            except IndexError:
                break
            # It waited for a free worker: send it only while its claim outlasts the attempt
            # (with half the margin to spare), renewing it when it has waited that long.
            left_ms = (claim.expires_at or 0) - now_ms()
            if left_ms > (claim.timeout_s + CLAIM_MARGIN_S / 2) * 1000 or renew_claim(
                self.store, self.settings, claim
            ):
                return claim
        claims = claim_batch(self.store, self.settings, worker, CLAIM_BATCH)
        if not claims:
            return None if claims is None else False
        if len(claims) > 1:
            self._claimed.extend(claims[1:])
            self._idle.nudge(len(claims) - 1)  # one idle worker for each
        return claims[0]

    def _send(self, worker: str, claim: Claim, session: requests.Session) -> None:
        """Send one attempt and hand its outcome to the recorder, unless stop() cut it off."""
        with self._sending_lock:
            self._sending[worker] = claim
        outcome = None
        try:
            outcome = send_claim(self.store, claim, self.settings, session)
        finally:
            with self._sending_lock:
                self._sending.pop(worker, None)
                # Under the lock: stop() either took this attempt (closed as interrupted) or
                # finds its outcome queued before it stops the recorder.
                if outcome is not None and not self._cut_off:
                    self._recorder.add(claim, outcome)

    def _housekeeping(self) -> None:
        """The poller's: close abandoned attempts; now and then, prune the log by age."""
        fail_abandoned_sends(self.store)
        now = time.monotonic()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            pruned = prune(self.store, self.settings.retention_days)
            if any(pruned.values()):
                log.info("retention: deleted %s", pruned)

    def _polls(self, worker: str) -> bool:
        """Whether this idle worker is the one that looks at the store (taking the role if free)."""
        with self._poller_lock:
            if self._poller is None:
                self._poller = worker
            return self._poller == worker

    def _stops_polling(self, worker: str) -> None:
        """A worker with something to send leaves the poller's role to an idle one."""
        with self._poller_lock:
            if self._poller != worker:
                return
            self._poller = None
        self._idle.nudge(1)  # an idle worker wakes and takes the role

    def _run(self, worker: str, first: bool, started_at: int) -> None:
        session = None
        try:
            if not first:
                # Asleep until there is work: the first worker looks at the store at once and
                # wakes others when it claims something for them or leaves the poller's role.
                self._idle.wait(started_at, IDLE_S)
            while not self._stop.is_set():
                seen = self._bell.version
                seen_idle = self._idle.version
                polls = False
                try:
                    claim = self._next_claim(worker)
                    if claim:
                        self._stops_polling(worker)
                        if session is None:
                            session = new_session(
                                deadlines(self.store), self.settings.block_private_targets
                            )
                        self._send(worker, claim, session)
                        continue
                    if claim is False:
                        continue
                    polls = self._polls(worker)
                    if polls:
                        self._housekeeping()
                        wait = seconds_until_due(self.store)
                        wait = POLL_S if wait is None else min(max(wait, 0.005), POLL_S)
                    else:
                        wait = IDLE_S
                except Exception:  # a locked or broken store must not kill the worker
                    log.exception("delivery worker %s: unexpected error", worker)
                    wait = POLL_S
                if polls:
                    self._bell.wait(seen, wait)  # an event fired here rings it
                else:
                    self._idle.wait(seen_idle, wait)  # nudged when there is work for it
        finally:
            if session is not None:
                session.close()
            self.store.close()
