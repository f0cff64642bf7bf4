"""Forwarding: a bin in front of the developer's app (see ../shared/design.md, "Bins that act").

Sync: the capture path sends the request on and relays the app's answer (`send_forward`).
Async: the capture path queues the forward in the same transaction as the captured request
(`pending_forwards`), and `ForwardQueue` sends it afterwards, so a restart loses nothing.
Either way the outcome is recorded on the captured request (`forward`).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.util import SKIP_HEADER

from hooklab.shared.clock import now_ms
from hooklab.shared.errors import ApiError
from hooklab.shared.own_server import ServerAddress, is_capture_url, points_here
from hooklab.shared.resend import HOP_BY_HOP, resend_headers, send_as_captured, with_subpath
from hooklab.shared.targets import TargetBlocked, check_target, guarded_session

log = logging.getLogger("hooklab")

HOPS_HEADER = "X-Hooklab-Hops"
# A request that has already gone through this many Hooklab forwards is not forwarded again
# (508): two servers forwarding to each other would otherwise pass it back and forth for ever.
MAX_HOPS = 5
MAX_URL = 2000
MAX_TIMEOUT_S = 120.0
DEFAULT_TIMEOUT_S = 10.0
MODES = ("sync", "async")
FIELDS = ("url", "mode", "with_path", "timeout_s")
# Not relayed to the caller: framing is the capture path's own, and so are the safety headers.
NOT_RELAYED = HOP_BY_HOP | {"content-length"}
# Async forwards of an app that cannot be reached are tried again after these many seconds.
ASYNC_RETRY_S = (1, 2, 4, 8)
ASYNC_WORKERS = 2
ASYNC_BATCH = 16
# The senders share the serving process (and its GIL) with the capture path. Under a flood of
# captures (above FLOOD_RATE a second) they give way: one batch every PACE_S between them, and
# the queue drains at full speed once the flood is over. Below it, a forward goes out at once.
FLOOD_RATE = 200
RATE_WINDOW_S = 0.25
PACE_S = 0.25


# -- the setting ----------------------------------------------------------------------------


def invalid(field_name: str, message: str) -> ApiError:
    return ApiError(422, "invalid", message, field_name)


def validate_forward(
    value: Any, server: ServerAddress | None = None, block_private: bool = False
) -> dict | None:
    """Check a bin's `forward`; returns it as stored (defaults filled in) or None.

    `server`: this server's addresses. A forward there is refused: to a capture URL it would
    loop straight back, to the API or pages it would drive this server (the hop header and
    the app's guard against Hooklab's own requests catch the spellings not known here).
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("forward", "forward must be an object with url and mode, or null.")
    unknown = sorted(set(value) - set(FIELDS))
    if unknown:
        name = f"forward.{unknown[0]}"
        raise invalid(name, f"Unknown field {name!r}; forward has {', '.join(FIELDS)}.")
    url = value.get("url")
    if not isinstance(url, str) or not url.strip():
        raise invalid("forward.url", "forward.url is required: your app's URL.")
    url = url.strip()
    if len(url) > MAX_URL:
        raise invalid("forward.url", f"forward.url is longer than {MAX_URL} characters.")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise invalid(
            "forward.url",
            "forward.url is not a URL: it holds spaces or control characters "
            "(write a space as %20).",
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "http://[::1": an unclosed or invalid bracketed host
        raise invalid("forward.url", f"forward.url is not a valid URL ({exc}).") from None
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise invalid("forward.url", "forward.url has a port that is not 0 to 65535.") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise invalid("forward.url", "forward.url must be http:// or https:// with a host.")
    if block_private:
        try:
            check_target(url)
        except TargetBlocked as exc:
            raise invalid("forward.url", exc.message) from None
    if server is not None and points_here(url, server):
        if is_capture_url(url):
            why = "is a capture URL of this server: the request would come straight back."
        else:
            why = "points at this Hooklab server's own pages or API, not at your app."
        raise invalid("forward.url", f"forward.url {why}")
    mode = value.get("mode", "sync")
    if mode not in MODES:
        raise invalid("forward.mode", "forward.mode is sync or async.")
    with_path = value.get("with_path", True)
    if not isinstance(with_path, bool):
        raise invalid("forward.with_path", "forward.with_path must be true or false.")
    timeout = value.get("timeout_s", DEFAULT_TIMEOUT_S)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0.1 <= timeout <= MAX_TIMEOUT_S
    ):
        raise invalid(
            "forward.timeout_s", f"forward.timeout_s must be seconds from 0.1 to {MAX_TIMEOUT_S:g}."
        )
    return {"url": url, "mode": mode, "with_path": with_path, "timeout_s": timeout}


