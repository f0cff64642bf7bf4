"""The `hooklab` pytest fixture: a real Hooklab server for your tests, its bins and webhooks.

Installed with Hooklab (entry point `pytest11`), so a test only has to ask for `hooklab`:

    def test_signup_sends_a_webhook(hooklab):
        bin = hooklab.create_bin()
        my_app.notify(bin.url, {"email": "a@example.com"})
        request = bin.wait_for(method="POST", json={"email": "a@example.com"})
        assert request.header("content-type") == "application/json"

One server runs per test session (a free port of 127.0.0.1, a temporary database), or the
one given with `--hooklab-url`. What a test creates through the fixture is deleted after it:
its webhooks at once, its bins by the session's housekeeper thread (see `Housekeeper`), which
also keeps a few default bins ready, so that neither costs a test a round trip of its own.
"""

from __future__ import annotations

import base64
import json as jsonlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hooklab.client.http import (
    BINS_PER_CALL,
    WAIT_SLICE_S,
    Client,
    HooklabError,
    Record,
    Watch,
    header_value,
    header_value_problem,
)
from hooklab.client.probe import ProbeReport
from hooklab.client.terminal import json_text, visible

ANY: Any = type("Any", (), {"__repr__": lambda self: "<any>"})()
PREVIEW_CHARS = 160
LISTED_AT_MOST = 20
PREVIEW_FETCH_BYTES = 64 * 1024  # bodies up to this are read for a failure message's preview
MAX_WAIT_S = 24 * 3600.0  # the longest `wait_for(timeout=...)`: a day
# Default bins the housekeeper keeps ready: a test rarely creates more than a few. The first
# WATCHED of them each hold a long poll (a thread of the server) until a test takes them.
POOL_SIZE = 16
WATCHED = 2
# Finished tests' bins are deleted this many at a time (all at once at the session's end, or
# for `wait_for_cleanup()`, BINS_PER_CALL a call).
DELETE_BATCH = 16
# How long the session's start waits for the first bins to be made ready.
START_WAIT_S = 2.0
# How long the session's end waits for the housekeeper to delete what the tests left.
CLEANUP_WAIT_S = 30.0


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --hooklab-url, --hooklab-token and --hooklab-keep."""
    group = parser.getgroup("hooklab", "Hooklab webhook lab")
    group.addoption(
        "--hooklab-url",
        default=None,
        metavar="URL",
        help="Use the Hooklab server at URL instead of starting one for the session.",
    )
    group.addoption(
        "--hooklab-token",
        default=None,
        help="Access token of the server given with --hooklab-url.",
    )
    group.addoption(
        "--hooklab-keep",
        action="store_true",
        default=False,
        help="Keep the bins and webhooks tests create (to look at them in the UI).",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a --hooklab-token no HTTP header can carry, once, before any test."""
    token = config.getoption("hooklab_token", None)
    if token and (problem := header_value_problem(token)):
        raise pytest.UsageError(f"--hooklab-token: the access token {problem}")


class Verdict:
    """What `CapturedRequest.verify` found: true when the signature is valid, and the reason
    in words either way (shown by a failing `assert request.verify(secret)`)."""

    __slots__ = ("valid", "reason")

    def __init__(self, valid: bool, reason: str) -> None:
        self.valid = valid
        self.reason = reason

    def __bool__(self) -> bool:
        return self.valid

    def __eq__(self, other: object) -> bool:
        if isinstance(other, bool):
            return self.valid is other
        if isinstance(other, Verdict):
            return (self.valid, self.reason) == (other.valid, other.reason)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.valid)

    def __repr__(self) -> str:
        return f"Verdict(valid={self.valid}, reason={self.reason!r})"


