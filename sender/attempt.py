"""One delivery attempt over HTTP: the signed request, the answer, and errors named in words.

No database here: `delivery.py` decides what to send and records what came back.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

import hooklab.shared
from hooklab.sender.deadline import AttemptDeadline, Watchdog, track_connections
from hooklab.shared.signing import sign_all
from hooklab.shared.targets import TargetBlocked, guarded_session

USER_AGENT = f"hooklab/{hooklab.shared.__version__}"
REDACTED = "v1,<redacted>"
# A Retry-After longer than this is taken as this (a receiver cannot park a delivery for weeks).
MAX_RETRY_AFTER_S = 24 * 3600.0
READ_CHUNK = 16 * 1024
# The deadline on a whole attempt is its timeout plus this, so that requests' own per-read
# timeout (and its message) comes first for a receiver that is merely slow.
DEADLINE_GRACE_S = 0.25


@dataclass
class Outcome:
    """What one attempt produced: an answer (status code, headers, body) or an error."""

    request_headers: list[list[str]] = field(default_factory=list)
    started_at_ms: int = 0
    duration_ms: int = 0
    status_code: int | None = None
    response_headers: list[list[str]] = field(default_factory=list)
    response_body: str | None = None
    response_body_size: int | None = None
    response_truncated: bool = False
    error_kind: str | None = None
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        """Success is a 2xx answer, nothing else."""
        return self.status_code is not None and 200 <= self.status_code < 300


def new_session(watchdog: Watchdog, block_private: bool = False) -> requests.Session:
    """A Session for one thread: no proxies or netrc from the environment.

    With `block_private` every connection first checks (and pins) the target's addresses,
    so a delivery never reaches loopback or private ranges (shared deployments).
    """
    if block_private:
        session = guarded_session()
    else:
        session = requests.Session()
        # A local lab sends to local receivers; an HTTP(S)_PROXY meant for the browser
        # would silently route deliveries elsewhere.
        session.trust_env = False
    session.headers["User-Agent"] = USER_AGENT
    # so perform() can hold every attempt to its timeout
    return track_connections(session, watchdog)


def delivery_headers(
    keys: str | Sequence[str],
    message_id: str,
    body: bytes,
    event: str,
    delivery_id: int,
    attempt_number: int,
    test: bool = False,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The headers of one attempt: Standard Webhooks signature plus Hooklab's own.

    `keys` is one secret or several (a rotation, or `v1 v1a`): one signature for each.
    """
    timestamp = int(time.time()) if timestamp is None else timestamp
    keys = [keys] if isinstance(keys, str) else keys
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_all(keys, message_id, timestamp, body),
        "X-Hooklab-Event": event,
        "X-Hooklab-Delivery": str(delivery_id),
        "X-Hooklab-Attempt": str(attempt_number),
    }
    if test:
        headers["X-Hooklab-Test"] = "true"
    return headers


def redact(headers: list[list[str]]) -> list[list[str]]:
    """The headers as logged: the signatures replaced, so logs never help forge a message."""
    return [
        [name, _redact_signatures(value) if name.lower() == "webhook-signature" else value]
        for name, value in headers
    ]


def _redact_signatures(value: str) -> str:
    # Keep each signature's version, so the log still shows how many and which kinds were sent.
    versions = [part.partition(",")[0] for part in value.split()] or ["v1"]
    return " ".join(f"{version},<redacted>" for version in versions)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # `²` is a digit to isdigit(), not to float()
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (requests and urllib3 nest them several deep)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        for linked in (
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
        ):
            if isinstance(linked, BaseException):
                todo.append(linked)
    return seen