@lru_cache(maxsize=1024)
def forward_config(forward_json: str | None) -> dict | None:
    """A bin's stored `forward` JSON, parsed once per distinct value."""
    return json.loads(forward_json) if forward_json else None


def hops(value: str | None) -> int:
    """The hop count a request arrived with (0 when absent or unreadable)."""
    if not value:
        return 0
    try:
        return max(0, int(value.strip()))
    except ValueError:
        return 0


# -- sending --------------------------------------------------------------------------------


def target_url(config: dict, subpath: str, query: str) -> str:
    """Where a request goes: the app's URL, plus the subpath and query when `with_path`."""
    url = config["url"]
    if not config.get("with_path", True):
        return url
    url = with_subpath(url, subpath)
    if query:
        url += ("&" if "?" in url else "?") + query
    return url


def outgoing_headers(headers: list[list[str]], hop_count: int) -> dict[str, str]:
    """The captured headers to send on, as a replay re-sends them, with the hop count raised."""
    hops_header = HOPS_HEADER.lower()
    out = resend_headers([pair for pair in headers if pair[0].lower() != hops_header])
    out[HOPS_HEADER] = str(hop_count + 1)
    return out


@dataclass
class Forwarded:
    """What the app answered (or why it did not): the record, and the bytes to relay."""

    record: dict
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    error_kind: str | None = None  # "timeout", "unreachable", "blocked", "too_large"