class CapturedRequest(Record):
    """A captured request in full, as the API gives it; its fields also read as attributes.

    `request.json`, `request.method`, `request.headers` (pairs, in order), `request.body` (bytes),
    `request.header("Webhook-Id")` (case-insensitive), `request.verify(secret)`,
    `request.check("payment_received")` (the problems against the event's schema).
    """

    def __init__(self, data: dict, client: Client | None = None) -> None:
        super().__init__(data)
        self._client = client

    @property
    def body(self) -> bytes:
        """The body bytes exactly as received."""
        return base64.b64decode(self.get("body_base64") or "")

    def header(self, name: str) -> str | None:
        """The value of a header, or None (names compare case-insensitively)."""
        return header_value(self, name)

    def verify(self, secret: str) -> Verdict:
        """Whether the request carries a valid Standard Webhooks signature made with `secret`
        (a `whsec_` secret, or a `whpk_` public key), judged as a receiver would when it
        arrived: a timestamp more than five minutes from then is refused (a replay).

        The answer is true or false, and says why: `assert request.verify(secret)` fails with
        the reason ("signature matches, but webhook-timestamp is 3601 s away ...").
        """
        from hooklab.shared.signing import PREFIX, PUBLIC_PREFIX, verify

        __tracebackhide__ = True
        if not isinstance(secret, str):
            hint = ' (a webhook? pass webhook["secret"])' if isinstance(secret, dict) else ""
            raise TypeError(
                f"request.verify() takes the secret as text, 'whsec_…' or 'whpk_…', "
                f"not {type(secret).__name__}{hint}"
            )
        received = self.get("received_at")
        received_at_s = datetime.fromisoformat(received).timestamp() if received else None
        headers = {name: value for name, value in self.get("headers") or []}
        valid, reason = verify(secret, headers, self.body, received_at_s)
        if not valid and not secret.startswith((PREFIX, PUBLIC_PREFIX)):
            # The Standard Webhooks libraries take a secret without its whsec_ as well.
            try:
                base64.b64decode(secret, validate=True)
            except ValueError:
                reason += f" (it is not a Standard Webhooks secret: those are {PREFIX}…)"
            else:
                valid, reason = verify(PREFIX + secret, headers, self.body, received_at_s)
        return Verdict(valid, reason.replace("the bin's secret", "the secret given"))

    def check(self, event: str | None = None) -> list[dict[str, str]]:
        """The problems of this request's JSON body against an event's schema (none: it matches).

        `event` is a slug; by default the one the request's X-Hooklab-Event header names. Each
        problem is `{"path", "message"}` with a JSON Pointer path; an envelope body is checked
        on its `data`. `assert not request.check("payment_received")` fails with the problems.
        """
        __tracebackhide__ = True
        if self._client is None:
            raise RuntimeError("this captured request was not read through the hooklab fixture")
        try:
            result = self._client.check_request(self["bin_id"], self["id"], event)
        except HooklabError as exc:
            message = exc.message
            if exc.code == "no_event":  # the API says `?event=<slug>`; here it is an argument
                message = (
                    f"request {self['id']} names no event (it has no X-Hooklab-Event header): "
                    'say which event to check it against, as in request.check("<slug>")'
                )
            raise HooklabError(f"hooklab: {message}", exc.status, exc.code, exc.field) from None
        return result["problems"]


