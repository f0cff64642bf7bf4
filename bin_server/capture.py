"""The capture path: a lean WSGI app in front of Flask that stores `/b/<bin_id>...` as received.

It skips Flask's routing and request objects on purpose: this is the hot path (see
docs/benchmarks.md), and it must see the body bytes exactly as they arrive.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
from collections.abc import Callable, Iterable
from functools import lru_cache
from http import HTTPStatus
from json.encoder import encode_basestring as _quote
from json.encoder import encode_basestring_ascii as _quote_ascii
from urllib.parse import quote

from hooklab.bin_server.bins import bin_cache, looks_like_bin_id
from hooklab.bin_server.capture_writer import CaptureWriter
from hooklab.bin_server.forward import (
    HOPS_HEADER,
    MAX_HOPS,
    forward_config,
    forward_queue,
    forward_sessions,
    hops,
    record_outcome,
    send_forward,
)
from hooklab.bin_server.holds import Holds, thread_holds
from hooklab.bin_server.rules import (
    HEADER_NAME,
    HEADER_VALUE,
    Rule,
    Snapshot,
    compile_rules,
    rule_states,
)
from hooklab.shared.clock import now_ms
from hooklab.shared.context import stopping_of
from hooklab.shared.notify import Notifier
from hooklab.shared.settings import Settings
from hooklab.shared.store import DISK_FULL_MESSAGE, Store, is_busy, is_full

PREFIX = "/b/"
log = logging.getLogger("hooklab")
READ_CHUNK = 64 * 1024


StartResponse = Callable[..., object]


class TooLarge(Exception):
    """The body is over the limit; `seen` bytes were read (or announced) before stopping."""

    def __init__(self, seen: int) -> None:
        self.seen = seen


class BadRequest(Exception):
    """The request cannot be read (a broken Content-Length, a body cut short)."""


def raw_target(environ: dict) -> tuple[str, str]:
    """The path and query string exactly as the client sent them."""
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri:
        if not uri.startswith("/") and "://" in uri.split("?", 1)[0]:
            # absolute-form target (http://host/b/...): drop scheme and host. A path that
            # merely holds a URL (/b/<id>/http://x/y) starts with "/" and is kept whole.
            after = uri.split("://", 1)[1]
            uri = "/" + after.split("/", 1)[1] if "/" in after else "/"
        path, _, query = uri.partition("?")
        return path, query
    path = quote(environ.get("PATH_INFO", "").encode("latin-1"), safe="/:@!$&'()*+,;=-._~")
    return path, environ.get("QUERY_STRING", "")


def _header_name(key: str) -> str:
    """The header name of an environ key ("" for keys that are not headers)."""
    if key.startswith("HTTP_"):
        return key[5:].replace("_", "-").title()
    if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        return key.replace("_", "-").title()
    return ""


# environ key -> the start of its header's JSON pair ('["Name", '), "" for keys that are not
# headers: the hot path skips the string work for keys it has seen.
_HEADER_NAMES: dict[str, str] = {}
_HEADER_NAMES_MAX = 4096  # header names come from clients: bound the memory they can take
_EMPTY_MEANS_ABSENT = ("CONTENT_TYPE", "CONTENT_LENGTH")  # servers set them "" when not sent


def headers_json(environ: dict) -> str:
    """The request headers as JSON pairs, in the order the server handed them over.

    Exactly what json.dumps([[name, value], ...], ensure_ascii=False) gives, built in one pass
    (the hot path: see docs/benchmarks.md). Order: see docs/architecture.md.
    """
    starts = _HEADER_NAMES
    # gunicorn sets CONTENT_TYPE / CONTENT_LENGTH only for a header that was sent, so an empty
    # one was sent empty; other servers (Werkzeug's) set them "" when it was not sent at all.
    absent_if_empty = (
        () if environ.get("SERVER_SOFTWARE", "")[:8] == "gunicorn" else _EMPTY_MEANS_ABSENT
    )
    pairs = []
    for key, value in environ.items():
        start = starts.get(key)
        if start is None:
            name = _header_name(key)
            start = "[" + _quote(name) + ", " if name else ""
            if len(starts) < _HEADER_NAMES_MAX:
                starts[key] = start
        if start and (value or key not in absent_if_empty):
            pairs.append(start + _quote(value) + "]")
    return "[" + ", ".join(pairs) + "]"


def read_body(environ: dict, limit: int) -> bytes:
    """Read the body, never past `limit` bytes; raises TooLarge or BadRequest."""
    stream = environ["wsgi.input"]
    length_text = environ.get("CONTENT_LENGTH") or ""
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if length_text and not chunked:
        try:
            length = int(length_text)
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if length < 0:
            raise BadRequest("Content-Length is negative")
        if length >= 2**63:  # beyond any real body, and beyond what SQLite can record
            raise BadRequest("Content-Length is out of range")
        if length > limit:
            raise TooLarge(length)
        body = _read_exactly(stream, length)
        if len(body) < length:
            raise BadRequest("the body ended before Content-Length bytes arrived")
        return body
    if not chunked and not environ.get("wsgi.input_terminated"):
        return b""
    parts, size = [], 0
    while True:
        chunk = stream.read(min(READ_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise TooLarge(size)


def _read_exactly(stream, length: int) -> bytes:
    parts, remaining = [], length
    while remaining > 0:
        chunk = stream.read(min(READ_CHUNK * 16, remaining))
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


class CaptureMiddleware:
    """Route `/b/...` to the capture path, everything else to the Flask app."""

    def __init__(
        self, app_wsgi: Callable, store: Store, settings: Settings, notifier: Notifier
    ) -> None:
        self.next = app_wsgi
        self.store = store
        self.settings = settings
        self.notifier = notifier
        self.bins = bin_cache(store)
        # Concurrent captures share one commit (see capture_writer.py and docs/benchmarks.md).
        self.writer = CaptureWriter(store, settings.max_requests_per_bin)
        # Delayed answers and sync forwards hold a thread each: never more than half of them.
        cap = min(settings.max_waiting_answers, max(1, settings.threads // 2))
        # ... and they count against the app's budget of waiting connections (holds.py).
        self.waiting = Holds(max(cap, 0), thread_holds(store, settings))
        self.forwards = forward_queue(store, settings)
        self.stopping = stopping_of(store)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return self.capture(environ, start_response)
        return self.next(environ, start_response)

    def capture(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        """Store one request and answer it: a rule, the app (forwarding) or the default."""
        received_at = now_ms()
        path, query = raw_target(environ)
        rest = environ["PATH_INFO"][len(PREFIX) :]
        bin_id, slash, _ = rest.partition("/")
        # The subpath is taken from the raw path, so percent-encoding is kept as sent: all
        # that follows the bin id (an encoded slash right after it, `<id>%2Fx`, included).
        raw_rest = path[len(PREFIX) :] if path.startswith(PREFIX) else rest
        if not slash:
            subpath = ""
        elif raw_rest.startswith(bin_id):
            # Always from a "/": a forward or replay puts the subpath after its URL, and an
            # `<id>%2F@host/x` taken as is would turn that URL's host into userinfo.
            subpath = raw_rest[len(bin_id) :]
            if not subpath.startswith("/"):
                subpath = "/" + subpath
        else:  # the bin id itself was percent-encoded
            subpath = "/" + raw_rest.partition("/")[2]
        bin_row = self.bins.get(self.store, bin_id) if looks_like_bin_id(bin_id) else None
        if bin_row is None:
            return _json(
                start_response, 404, "bin_not_found", f"No bin with id {bin_id!r}.", close=True
            )

        limit = self.settings.max_body_bytes
        truncated = False
        try:
            body = read_body(environ, limit)
            body_size = len(body)
        except TooLarge as exc:
            body, body_size, truncated = b"", exc.seen, True
        # The server's input stream gave up: a broken chunk header (gunicorn raises its own
        # ParseException, Werkzeug an OSError), a dropped client.
        except Exception as exc:
            return _json(
                start_response, 400, "bad_request", f"Unreadable request: {exc}.", close=True
            )

        method = environ.get("REQUEST_METHOD", "GET")
        plan = self._plan(bin_row, method, subpath, truncated, environ)
        row = (
            bin_id,
            received_at,
            method,
            path,
            subpath,
            query,
            headers_json(environ),
            environ.get("SERVER_PROTOCOL", ""),
            environ.get("REMOTE_ADDR"),
            environ.get("CONTENT_TYPE") or None,
            body,
            body_size,
            int(truncated),
            plan.answered_by,
        )
        try:
            try:
                request_id = self._store_request(row, plan)
            except Exception as exc:
                # The bin may have been deleted a moment ago (foreign key), or the store is busy.
                if is_busy(exc):  # another program held the write lock past the busy timeout
                    return _json(
                        start_response,
                        503,
                        "unavailable",
                        "The database is busy (another program holds its lock); try again shortly.",
                        extra=[("Retry-After", "1")],
                    )
                if is_full(exc):
                    log.warning("disk full: a capture to bin %s was not stored", bin_id)
                    return _json(start_response, 507, "disk_full", DISK_FULL_MESSAGE)
                # Read again, not from the cache: another server on this database may have
                # deleted the bin a moment ago (the cache keeps a bin for 2 s).
                self.bins.forget(bin_id)
                if self.bins.get(self.store, bin_id) is None:
                    return _json(
                        start_response, 404, "bin_not_found", f"No bin with id {bin_id!r}."
                    )
                raise
            # A plain answer goes out first: its client is waiting on it, a live page or long
            # poll of the bin is told once it is sent (WSGI's close(), NotifyAfter below).
            plain = not (truncated or plan.capped or plan.loop or plan.delay_ms or plan.drop)
            plain = plain and plan.sync_forward is None
            if not plain:
                self.notifier.changed(bin_id)
            if plan.queued_forward is not None:
                self.forwards.wake.set()

            id_header = ("X-Hooklab-Request-Id", str(request_id))
            if truncated:
                return _json(
                    start_response,
                    413,
                    "too_large",
                    too_large_message(limit, request_id),
                    close=True,
                    extra=[id_header],
                )
            if plan.capped:
                return _json(
                    start_response,
                    503,
                    "too_many_waiting",
                    f"Too many answers are already waiting (at most {self.waiting.cap} delayed "
                    "or forwarded, fewer while long polls and live pages wait too); "
                    f"the request was recorded (id {request_id}); try again shortly.",
                    extra=[("Retry-After", "1"), id_header],
                )
            if plan.loop:
                return _json(
                    start_response,
                    508,
                    "loop_detected",
                    f"The request has been forwarded by Hooklab {MAX_HOPS} times already "
                    f"({HOPS_HEADER}); it was recorded (id {request_id}) but not forwarded again.",
                    extra=[id_header],
                )
            if plan.delay_ms:
                # Cut short when the server stops: the answer goes out, not a dropped connection.
                self.stopping.wait(plan.delay_ms / 1000)
            if plan.drop:
                hang_up(environ)
            if plan.sync_forward is not None:
                return self._forward(plan.sync_forward, request_id, row, start_response)
            body = self._respond(plan, bin_row, request_id, start_response, environ)
            return NotifyAfter(body, self.notifier, bin_id)
        finally:
            if plan.waits:
                self.waiting.leave()

    def _plan(
        self, bin_row: dict, method: str, subpath: str, truncated: bool, environ: dict
    ) -> Plan:
        """Decide the answer before the request is stored, so its row says what answered."""
        plan = Plan()
        if truncated:
            plan.answered_by = answered_by_json(None, "default", 413)
            return plan
        if bin_row["rules"] == "[]" and not bin_row["forward"] and not bin_row["response_delay_ms"]:
            # The plain bin (the hot path): its default answer, at once.
            plan.answered_by = answered_by_json(None, "default", bin_row["response_status"])
            return plan
        rule = None
        if bin_row["rules"] != "[]":
            choice = rule_states(self.store).choose(
                bin_row, compile_rules(bin_row["rules"]), method, subpath
            )
            plan.rule_state = choice.snapshot
            rule = plan.rule = choice.rule
            plan.delay_ms = choice.delay_ms
        forward = forward_config(bin_row["forward"]) if rule is None else None
        if rule is not None:
            plan.drop = rule.drop
            status = None if rule.drop else (rule.status or bin_row["response_status"])
            index, name = rule.index, rule.name
        elif forward is not None and hops(environ.get("HTTP_X_HOOKLAB_HOPS")) >= MAX_HOPS:
            plan.loop, forward = True, None
            index, name, status = None, "forward", 508
        elif forward is not None and forward["mode"] == "sync":
            plan.sync_forward = forward
            index, name, status = None, "forward", None  # known once the app answers
        else:
            if forward is not None:
                plan.queued_forward = bin_row["forward"]
            plan.delay_ms = min(bin_row["response_delay_ms"] or 0, self.settings.max_delay_ms)
            index, name, status = None, "default", bin_row["response_status"]
        if plan.delay_ms or plan.sync_forward is not None:
            # Waiting answers hold a server thread each: past the cap, answer at once.
            plan.waits = self.waiting.enter()
            if not plan.waits:
                plan.capped, plan.delay_ms, plan.drop, plan.sync_forward = True, 0, False, None
                status = 503
        plan.answered_by = answered_by_json(index, name, status, plan.capped)
        return plan

    def _store_request(self, row: tuple, plan: Plan | None = None) -> int:
        if plan is None:
            return self.writer.write(row)
        return self.writer.write(row, plan.rule_state, plan.queued_forward)

    def _respond(
        self,
        plan: Plan,
        bin_row: dict,
        request_id: int,
        start_response: StartResponse,
        environ: dict,
    ) -> Iterable[bytes]:
        rule = plan.rule
        if rule is None:
            status, headers, body = configured_response(bin_row, request_id)
        else:
            status, headers, body = configured_response(
                bin_row,
                request_id,
                rule.status,
                rule.headers_json,
                rule.body if rule.body is not None else _DEFAULT,
            )
        if "HTTP_ORIGIN" in environ:  # only browsers send Origin: others skip this entirely
            headers.extend(cors_headers(environ, headers))
        start_response(status_line(status), headers)
        return [body]

    def _forward(
        self,
        config: dict,
        request_id: int,
        row: tuple,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        """Send the request on to the app and relay its answer (502/504 when it fails)."""
        settings = self.settings
        headers = json.loads(row[6])  # [name, value] pairs, as stored
        result = send_forward(
            forward_sessions(self.store, settings.block_private_targets).get(),
            config,
            row[2],
            row[4],
            row[5],
            headers,
            row[10],
            hops(next((v for n, v in headers if n == "X-Hooklab-Hops"), None)),
            settings.response_body_cap,
            settings.max_body_bytes,
        )
        if result.status is not None:
            status = result.status
        else:
            status = 504 if result.error_kind == "timeout" else 502
        record_outcome(
            self.store, request_id, result.record, answered_by_json(None, "forward", status)
        )
        self.notifier.changed()
        id_header = ("X-Hooklab-Request-Id", str(request_id))
        if result.status is None:
            code = "app_timeout" if status == 504 else "app_unreachable"
            return _json(start_response, status, code, result.record["error"], extra=[id_header])
        out = [h for h in result.headers if h[0].lower() not in SAFETY_NAMES]
        out.append(("Content-Length", str(len(result.body))))
        out.append(id_header)
        out.extend(SAFETY_HEADERS)
        start_response(f"{status} {reason(status)}", out)
        return [result.body]


_DEFAULT = object()  # "the bin's default" for a rule's body, which may be set to ""
# Every capture answer carries these, so a bin told to answer HTML cannot run script as the UI.
SAFETY_HEADERS = (("Content-Security-Policy", "sandbox"), ("X-Content-Type-Options", "nosniff"))
SAFETY_NAMES = {name.lower() for name, _ in SAFETY_HEADERS}


class Plan:
    """How one captured request will be answered, decided before it is stored.

    The defaults are class attributes: a plain capture's plan sets only `answered_by`.
    """

    rule: Rule | None = None
    rule_state: Snapshot | None = None
    delay_ms = 0
    drop = False
    sync_forward: dict | None = None
    queued_forward: str | None = None  # the bin's forward JSON, for the queue
    loop = False
    capped = False
    waits = False  # holds a waiting slot, to give back once answered
    answered_by = ""


class NotifyAfter(list):
    """An answer's body (a list of bytes) that tells the bin's waiters once it has been sent.

    The server calls `close()` after writing it (PEP 3333), whether or not that succeeded.
    """

    __slots__ = ("notifier", "bin_id")

    def __init__(self, body: Iterable[bytes], notifier: Notifier, bin_id: str) -> None:
        super().__init__(body)
        self.notifier = notifier
        self.bin_id = bin_id

    def close(self) -> None:
        self.notifier.changed(self.bin_id)


@lru_cache(maxsize=4096)
def answered_by_json(rule: int | None, name: str, status: int | None, capped: bool = False) -> str:
    """What answered a captured request, as stored (`answered_by`)."""
    out: dict = {"rule": rule, "name": name, "status": status}
    if capped:
        out["capped"] = True
    return json.dumps(out)


def hang_up(environ: dict) -> None:
    """Close the client's connection without an answer (a rule's `drop`).

    The socket is shut down, then an OSError tells the server the connection is gone: gunicorn
    and Werkzeug both take ECONNRESET as a client that went away, and write nothing more.
    """
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionResetError(errno.ECONNRESET, "connection dropped by a response rule")


def configured_response(
    bin_row: dict,
    request_id: int,
    status: int | None = None,
    headers_json: str | None = None,
    body_text: object = _DEFAULT,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """A configured answer to one captured request: status, headers and body.

    The bin's default response, with any of the three replaced (by the rule that answers).
    """
    if body_text is _DEFAULT:
        body_text = bin_row["response_body"]
    if body_text is None:
        # Byte for byte what json.dumps({"ok": True, "id": ..., "bin_id": ...}) gives.
        body = f'{{"ok": true, "id": {request_id}, "bin_id": {_quote_ascii(bin_row["id"])}}}'
        body = body.encode()
    else:
        body = body_text.encode()
    configured = bin_row["response_headers"] if headers_json is None else headers_json
    headers = list(_configured_headers(configured, body_text is None))
    headers.append(("Content-Length", str(len(body))))
    headers.append(("X-Hooklab-Request-Id", str(request_id)))
    return status or bin_row["response_status"], headers, body


@lru_cache(maxsize=1024)
def _configured_headers(configured_json: str, json_body: bool) -> tuple[tuple[str, str], ...]:
    # Parsed once per distinct configuration, not once per capture. A header saved before
    # values were checked (bin_server/rules.py) that no answer can carry is left out: gunicorn
    # would fail the whole answer with a 500.
    headers = [
        (name, value)
        for name, value in json.loads(configured_json)
        if name.lower() not in SAFETY_NAMES  # the capture path's own, below
        and HEADER_NAME.fullmatch(name)
        and HEADER_VALUE.fullmatch(value)
    ]
    if not any(name.lower() == "content-type" for name, _ in headers):
        content_type = "application/json" if json_body else "text/plain; charset=utf-8"
        headers.append(("Content-Type", content_type))
    headers.extend(SAFETY_HEADERS)
    return tuple(headers)


def cors_headers(environ: dict, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """CORS headers so a page's `fetch` can reach a bin, unless the bin sets its own.

    A preflight (OPTIONS with Access-Control-Request-Method) is captured like any request and
    answered with the method and headers it asked for.
    """
    if any(name.lower().startswith("access-control-") for name, _ in headers):
        return []
    out = [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Expose-Headers", "X-Hooklab-Request-Id"),
    ]
    asked_method = environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
    if environ.get("REQUEST_METHOD") == "OPTIONS" and asked_method:
        out.append(("Access-Control-Allow-Methods", asked_method))
        asked_headers = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
        if asked_headers:
            out.append(("Access-Control-Allow-Headers", asked_headers))
        out.append(("Access-Control-Max-Age", "600"))
    return out


def too_large_message(limit: int, request_id: int) -> str:
    """The message of the 413 answer to a body over the limit."""
    return (
        f"The body is over the limit of {limit} bytes; the request was "
        f"recorded without its body (id {request_id})."
    )


@lru_cache(maxsize=1024)
def status_line(status: int) -> str:
    """The status line of a WSGI answer ("200 OK")."""
    return f"{status} {reason(status)}"


@lru_cache(maxsize=1024)
def reason(status: int) -> str:
    """The reason phrase of a status code ("Status" for codes without one)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def _json(
    start_response: StartResponse,
    status: int,
    code: str,
    message: str,
    close: bool = False,
    extra: list | None = None,
) -> list[bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if close:
        headers.append(("Connection", "close"))
    headers.extend(extra or [])
    headers.extend(SAFETY_HEADERS)
    start_response(f"{status} {reason(status)}", headers)
    return [body]