def send_forward(
    session: requests.Session | PlainConnections,
    config: dict,
    method: str,
    subpath: str,
    query: str,
    headers: list[list[str]],
    body: bytes,
    hop_count: int,
    body_cap: int,
    max_body: int,
) -> Forwarded:
    """Send one captured request to the app; never raises for network trouble."""
    url = target_url(config, subpath, query)
    timeout = config.get("timeout_s", DEFAULT_TIMEOUT_S)
    record: dict[str, Any] = {
        "url": url,
        "status_code": None,
        "headers": [],
        "body_text": None,
        "duration_ms": None,
        "error": None,
    }
    started = time.monotonic()
    result = Forwarded(record)
    if isinstance(session, PlainConnections):
        try:
            status, app_headers, content = session.send(
                method, url, outgoing_headers(headers, hop_count), body, timeout, max_body
            )
        except TimeoutError:
            result.error_kind = "timeout"
            record["error"] = f"timeout: {urlsplit(url).netloc} did not answer within {timeout:g} s"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            result.error_kind = "unreachable"
            record["error"] = _unreachable(exc, url)
        else:
            _answered(result, status, app_headers, content, body_cap, max_body)
        record["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        return result
    try:
        response = send_as_captured(
            session, method, url, body or None, outgoing_headers(headers, hop_count), timeout
        )
        try:
            # The bytes as the app sent them (no gzip decoding), so the caller gets them exact.
            content = response.raw.read(max_body + 1, decode_content=False) or b""
        finally:
            response.close()
    except requests.Timeout:
        result.error_kind = "timeout"
        record["error"] = f"timeout: {urlsplit(url).netloc} did not answer within {timeout:g} s"
    except requests.RequestException as exc:
        blocked = _blocked(exc)
        result.error_kind = "blocked" if blocked else "unreachable"
        record["error"] = blocked or _unreachable(exc, url)
    else:
        app_headers = [(str(n), str(v)) for n, v in response.raw.headers.items()]
        _answered(result, response.status_code, app_headers, content, body_cap, max_body)
    record["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def _answered(
    result: Forwarded,
    status: int,
    app_headers: list[tuple[str, str]],
    content: bytes,
    body_cap: int,
    max_body: int,
) -> None:
    """Fill in what the app answered: the bytes to relay and the record to keep."""
    record = result.record
    if len(content) > max_body:
        result.error_kind = "too_large"
        record["error"] = f"the app's answer is over the body limit of {max_body} bytes"
        return
    result.status = status
    result.headers = [(n, v) for n, v in app_headers if n.lower() not in NOT_RELAYED]
    result.body = content
    record["status_code"] = status
    record["headers"] = [[n, v] for n, v in app_headers]
    kept = content[:body_cap]
    try:
        record["body_text"] = kept.decode("utf-8")
    except UnicodeDecodeError:
        del record["body_text"]
        record["body_base64"] = base64.b64encode(kept).decode("ascii")
    record["body_size"] = len(content)
    record["body_truncated"] = len(content) > body_cap


class PlainConnections:
    """Kept-alive http.client connections of one thread, one per app (host and port).

    A forward through requests costs about 470 µs of CPU, through http.client about 110 µs
    (bench/bins_act.py), and forwards share the capture path's GIL. Used when no policy must
    pin the target's addresses; with `block_private_targets` the guarded requests session is.
    """

    def __init__(self) -> None:
        self._conns: dict[tuple[str, str, int, float], http.client.HTTPConnection] = {}

    def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: float,
        max_body: int,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request; raises TimeoutError, OSError or http.client's errors."""
        parts = urlsplit(url)
        secure = parts.scheme.lower() == "https"
        port = parts.port or (443 if secure else 80)
        key = (parts.scheme.lower(), parts.hostname or "", port, timeout)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._conns.pop(key, None)
        reused = conn is not None
        while True:
            if conn is None:
                kind = http.client.HTTPSConnection if secure else http.client.HTTPConnection
                conn = kind(parts.hostname, port, timeout=timeout)
            try:
                answer = self._exchange(conn, method, target, headers, body, max_body)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if not reused:
                    raise
                conn, reused = None, False  # a kept-alive connection the app had closed: again
                continue
            except BaseException:
                conn.close()
                raise
            status, app_headers, content, reusable = answer
            if reusable:
                self._conns[key] = conn
            else:
                conn.close()
            return status, app_headers, content

    @staticmethod
    def _exchange(conn, method, target, headers, body, max_body):
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            if value is not SKIP_HEADER:  # urllib3's marker: http.client adds neither anyway
                conn.putheader(name, value)
        if body or method.upper() not in ("GET", "HEAD", "OPTIONS", "DELETE"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        content = response.read(max_body + 1) if method.upper() != "HEAD" else b""
        # The rest of a body over the limit is not read: the connection cannot be reused.
        reusable = not response.will_close and response.isclosed()
        if not response.isclosed():
            response.close()
        return response.status, response.getheaders(), content, reusable


def _blocked(exc: BaseException) -> str | None:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, TargetBlocked):
            return f"blocked target: {current.message}"
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                todo.append(linked)
    return None


def _unreachable(exc: BaseException, url: str) -> str:
    where = urlsplit(url).netloc
    text = str(exc)
    if "Connection refused" in text or "Errno 111" in text:
        return f"connection refused: nothing is listening at {where} (is your app running?)"
    if "RemoteDisconnected" in text or "without response" in text:
        return f"connection closed: {where} closed the connection without answering"
    return f"could not reach {where}: {type(exc).__name__}"


class ForwardSessions:
    """One sender per thread for forwards, under the outgoing-request policy."""

    def __init__(self, block_private: bool) -> None:
        self.block_private = block_private
        self._local = threading.local()

    def get(self) -> requests.Session | PlainConnections:
        """This thread's session: guarded when the policy blocks private targets."""
        session = getattr(self._local, "session", None)
        if session is None:
            if self.block_private:
                session = guarded_session()
                session.headers.clear()  # only the captured headers go out
            else:
                # No proxy from the environment either: http.client never reads one.
                session = PlainConnections()
            self._local.session = session
        return session


def forward_sessions(store: Any, block_private: bool) -> ForwardSessions:
    """The forward sessions of the app that owns `store`."""
    return store.attached("forward_sessions", lambda: ForwardSessions(block_private))


def record_outcome(store: Any, request_id: int, record: dict, answered_by: str | None) -> None:
    """Write a forward's outcome on its captured request (and, when sync, what answered)."""
    with store.write() as conn:
        if answered_by is None:
            conn.execute(
                "UPDATE captured_requests SET forward = ? WHERE id = ?",
                (json.dumps(record), request_id),
            )
        else:
            conn.execute(
                "UPDATE captured_requests SET forward = ?, answered_by = ? WHERE id = ?",
                (json.dumps(record), answered_by, request_id),
            )


# -- the async queue ------------------------------------------------------------------------

DUE = (
    "SELECT request_id, forward, tries FROM pending_forwards WHERE due_at <= ? "
    "ORDER BY due_at, request_id LIMIT ?"
)
CAPTURED = (
    "SELECT method, subpath, query_string, headers, body, truncated FROM captured_requests "
    "WHERE id = ?"
)
# The copy of a request evicted or cleared from its bin before its forward went out.
COPIED = (
    "SELECT method, subpath, query_string, headers, body, truncated FROM pending_forwards "
    "WHERE request_id = ? AND method IS NOT NULL"
)


class ForwardQueue:
    """Sends the queued async forwards of one app, oldest first.

    A few sender threads (not one per capture): each takes a batch of due forwards, sends
    them one after the other on its own kept-alive session, and records the outcomes of the
    batch in one transaction. Under a burst the queue grows and drains afterwards; the
    capture path never waits for it (see bench/bins_act.py).
    """

    def __init__(self, store: Any, settings: Any) -> None:
        self.store = store
        self.settings = settings
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._captures = store.notifier("captures")
        self._sample = (time.monotonic(), self._captures.version)  # for the capture rate
        self._rate = 0.0  # captures a second, over the last window
        self._next_turn = 0.0  # under a flood: when the next batch may go (monotonic)

    def start(self) -> None:
        """Start the sender threads (once)."""
        if self._threads:
            return
        for number in range(ASYNC_WORKERS):
            thread = threading.Thread(
                target=self._run, name=f"hooklab-forward-{number}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Stop the senders once the batches they hold are sent (bounded by their timeouts)."""
        self._stop.set()
        self.wake.set()
        for thread in self._threads:
            thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.flooded():
                    self._wait_turn()
                batch = self._claim()
                if batch:
                    self._send_batch(batch)
            except Exception:  # a busy or broken store: try again shortly
                log.exception("sending queued forwards failed")
                batch = []
            if not batch:
                self.wake.wait(0.5)
                self.wake.clear()

    def flooded(self) -> bool:
        """Whether captures arrive faster than FLOOD_RATE (measured over RATE_WINDOW_S)."""
        now, version = time.monotonic(), self._captures.version
        with self._lock:
            then, seen = self._sample
            if now - then >= RATE_WINDOW_S:
                self._rate = (version - seen) / (now - then)
                self._sample = (now, version)
            return self._rate > FLOOD_RATE

    def _wait_turn(self) -> None:
        """Under a flood, wait for this sender's turn: one batch per PACE_S for all of them."""
        with self._lock:
            turn = max(self._next_turn, time.monotonic())
            self._next_turn = turn + PACE_S
        delay = turn - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)

    def _claim(self) -> list[tuple[int, str, int]]:
        with self._lock:
            due = self.store.conn.execute(DUE, (now_ms(), ASYNC_BATCH + len(self._in_flight)))
            batch = [row for row in due.fetchall() if row[0] not in self._in_flight]
            batch = batch[:ASYNC_BATCH]
            self._in_flight.update(row[0] for row in batch)
        return batch

    def _send_batch(self, batch: list[tuple[int, str, int]]) -> None:
        try:
            outcomes = [self._send_one(*item) for item in batch]
            self._record(outcomes)
        finally:
            with self._lock:
                self._in_flight.difference_update(row[0] for row in batch)
        self.store.notifier("captures").changed()

    def _send_one(self, request_id: int, forward_json: str, tries: int) -> tuple:
        """Send one forward; returns (request_id, record or None, tries, retry)."""
        conn = self.store.conn
        found = conn.execute(CAPTURED, (request_id,)).fetchone()
        if found is None:  # evicted or cleared meanwhile: the copy made then
            found = conn.execute(COPIED, (request_id,)).fetchone()
        if found is None or found[5]:  # its bin was deleted, or its body was not kept
            return request_id, None, tries, False
        method, subpath, query, headers_json, body, _ = found
        headers = json.loads(headers_json)
        session = forward_sessions(self.store, self.settings.block_private_targets).get()
        result = send_forward(
            session,
            json.loads(forward_json),
            method,
            subpath,
            query,
            headers,
            body or b"",
            hops(next((v for n, v in headers if n.lower() == HOPS_HEADER.lower()), None)),
            self.settings.response_body_cap,
            self.settings.max_body_bytes,
        )
        retry = result.error_kind in ("unreachable", "timeout") and tries < len(ASYNC_RETRY_S)
        result.record["tries"] = tries + 1
        return request_id, result.record, tries, retry

    def _record(self, outcomes: list[tuple]) -> None:
        """The outcomes of a batch, in one transaction."""
        with self.store.write() as conn:
            for request_id, record, tries, retry in outcomes:
                if record is not None:
                    conn.execute(
                        "UPDATE captured_requests SET forward = ? WHERE id = ?",
                        (json.dumps(record), request_id),
                    )
                if retry:
                    conn.execute(
                        "UPDATE pending_forwards SET tries = ?, due_at = ? WHERE request_id = ?",
                        (tries + 1, now_ms() + ASYNC_RETRY_S[tries] * 1000, request_id),
                    )
                else:
                    conn.execute("DELETE FROM pending_forwards WHERE request_id = ?", (request_id,))


def forward_queue(store: Any, settings: Any) -> ForwardQueue:
    """The async forward queue of the app that owns `store`."""
    return store.attached("forward_queue", lambda: ForwardQueue(store, settings))


def start_forwarding(app: Any) -> Any:
    """Background start function: drain the async forward queue; returns its stop()."""
    from hooklab.shared.context import get_settings, get_store

    queue = forward_queue(get_store(app), get_settings(app))
    queue.start()
    return queue.stop