def json_matches(expected: Any, actual: Any) -> bool:
    """Whether `actual` holds `expected`: objects match on the keys given (recursively)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and json_matches(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(json_matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return expected == actual


class Bin:
    """A bin created for a test: its `url`, what it captured, and waiting for a request."""

    def __init__(self, hooklab: Hooklab, data: dict, watch: Watch | None = None) -> None:
        self._hooklab = hooklab
        self._watch = watch  # a long poll for its first request, sent when it was made ready
        self.data = data
        self.id: str = data["id"]
        self.url: str = data["url"]
        self.inspect_url: str | None = data.get("inspect_url")
        self.name: str = data.get("name") or ""
        self.secret: str | None = data.get("secret")
        self._matched: set[int] = set()

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"<hooklab bin {self.id} {self.url}>"

    @property
    def _client(self) -> Client:
        return self._hooklab.client

    def requests(self) -> list[CapturedRequest]:
        """Every request the bin keeps, in full, oldest first."""
        __tracebackhide__ = True  # an error points at the test's line, not at the plugin
        exported = jsonlib.loads(self._hooklab._call(self._client.export, self.id, "json"))
        return [CapturedRequest(item, self._client) for item in exported]

    def wait_for(
        self,
        method: str | None = None,
        path: str | None = None,
        json: Any = ANY,
        predicate: Callable[[CapturedRequest], bool] | None = None,
        timeout: float = 5.0,
    ) -> CapturedRequest:
        """The first matching request not matched by an earlier `wait_for`; waits up to `timeout`.

        `method` compares case-insensitively; `path` is the part after the bin's URL ("/" for
        the URL itself), a glob as in search (`/orders/*` for a prefix); `json` matches the
        body's JSON, objects on the keys given; `predicate` gets the request. Requests that
        arrived before the call count too. Raises AssertionError listing what did arrive when
        nothing matches.
        """
        __tracebackhide__ = True  # the failure points at the test's line, not at this loop
        _check_wait_args(method, path, predicate, timeout)
        deadline = time.monotonic() + timeout
        after = 0
        drained = False  # a look without waiting found nothing more (after the deadline)
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            if remaining == 0 and drained:
                break
            # Past the deadline (or with timeout=0) what has arrived is still looked through,
            # without waiting, before giving up.
            watch = self._watch if remaining > 0 else None
            if watch is not None:
                self._watch = None
                # The long poll sent ahead: the bin's first request, usually here already. It
                # had no filters: a request of another method is passed over (ids only grow);
                # with a `path` the server, which knows its globs, is asked from the start.
                found = self._hooklab._call(watch.result, remaining)
                # The server has done its part of this test: time for the housekeeper's work.
                self._hooklab._between_requests()
                if found is None or path is not None:
                    continue
                wanted = (method or "").strip().upper()
                if wanted and found.get("method", "").upper() != wanted:
                    after = found["id"]
                    continue
            else:
                # The server filters on method and path; JSON and the predicate are checked here.
                found = self._hooklab._call(
                    self._client.wait,
                    self.id,
                    after=after,
                    timeout=min(remaining, WAIT_SLICE_S),
                    method=method,
                    path=path,
                )
                drained = found is None and remaining == 0
            if found is None:
                continue
            captured = CapturedRequest(found, self._client)
            after = captured["id"]
            if captured["id"] in self._matched:
                continue
            if json is not ANY and not json_matches(json, captured.get("json")):
                continue
            if predicate is not None and not predicate(captured):
                continue
            self._matched.add(captured["id"])
            return captured
        raise AssertionError(self._nothing_matched(method, path, json, predicate, timeout))

    def _nothing_matched(self, method, path, json, predicate, timeout) -> str:
        wanted = []
        if method is not None:
            wanted.append(f"method={method!r}")
        if path is not None:
            wanted.append(f"path={path!r}")
        if json is not ANY:
            wanted.append(f"json={json!r}")
        if predicate is not None:
            wanted.append(f"predicate={getattr(predicate, '__name__', repr(predicate))}")
        what = "matching " + ", ".join(wanted) if wanted else "at all"
        lines = [f"No request {what} arrived at bin {self.id} ({self.url}) within {timeout:g} s."]
        # Summaries only, and the bodies of the few listed when small: a bin of 1,000 bodies
        # of 10 MiB must not be downloaded to write this message.
        client = self._client
        newest = self._hooklab._call(client.requests, self.id, limit=LISTED_AT_MOST + 1)
        if not newest:
            lines.append("It received no requests.")
            return "\n".join(lines)
        count = len(newest)
        if count > LISTED_AT_MOST:
            count = self._hooklab._call(client.bin, self.id).get("request_count", count)
        shown = list(reversed(newest[:LISTED_AT_MOST]))  # oldest first
        older = count - len(shown)
        lines.append(f"It received {count}" + (f" (the newest {len(shown)}):" if older else ":"))
        if older:
            lines.append(f"  … {older} older not shown")
        for summary in shown:
            captured = summary
            if (summary.get("body_size") or 0) <= PREVIEW_FETCH_BYTES:
                captured = self._hooklab._call(client.request, self.id, summary["id"])
            note = "  (matched by an earlier wait_for)" if captured["id"] in self._matched else ""
            lines.append(f"  {_describe(captured)}{note}")
        return "\n".join(lines)

    def clear(self) -> None:
        """Delete the bin's captured requests."""
        __tracebackhide__ = True
        self.stop_watching()  # what it may have read already is cleared
        self._hooklab._call(self._client.clear_bin, self.id)
        self._matched.clear()

    def stop_watching(self) -> None:
        """Close the long poll sent ahead for the first request, if still open."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()


def _check_wait_args(method: Any, path: Any, predicate: Any, timeout: Any) -> None:
    """Refuse arguments `wait_for` cannot use, with a message saying which and why."""
    __tracebackhide__ = True
    if method is not None and not isinstance(method, str):
        raise TypeError(f"wait_for(method=...) takes a method name such as 'POST', not {method!r}")
    if path is not None and not isinstance(path, str):
        raise TypeError(f"wait_for(path=...) takes a path such as '/orders/*', not {path!r}")
    if predicate is not None and not callable(predicate):
        raise TypeError(
            f"wait_for(predicate=...) takes a function of the request, not {predicate!r}"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"wait_for(timeout=...) takes seconds as a number, not {timeout!r}")
    if not 0 <= timeout <= MAX_WAIT_S:  # NaN fails this too
        raise ValueError(
            f"wait_for(timeout=...) takes 0 to {MAX_WAIT_S:g} seconds, not {timeout!r}"
        )


def _describe(captured: dict) -> str:
    """One line about a captured request, for a failure message: outside text, shown as text
    (control characters, C1 and bidirectional controls escaped)."""
    target = captured.get("path", "")
    if captured.get("query_string"):
        target += "?" + captured["query_string"]
    if captured.get("json") is not None:
        body = json_text(captured["json"])
    elif captured.get("body_text") is not None:
        body = repr(captured["body_text"])  # (repr escapes every character not printable)
    else:
        body = f"<{captured.get('body_size', 0)} bytes>"
    if len(body) > PREVIEW_CHARS:
        body = body[:PREVIEW_CHARS] + "…"
    kind = captured.get("content_type") or "no content type"
    return visible(f"#{captured['id']} {captured.get('method')} {target} ({kind}) {body}")


class Hooklab:
    """What the `hooklab` fixture gives a test: bins, webhooks, firing events, deliveries."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        client: Client | None = None,
        housekeeper: Housekeeper | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._own_client = client is None
        self.client = Client(self.url, token) if client is None else client
        self._housekeeper = housekeeper
        self._paused = False
        self._bins: list[Bin] = []
        self._webhooks: list[Any] = []

    def __repr__(self) -> str:
        return f"<hooklab {self.url}>"

    def create_bin(
        self,
        name: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | list | None = None,
        body: str | None = None,
        delay_ms: int | None = None,
        secret: str | None = None,
    ) -> Bin:
        """Create a bin answering with `status`, `headers` and `body` after `delay_ms`.

        With no options, the bin is one the session's housekeeper made ready beforehand (never
        handed out before, empty); its `created_at` is when it was made.
        """
        __tracebackhide__ = True  # a refused option points at the test's line, not here
        fields: dict[str, Any] = {}
        if name is not None:
            fields["name"] = name
        if secret is not None:
            fields["secret"] = secret
        response = {
            key: value
            for key, value in (
                ("status", status),
                ("headers", headers),
                ("body", body),
                ("delay_ms", delay_ms),
            )
            if value is not None
        }
        if response:
            fields["response"] = response
        # A bin made with no options is what the housekeeper keeps ready: never used before.
        ready = self._housekeeper.take_bin() if self._housekeeper and not fields else None
        if ready is not None:
            created = Bin(self, *ready)
        else:
            made = self._call(self.client.create_bin, **fields)
            created = Bin(self, self._call(self.client.expect, made, ("url",), "POST", "/api/bins"))
        self._bins.append(created)
        return created

    def add_webhook(
        self,
        url: str | Bin,
        event: str = "*",
        name: str | None = None,
        secret: str | None = None,
        payload_format: str | None = None,
        active: bool = True,
        timeout_s: float | None = None,
        signature_scheme: str | None = None,
    ) -> dict:
        """Add a webhook delivering `event` (a slug, or "*" for all) to `url` (or a Bin).

        `signature_scheme`: "v1" (HMAC with the `whsec_` secret, the default) or "v1a"
        (ed25519; the webhook's `public_key` verifies it)."""
        __tracebackhide__ = True
        target = url.url if isinstance(url, Bin) else url
        fields: dict[str, Any] = {
            "name": name or f"pytest webhook {len(self._webhooks) + 1}",
            "url": target,
            "event": event,
            "active": active,
        }
        for key, value in (
            ("secret", secret),
            ("payload_format", payload_format),
            ("timeout_s", timeout_s),
            ("signature_scheme", signature_scheme),
        ):
            if value is not None:
                fields[key] = value
        webhook = self._call(self.client.create_webhook, **fields)
        self._webhooks.append(webhook["id"])
        return webhook

    def fire(self, event: str, payload: Any = None, idempotency_key: str | None = None) -> dict:
        """Fire an event (no payload: the catalog's example); returns `event_id`, `deliveries`."""
        __tracebackhide__ = True
        return self._call(self.client.fire, event, payload, idempotency_key)

    def test_webhook(self, webhook: dict | int | str) -> dict:
        """Send a webhook's test event now; returns `ok`, `status_code`, `response_body`, …"""
        __tracebackhide__ = True
        return self._call(self.client.test_webhook, _webhook_id(webhook))

    def deliveries(self, webhook: dict | int | str) -> list[dict]:
        """Every delivery of a webhook, newest first, each with its attempts (read from the
        server page after page: a log of hundreds is not cut at the API's first page)."""
        __tracebackhide__ = True
        return self._call(self.client.deliveries, _webhook_id(webhook))

    def wait_for_deliveries(
        self,
        webhook: dict | int | str,
        count: int = 1,
        status: str = "succeeded",
        timeout: float = 5.0,
    ) -> list[dict]:
        """A webhook's deliveries once `count` of them have `status` (succeeded, failed, …).

        Raises AssertionError listing the deliveries and their last answers when they do not.
        """
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        webhook_id = _webhook_id(webhook)
        while True:
            # How many have the status, in one small call (its X-Total-Count); the whole log,
            # page after page, only once there are enough.
            page = self._call(self.client.deliveries_page, webhook_id, 1, None, status)
            if page["total"] is None or page["total"] >= count:
                found = self.deliveries(webhook)
                if sum(1 for d in found if d.get("status") == status) >= count:
                    return found
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        found = self.deliveries(webhook)
        lines = [
            f"Webhook {webhook_id} does not have {count} {status} deliveries "
            f"after {timeout:g} s; it has {len(found)}:"
        ]
        for d in found[:LISTED_AT_MOST]:
            answer = d.get("last_status_code") or d.get("last_error") or "no answer yet"
            lines.append(
                visible(
                    f"  #{d['id']} {d.get('event')} {d.get('status')}, "
                    f"{len(d.get('attempts') or [])} attempts, last: {answer}"
                )
            )
        raise AssertionError("\n".join(lines))

    def events(self) -> list[dict]:
        """The event catalog."""
        __tracebackhide__ = True
        return self._call(self.client.events)

    def probe(
        self,
        url: str,
        secret: str,
        event: str | None = None,
        timeout_s: float | None = None,
    ) -> ProbeReport:
        """Run the receiver checks against your receiver at `url` (signing with `secret`).

        Returns the report: `report.ok`, `report.checks`, `report.check("stale_timestamp")`,
        `report.card()`; `report.raise_for_failures()` fails the test with the card.
        """
        __tracebackhide__ = True
        return ProbeReport(self._call(self.client.probe, url, secret, event, timeout_s))

    def assert_receiver_ok(
        self,
        url: str,
        secret: str,
        event: str | None = None,
        timeout_s: float | None = None,
    ) -> ProbeReport:
        """Probe the receiver at `url` and fail the test, with the report card, on any ✗."""
        __tracebackhide__ = True
        return self.probe(url, secret, event, timeout_s).raise_for_failures()

    @staticmethod
    def _call(func: Callable, *args: Any, **kwargs: Any) -> Any:
        # A HooklabError is a plain exception with a clear message; keep the traceback short.
        __tracebackhide__ = True
        try:
            return func(*args, **kwargs)
        except HooklabError as exc:
            raise HooklabError(f"hooklab: {exc.message}", exc.status, exc.code, exc.field) from None

    def wait_for_cleanup(self, timeout: float = CLEANUP_WAIT_S) -> None:
        """Wait until the server holds no bin but this test's: for a test that lists them all.

        The fixture deletes earlier tests' bins in the background and keeps a few bins ready
        for `create_bin()`; this waits for those deletions and, for the rest of this test,
        keeps no bins ready (those there were are deleted too).
        """
        __tracebackhide__ = True
        if self._housekeeper is None:
            return
        self._housekeeper.pause()
        self._paused = True
        if not self._housekeeper.wait_until_deleted(timeout):
            raise HooklabError(
                f"hooklab: earlier tests' bins were not deleted within {timeout:g} s"
            )

    def _between_requests(self) -> None:
        if self._housekeeper is not None:
            # The next bin's poll from this thread, at once: left to the housekeeper's thread,
            # it would wait for the interpreter until this test blocks again, often on its
            # next request, and reach the server at the same moment.
            self._housekeeper.watch_next()
            self._housekeeper.between_tests()  # more bins, deletions: when due

    def _test_ended(self) -> None:
        # A long poll left open would hold one of the server's threads (with --hooklab-keep too).
        for made in self._bins:
            made.stop_watching()
        # Bins are kept ready again after a test that wanted none (with --hooklab-keep too).
        if self._housekeeper is not None:
            if self._paused:
                self._housekeeper.resume()
                self._paused = False
            self._housekeeper.between_tests()

    def cleanup(self) -> None:
        """Delete what this test created (errors are ignored: the server may be gone).

        Webhooks go at once: one left active would receive the next tests' events. Bins go
        through the housekeeper when there is one: nobody else sends to a bin's own URL.
        """
        for webhook_id in self._webhooks:
            _ignore_errors(self.client.delete_webhook, webhook_id)
        for made in self._bins:
            made.stop_watching()
        if self._housekeeper is not None:
            self._housekeeper.delete_later(made.id for made in self._bins)
        else:
            for made in self._bins:
                _ignore_errors(self.client.delete_bin, made.id)
        self._webhooks, self._bins = [], []
        if self._own_client:
            self.client.close()