def describe_error(exc: BaseException, url: str, timeout_s: float) -> tuple[str, str]:
    """An error kind and a sentence, in words a person understands."""
    target = urlsplit(url).netloc or url
    causes = _causes(exc)

    def has(*types: type) -> bool:
        return any(isinstance(c, types) for c in causes)

    for cause in causes:
        if isinstance(cause, TargetBlocked):
            return "blocked target", f"blocked target: {cause.message}"
    # Refused first: urllib3's NewConnectionError is (for history) a ConnectTimeoutError.
    if has(ConnectionRefusedError):
        return "connection refused", f"connection refused: nothing is listening at {target}"
    if has(requests.exceptions.ConnectTimeout):
        return "timeout", f"timeout: could not connect to {target} within {timeout_s:g} s"
    if has(requests.exceptions.Timeout, urllib3.exceptions.ReadTimeoutError, TimeoutError):
        return "timeout", f"timeout: {target} did not answer within {timeout_s:g} s"
    if has(requests.exceptions.SSLError, ssl.SSLError):
        return "TLS error", f"TLS error talking to {target}: {_last_words(causes)}"
    if has(http.client.RemoteDisconnected):
        return (
            "connection closed",
            f"connection closed: {target} closed the connection without answering",
        )
    if has(ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        return "connection reset", f"connection reset: {target} reset the connection"
    if has(socket.gaierror, urllib3.exceptions.NameResolutionError):
        return "DNS lookup failed", f"DNS lookup failed: cannot resolve {urlsplit(url).hostname}"
    if has(requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader):
        return "invalid request", f"invalid request: {_last_words(causes)}"
    if has(requests.exceptions.ConnectionError, OSError):
        return "connection error", f"connection error with {target}: {_last_words(causes)}"
    return "error", f"{type(exc).__name__}: {exc}"


def _last_words(causes: list[BaseException]) -> str:
    # The innermost exception usually says it best ("[Errno 113] No route to host").
    return str(causes[-1]) or type(causes[-1]).__name__


def perform(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
    body_cap: int,
) -> Outcome:
    """Send one POST and read the answer; never raises for network trouble."""
    outcome = Outcome(started_at_ms=time.time_ns() // 1_000_000)
    prepared = session.prepare_request(requests.Request("POST", url, data=body, headers=headers))
    outcome.request_headers = redact([[k, v] for k, v in prepared.headers.items()])
    started = time.monotonic()
    # The timeout bounds each read; the deadline bounds the whole answer (a trickling receiver).
    with AttemptDeadline(timeout_s + DEADLINE_GRACE_S, session.hooklab_watchdog) as deadline:
        try:
            response = session.send(prepared, timeout=timeout_s, allow_redirects=False, stream=True)
        except Exception as exc:  # every failure becomes a recorded attempt, never a crash
            outcome.error_kind, outcome.error = describe_error(exc, url, timeout_s)
            if deadline.expired:
                _timed_out(outcome, url, timeout_s)
            return outcome
        finally:
            outcome.duration_ms = round((time.monotonic() - started) * 1000)
        if deadline.expired:
            # The deadline cut the connection while the headers were still coming (a receiver
            # sending one header line at a time): http.client takes the cut for their end, so
            # the status line alone would pass for a whole answer. It is a timeout.
            response.close()
            return _timed_out(outcome, url, timeout_s)
        try:
            outcome.status_code = response.status_code
            outcome.response_headers = [[k, v] for k, v in response.raw.headers.items()]
            _read_body(response, outcome, body_cap, started + timeout_s)
        finally:
            response.close()
            outcome.duration_ms = round((time.monotonic() - started) * 1000)
    outcome.retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
    if not outcome.ok:
        outcome.error_kind, outcome.error = _status_error(response)
    return outcome


def _timed_out(outcome: Outcome, url: str, timeout_s: float) -> Outcome:
    target = urlsplit(url).netloc or url
    outcome.error_kind = "timeout"
    outcome.error = f"timeout: {target} did not finish answering within {timeout_s:g} s"
    return outcome


def _read_body(response: requests.Response, outcome: Outcome, cap: int, deadline: float) -> None:
    parts: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(READ_CHUNK):
            size += len(chunk)
            if size > cap:
                parts.append(chunk[: max(0, cap - (size - len(chunk)))])
                outcome.response_truncated = True
                break
            parts.append(chunk)
            # A receiver dripping its body byte by byte may not hold a worker past the timeout.
            if time.monotonic() > deadline:
                outcome.response_truncated = True
                break
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError):
        outcome.response_truncated = True
    outcome.response_body_size = size
    outcome.response_body = b"".join(parts).decode("utf-8", errors="replace")


def _status_error(response: requests.Response) -> tuple[str, str]:
    code = response.status_code
    reason = response.reason or ""
    if 300 <= code < 400:
        location = response.headers.get("Location", "")
        where = f" to {location}" if location else ""
        return (
            "redirect not followed",
            f"HTTP {code} {reason}: redirect{where} not followed (webhooks need the final URL)",
        )
    if code == 410:
        return "gone", f"HTTP 410 {reason}: the receiver says this URL is gone"
    return f"HTTP {code}", f"HTTP {code} {reason}: the receiver did not answer with a 2xx"