class Housekeeper:
    """The session's helper thread, with a Client of its own, doing what tests need not wait for.

    It keeps up to `pool_size` bins made with no options ready for `create_bin()` (each handed
    out once, to one test), sends the long poll for the first request of the next `watched`
    of them (`Client.watch`: `wait_for` then finds the request there already), and deletes the
    bins of finished tests.

    The session's server is shared by the tests' own requests and this work, so the work is
    done between tests (a round once a test's requests are over, `between_tests()`; the next
    bin's poll from the test's own thread, `watch_next()`) and in batches: one call makes
    several bins (`POST /api/bins/batch`), one deletes up to 100 (`DELETE /api/bins?ids=`).
    Failures never reach a test: a bin it cannot make is made by the test as before (whose
    error then says why), a bin it cannot delete is left (the server may be gone).
    """

    def __init__(
        self,
        client: Client,
        pool_size: int = POOL_SIZE,
        delete_batch: int = DELETE_BATCH,
        watched: int = WATCHED,
    ) -> None:
        self._client = client
        self._size = pool_size
        self._delete_batch = delete_batch
        # Only a lean Client sends polls ahead (Client.watch): none to keep sending otherwise.
        self._watched = watched if client.connection is not None else 0
        self._cond = threading.Condition()
        # Ready bins, oldest first, each with the long poll for its first request (or None).
        self._ready: deque[list] = deque()
        self._doomed: deque[str] = deque()  # ids of bins to delete
        self._busy = 0  # calls under way (bins being made or deleted)
        self._flushing = 0  # callers waiting for every deletion (wait_until_deleted)
        self._round = True  # time for a round of work (the first: filling the pool)
        self._refill = False  # until the server's settings are read
        self._paused = False  # no ready bins for now (a test lists every bin, or the end)
        self._stopping = False
        self._batches = True  # the server has the batch calls (an older one may not)
        self._started = threading.Event()  # the first round is done (the pool filled)
        self._thread = threading.Thread(target=self._run, name="hooklab-housekeeper", daemon=True)
        self._thread.start()

    def wait_started(self, timeout: float) -> bool:
        """Wait until the pool is first filled (before the first test: no test waits for it)."""
        return self._started.wait(timeout)

    def ready(self) -> int:
        """How many bins are ready to be handed out."""
        with self._cond:
            return len(self._ready)

    def take_bin(self) -> tuple[dict, Watch | None] | None:
        """A ready bin (the API's JSON of a bin made with no options) and the long poll for its
        first request, if one was sent; None when no bin is ready."""
        with self._cond:
            if not self._ready:
                self._start_round()  # a test that makes many: refill now
                return None
            made, watch = self._ready.popleft()
            return made, (None if watch is _SENDING else watch)

    def between_tests(self) -> None:
        """A test's requests are over (its poll's answer read, or the test ended): do a round
        of work (more bins, polls, deletions) in the housekeeper's thread, if there is any."""
        with self._cond:
            if self._has_work():
                self._start_round()

    def delete_later(self, bin_ids: Iterable[str]) -> None:
        """Delete these bins after the test, with others, in one call."""
        with self._cond:
            self._doomed.extend(bin_ids)

    def pause(self) -> None:
        """Keep no ready bins until `resume()`: those there are get deleted."""
        with self._cond:
            self._paused = True
            for made, watch in self._ready:
                self._doomed.append(made["id"])
                if watch is not None and watch is not _SENDING:
                    watch.close()
            self._ready.clear()
            self._cond.notify_all()

    def resume(self) -> None:
        """Keep bins ready again."""
        with self._cond:
            self._paused = False
            self._start_round()

    def wait_until_deleted(self, timeout: float) -> bool:
        """Delete every bin given to `delete_later` so far, now; False if not done in `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._doomed or self._busy:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._thread.is_alive():
                        return False
                    self._cond.wait(remaining)
            finally:
                self._flushing -= 1
        return True

    def close(self, timeout: float = CLEANUP_WAIT_S) -> int:
        """Delete the unused ready bins and wait for the deletions; returns how many are left."""
        self.pause()  # for good: nothing resumes it
        self.wait_until_deleted(timeout)
        with self._cond:
            self._stopping = True
            left = len(self._doomed) + self._busy
            self._cond.notify_all()
        if not left:
            self._thread.join()
            self._client.close()
        # Else the thread is stuck in a call to a server that does not answer: it is a daemon.
        return left

    def _start_round(self) -> None:
        self._round = True
        self._cond.notify_all()

    def _run(self) -> None:
        try:
            self._start_pool()
        except BaseException:
            self._started.set()
            raise
        while True:
            with self._cond:
                while not (self._stopping or self._urgent_deletion() or self._round):
                    self._cond.wait()
                if self._stopping:
                    return
                urgent, self._round = self._urgent_deletion(), False
                make = self._size - len(self._ready) if self._wants_bins() and not urgent else 0
                self._busy += 1
            try:
                # A round: bins when half are taken, the next bins' polls, then (unless bins
                # were made: the next test is about to start) a batch of deletions.
                if make:
                    self._make_bins(make)
                if not urgent:
                    self.watch_next()
                if urgent or (not make and len(self._doomed) >= self._delete_batch):
                    self._delete_some()
            except Exception:  # noqa: BLE001, S110 - deleted already, or the server is gone
                pass
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()
                self._started.set()

    def _start_pool(self) -> None:
        # A server that deletes idle bins counts a bin's idle time from its creation: a ready
        # bin would expire sooner than one made when asked for, so such a server gets no pool.
        try:
            settings = self._client.get_json("/api/settings")["settings"]
            expiring = settings["bin_ttl_s"]["value"] > 0
        except Exception:  # noqa: BLE001 - an older or odd server: bins are made when asked for
            expiring = True
        with self._cond:
            self._refill = self._size > 0 and not expiring
            self._cond.notify_all()

    def _wants_bins(self) -> bool:
        # Refilled once half are taken: several bins per call.
        return self._refill and not self._paused and len(self._ready) <= self._size // 2

    def _has_work(self) -> bool:
        # (Waking the thread for nothing would take the interpreter from the tests a moment.)
        unwatched = any(entry[1] is None for entry in list(self._ready)[: self._watched])
        return self._wants_bins() or unwatched or len(self._doomed) >= self._delete_batch

    def _urgent_deletion(self) -> bool:
        # All of them now: a test waits for it (wait_for_cleanup), or the session ends.
        return bool(self._doomed) and bool(self._paused or self._flushing)

    def _make_bins(self, count: int) -> None:
        try:
            made = self._call_in_batch(
                self._client.create_bins,
                lambda count: [self._client.create_bin() for _ in range(count)],
                count,
            )
        except Exception:  # noqa: BLE001 - tests then make their bins themselves, and see why
            with self._cond:
                self._refill = False
            return
        with self._cond:
            if self._paused:  # meanwhile (the session may be ending)
                self._doomed.extend(bin_json["id"] for bin_json in made)
            else:
                self._ready.extend([bin_json, None] for bin_json in made)

    def watch_next(self) -> None:
        """Send the long poll of the next ready bins that have none, from the calling thread
        (not holding the lock: a test may take a bin meanwhile, and then waits for its request
        the plain way)."""
        while True:
            with self._cond:
                entry = next((e for e in list(self._ready)[: self._watched] if e[1] is None), None)
                if entry is None:
                    return
                entry[1] = _SENDING
            try:
                watch = self._client.watch(entry[0]["id"])
            except HooklabError:
                watch = None  # the tests' wait_for ask the server themselves
            with self._cond:
                if any(ready is entry for ready in self._ready):
                    entry[1] = watch
                    if watch is not None:
                        continue  # the next bin's
                elif watch is not None:
                    watch.close()  # taken (or dropped) while its poll was being sent
            return

    def _delete_some(self) -> None:
        with self._cond:
            doomed = [self._doomed.popleft() for _ in range(min(len(self._doomed), BINS_PER_CALL))]

        def one_by_one(bin_ids: list[str]) -> None:
            for bin_id in bin_ids:
                _ignore_errors(self._client.delete_bin, bin_id)

        self._call_in_batch(self._client.delete_bins, one_by_one, doomed)

    def _call_in_batch(self, batch: Callable, one_by_one: Callable, arg: Any) -> Any:
        """`batch(arg)`; against a server without the batch calls, `one_by_one(arg)`."""
        if self._batches:
            try:
                return batch(arg)
            except HooklabError as exc:
                if exc.status not in (404, 405):
                    raise
                self._batches = False
        return one_by_one(arg)


# A ready bin's poll being sent by the housekeeper (outside the lock).
_SENDING: Any = object()


def _webhook_id(webhook: dict | int | str) -> int | str:
    return webhook["id"] if isinstance(webhook, dict) else webhook


def _ignore_errors(func: Callable, *args: Any) -> None:
    try:
        func(*args)
    except HooklabError:
        pass


@pytest.fixture(scope="session")
def hooklab_settings() -> dict[str, Any]:
    """Settings of the server the plugin starts; override this fixture to change them."""
    return {}


@pytest.fixture(scope="session")
def hooklab_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    hooklab_settings: dict[str, Any],
) -> Iterator[str]:
    """The base URL of the session's Hooklab server (started here unless --hooklab-url)."""
    url = request.config.getoption("hooklab_url")
    if url:
        problem = None
        try:
            client = Client(url, request.config.getoption("hooklab_token"))
        except HooklabError as exc:  # not a URL at all: once, in one line, not every test
            problem = exc.message
        else:
            client.token_hint = "give it with --hooklab-token"
            try:
                client.health()
            except HooklabError as exc:
                problem = exc.message
            finally:
                client.close()
        if problem:
            # Outside the except: failing inside it would print the error twice, chained by
            # "During handling of the above exception, another exception occurred".
            pytest.fail(f"--hooklab-url: {problem}", pytrace=False)
        yield client.server
        return
    from hooklab.app.launcher import ServerFailed, start_server
    from hooklab.shared.settings import SettingError

    settings = dict(hooklab_settings)
    token = settings.get("token") or None
    if isinstance(token, str) and (problem := header_value_problem(token)):
        pytest.fail(f"hooklab_settings: the access token {problem}", pytrace=False)
    # A database of the test's choosing is honoured; by default a fresh one of the session's.
    db = settings.pop("db", None) or _session_db(request.config, tmp_path_factory)
    # The plugin's own calls need the token it starts the server with.
    request.config.stash[OWN_TOKEN] = token
    try:
        server = start_server(db=db, **settings)
    except OSError as exc:  # the port of hooklab_settings is taken (or cannot be bound)
        from hooklab.app.server import listen_problem

        problem = listen_problem("127.0.0.1", settings.get("port", 0), exc, 'pick another "port"')
    except ServerFailed as exc:
        problem = _why_it_did_not_start(db) or str(exc)
    except SettingError as exc:  # a setting it does not know, or a value out of its range
        problem = str(exc)
    else:
        problem = None
    if problem:
        # One line, as `hooklab serve` says it, not the server's traceback (outside the
        # except, so that it is not chained to the error it replaces).
        pytest.fail(f"hooklab_settings: {problem}", pytrace=False)
    try:
        yield server.url
    finally:
        # A throwaway server: no need to wait half a second for gunicorn's orderly exit (the
        # database is safe either way). With --hooklab-keep it is left to close cleanly.
        keep = request.config.getoption("hooklab_keep")
        server.stop(timeout=10.0 if keep else 0.05)
        if keep:
            # The server is gone with the session; what the tests made is in its database.
            say_at_the_end(request.config, f"hooklab: kept; to look at it: hooklab serve --db {db}")


def _why_it_did_not_start(db: str | Path) -> str | None:
    """What `hooklab serve` says of a database it cannot use (one line), or None: asked only
    once the server failed to start, so that a session never pays for it otherwise."""
    from hooklab.app.factory import open_store
    from hooklab.shared.store import StoreError

    try:
        open_store(str(db)).migrate()
    except StoreError as exc:
        return str(exc)
    except Exception:  # noqa: BLE001 - the server's own log says more
        return None
    return None


def _session_db(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh database for the session's server.

    Kept (--hooklab-keep) it goes in pytest's cache folder (.pytest_cache/d/hooklab), which
    stays until the next kept run replaces it: pytest prunes its temporary folders after three
    more runs, and the printed `hooklab serve --db` would soon point at nothing. Under
    pytest-xdist each worker's server has a database of its own (hooklab-gw0.db, …): one
    worker must not delete the one another is using.
    """
    cache = getattr(config, "cache", None)
    if config.getoption("hooklab_keep") and cache is not None:
        worker = _worker_id(config)
        name = f"hooklab-{worker}.db" if worker else "hooklab.db"
        db = Path(cache.mkdir("hooklab")) / name
        for suffix in ("", "-wal", "-shm"):
            db.with_name(db.name + suffix).unlink(missing_ok=True)
        return db
    return tmp_path_factory.mktemp("hooklab") / "hooklab.db"


OWN_TOKEN = pytest.StashKey[str | None]()  # the token the plugin started its server with
LAST_WORDS = pytest.StashKey[list[str]]()  # lines for the end of the session's report


def _worker_id(config: pytest.Config) -> str | None:
    """The pytest-xdist worker this process is (gw0, gw1, …), or None outside xdist."""
    workerinput = getattr(config, "workerinput", None)
    return workerinput.get("workerid") if workerinput is not None else None


def say_at_the_end(config: pytest.Config, line: str) -> None:
    """Print `line` in the session's closing summary (session fixtures are torn down within
    the last test's teardown, whose output pytest captures and drops when it passes).

    A pytest-xdist worker prints no summary: its lines go to the controller with the worker's
    results (`workeroutput`), and the controller prints them (`pytest_testnodedown`).
    """
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput.setdefault(WORKER_LAST_WORDS, []).append(line)
        return
    config.stash.setdefault(LAST_WORDS, []).append(line)


WORKER_LAST_WORDS = "hooklab_last_words"  # a worker's lines, in its `workeroutput`


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """(pytest-xdist, in the controller) A worker is done: keep the lines it left for the end."""
    lines = getattr(node, "workeroutput", {}).get(WORKER_LAST_WORDS, [])
    words = node.config.stash.setdefault(LAST_WORDS, [])
    words.extend(line for line in lines if line not in words)  # (a database named by several)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The lines the session's fixtures left for the end."""
    for line in config.stash.get(LAST_WORDS, []):
        terminalreporter.write_line(line)


def _token(config: pytest.Config) -> str | None:
    """The session server's token: --hooklab-token, or the one of `hooklab_settings`."""
    return config.getoption("hooklab_token") or config.stash.get(OWN_TOKEN, None)


def _session_client(config: pytest.Config, server: str) -> Client:
    """A Client of the session's server; the plugin's own is called without requests."""
    own = not config.getoption("hooklab_url")
    # The plugin's own server is on 127.0.0.1: no proxy applies, so none is looked up.
    client = Client(server, _token(config), lean=own)
    if own:
        client.session.trust_env = False  # (a Client on loopback looks up none either)
    client.token_hint = "give it with --hooklab-token"
    return client


@pytest.fixture(scope="session")
def hooklab_client(request: pytest.FixtureRequest, hooklab_server: str) -> Iterator[Client]:
    """The Client the session's tests share: one kept-alive connection, not one per test."""
    client = _session_client(request.config, hooklab_server)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def hooklab_housekeeper(
    request: pytest.FixtureRequest, hooklab_server: str
) -> Iterator[Housekeeper]:
    """The session's Housekeeper: ready bins, deletion after each test; drained at the end."""
    housekeeper = Housekeeper(_session_client(request.config, hooklab_server))
    housekeeper.wait_started(START_WAIT_S)  # part of the session's start, not of a test
    yield housekeeper
    left = housekeeper.close()
    if left:
        say_at_the_end(
            request.config,
            f"hooklab: {left} bins of the tests could not be deleted within "
            f"{CLEANUP_WAIT_S:g} s (the server does not answer)",
        )


@pytest.fixture
def hooklab(
    request: pytest.FixtureRequest,
    hooklab_server: str,
    hooklab_client: Client,
    hooklab_housekeeper: Housekeeper,
) -> Iterator[Hooklab]:
    """A Hooklab server for this test: bins, webhooks, `fire`, `deliveries`, `probe`."""
    lab = Hooklab(
        hooklab_server,
        _token(request.config),
        hooklab_client,
        hooklab_housekeeper,
    )
    yield lab
    try:
        if not request.config.getoption("hooklab_keep"):
            lab.cleanup()
    finally:
        lab._test_ended()
