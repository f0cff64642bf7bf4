"""A small HTTP client of Hooklab's API, used by the CLI and by the pytest plugin."""

from __future__ import annotations

import base64
import http.client
import json as jsonlib
import select
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
import simple_websocket

import hooklab.shared
from hooklab.shared.resend import resend_headers

DEFAULT_SERVER = "http://127.0.0.1:8000"
# The server caps a long poll at `wait_max_s` (60 s by default); ask for at most this much.
WAIT_SLICE_S = 30.0
# Idle kept-alive connections a lean Client keeps for its Watches.
MAX_SPARE = 16
# Bins the server's batch routes take in one call (POST /api/bins/batch, DELETE /api/bins).
BINS_PER_CALL = 100


class Record(dict):
    """A JSON object of the API whose fields also read as attributes (`report.ok`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class LiveSocket(simple_websocket.Client):
    """simple-websocket's client, without stalling frames sent right behind the handshake.

    simple-websocket reads the server's `101` and whatever follows it in one `recv`, takes the
    handshake event, and leaves the frames behind it queued until more bytes arrive: a live
    stream's replay, sent at once, would then wait for the next capture or ping (20 s).
    """

    def handshake(self) -> None:
        try:
            super().handshake()
        except Exception:
            self.sock.close()  # a refused handshake (403, 414): simple-websocket leaves it open
            raise
        # A close frame among them: the reader thread still starts, and sees the socket end.
        self._handle_events()
        self.connected = True


class HooklabError(Exception):
    """A failed call to Hooklab, with a message fit for one line on a terminal."""

    def __init__(
        self, message: str, status: int | None = None, code: str | None = None, field=None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field


def normalize_server(server: str | None) -> str:
    """The base URL of a server (no trailing slash), or a HooklabError for a malformed one."""
    server = (server or DEFAULT_SERVER).strip().rstrip("/")
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HooklabError(
            f"the server must be an http:// URL, like {DEFAULT_SERVER} (got {server!r})"
        )
    return server


class Answer:
    """The server's answer to one API call: `status_code`, `content` (bytes) and `json()`."""

    __slots__ = ("status_code", "content")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    def json(self) -> Any:
        """The body as JSON."""
        return jsonlib.loads(self.content)


# Methods a request may be sent again for, when a kept-alive connection turns out closed.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class Connection:
    """One kept-alive HTTP/1.1 connection to a server, without requests (a `lean` Client's).

    requests costs about half a millisecond of Python per call on top of the round trip
    (bench/fixture.py); the pytest fixture makes several calls per test. No proxies, no .netrc:
    only for a server reached directly, like the one the fixture starts on 127.0.0.1.
    """

    def __init__(self, server: str, headers: dict[str, str]) -> None:
        parts = urlsplit(server)
        https = parts.scheme == "https"
        self._factory = http.client.HTTPSConnection if https else http.client.HTTPConnection
        self._host = parts.hostname or ""
        self._port = parts.port
        self._prefix = parts.path  # a server under a path: https://example.test/hooklab
        self.headers = headers
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict, timeout: float
    ) -> Answer:
        """Send one request and read its answer; OSError or HTTPException when that fails."""
        headers = {**self.headers, **headers}
        while True:
            conn, reused = self._connection(timeout)
            try:
                conn.request(method, self._prefix + path, body=body, headers=headers)
                response = conn.getresponse()
                answer = Answer(response.status, response.read())
            except (ConnectionError, http.client.HTTPException):
                self.close()
                # A kept-alive connection the server closed meanwhile (its keep-alive timeout):
                # the request never got to it, so once more on a new one when that is safe.
                if reused and method in IDEMPOTENT:
                    continue
                raise
            except BaseException:
                self.close()  # a timeout or an interrupt leaves the connection mid-answer
                raise
            if response.will_close:
                self.close()
            return answer

    def send(self, method: str, path: str, timeout: float) -> bool:
        """Send a request without a body; `receive()` reads its answer. Whether the connection
        was kept alive from before (it may turn out closed by the server meanwhile)."""
        conn, reused = self._connection(timeout)
        try:
            conn.request(method, self._prefix + path, headers=self.headers)
        except BaseException:
            self.close()
            raise
        return reused

    def receive(self, timeout: float) -> Answer:
        """The answer to what `send()` sent, waiting up to `timeout`."""
        assert self._conn is not None and self._conn.sock is not None
        try:
            self._conn.sock.settimeout(timeout)
            response = self._conn.getresponse()
            answer = Answer(response.status, response.read())
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return answer

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        conn = self._conn
        if conn is not None and conn.sock is not None:
            # Readable while idle means the server closed it (or sent junk): start afresh.
            if select.select([conn.sock], [], [], 0)[0]:
                self.close()
            else:
                conn.sock.settimeout(timeout)
                return conn, True
        self._conn = self._factory(self._host, self._port, timeout=timeout)
        return self._conn, False

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Watch:
    """A long poll for a bin's first request, sent ahead on a connection of its own.

    The pytest fixture sends one for each bin it keeps ready, so that when the code under test
    sends its request, the server answers the poll at once, while the code is still reading its
    own answer: `result()` then finds the request waiting in the socket (no round trip). Made
    by `Client.watch`; only for a `lean` Client's server (reached directly, no proxy). Its
    connection, once the answer is read, serves the Client's next Watch.
    """

    def __init__(self, client: Client, bin_id: str, timeout: float) -> None:
        self._client = client
        self._path = f"/api/bins/{_seg(bin_id)}/requests/wait"
        target = f"{self._path}?{urlencode({'after': 0, 'timeout': f'{timeout:g}'})}"
        self._conn: Connection | None = client.spare_connection()
        # Sent now; its answer is read by `result()`, in whichever thread calls it.
        try:
            self._reused = self._conn.send("GET", target, timeout + 10)
        except BaseException:
            self.close()
            raise

    def result(self, timeout: float) -> dict | None:
        """The bin's first request (in full), or None: none within `timeout`, the server's wait
        ended first (its answer was 204), or a kept-alive connection turned out closed (ask the
        server again). HooklabError for any other failure. Once only."""
        conn, self._conn = self._conn, None
        if conn is None:
            raise RuntimeError("a Watch's result is read once")
        try:
            answer = conn.receive(timeout)
        except TimeoutError:
            conn.close()
            return None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if self._reused:
                return None  # the server closed it while idle: the poll never got there
            raise self._client.failed("GET", self._path, exc) from None
        self._client.give_back(conn)
        answer = self._client._checked("GET", self._path, answer)
        return None if answer.status_code == 204 or not answer.content else answer.json()

    def close(self) -> None:
        """Give up the poll (the server notices the closed connection and stops waiting)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Client:
    """Calls one Hooklab server's API; one Client per thread (it holds a requests.Session).

    `lean=True`: the calls go over one kept-alive `Connection` instead of requests (no proxy,
    no .netrc); for a server reached directly, like the pytest fixture's own.
    """

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        timeout=10.0,
        lean: bool = False,
    ) -> None:
        self.server = normalize_server(server)
        self.token = token or None
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"hooklab-client/{hooklab.shared.__version__}"
        if self.token:
            self.session.headers["Authorization"] = f"Bearer {self.token}"
        self.connection: Connection | None = None
        self._spare: list[Connection] = []  # idle connections of Watches (list ops are atomic)
        if lean:
            agent = {"User-Agent": self.session.headers["User-Agent"]}
            self.connection = Connection(self.server, agent | self.auth_headers())

    def close(self) -> None:
        """Close the Client's connections."""
        self.session.close()
        if self.connection is not None:
            self.connection.close()
        while self._spare:
            self._spare.pop().close()

    def spare_connection(self) -> Connection:
        """A kept-alive connection of no call under way (for a Watch), or a new one."""
        assert self.connection is not None
        try:
            return self._spare.pop()
        except IndexError:
            return Connection(self.server, self.connection.headers)

    def give_back(self, connection: Connection) -> None:
        """Keep a Watch's connection for the next one (a few at most)."""
        if len(self._spare) < MAX_SPARE:
            self._spare.append(connection)
        else:
            connection.close()

    # -- plumbing ---------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The absolute URL of a path on this server."""
        return self.server + path

    def ws_url(self, path: str) -> str:
        """The websocket URL of a path on this server."""
        scheme, rest = self.server.split("://", 1)
        return ("wss" if scheme == "https" else "ws") + "://" + rest + path

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header to send (for the websocket, which does not use the Session)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        params: dict | None = None,
        headers: dict | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """One API call; raises HooklabError with a clear message for any failure."""
        timeout = self.timeout if timeout is None else timeout
        params = {k: v for k, v in (params or {}).items() if v is not None}
        if self.connection is not None:
            return self._lean_call(method, path, json, data, params, headers, timeout)
        try:
            response = self.session.request(
                method,
                self.url(path),
                json=json,
                data=data,
                params=params,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.ConnectionError:
            raise HooklabError(
                f"cannot reach Hooklab at {self.server} — is `hooklab serve` running?"
            ) from None
        except requests.Timeout:
            raise HooklabError(
                f"Hooklab at {self.server} did not answer {method} {path} within {timeout:g} s"
            ) from None
        except requests.RequestException as exc:
            raise HooklabError(f"calling Hooklab at {self.server} failed: {exc}") from None
        return self._checked(method, path, Answer(response.status_code, response.content))

    def _lean_call(
        self,
        method: str,
        path: str,
        json: Any,
        data: bytes | None,
        params: dict,
        headers: dict | None,
        timeout: float,
    ) -> Answer:
        """`call` over the kept-alive Connection, with the same errors as through requests."""
        assert self.connection is not None
        headers = dict(headers or {})
        if json is not None:
            data = jsonlib.dumps(json, allow_nan=False).encode()
            headers.setdefault("Content-Type", "application/json")
        target = f"{path}?{urlencode(params)}" if params else path
        try:
            answer = self.connection.request(method, target, data, headers, timeout)
        except (OSError, http.client.HTTPException) as exc:
            raise self.failed(method, path, exc, timeout) from None
        return self._checked(method, path, answer)

    def failed(
        self, method: str, path: str, exc: BaseException, timeout: float | None = None
    ) -> HooklabError:
        """The HooklabError of a call over a lean connection that raised `exc` (as requests')."""
        if isinstance(exc, TimeoutError):
            within = f" within {timeout:g} s" if timeout is not None else ""
            return HooklabError(f"Hooklab at {self.server} did not answer {method} {path}{within}")
        if isinstance(exc, OSError):
            # As through requests: refused, reset, or a name that does not resolve.
            return HooklabError(
                f"cannot reach Hooklab at {self.server} — is `hooklab serve` running?"
            )
        return HooklabError(f"calling Hooklab at {self.server} failed: {exc!r}")

    def _checked(self, method: str, path: str, answer: Answer) -> Answer:
        if answer.status_code >= 300:
            raise self._error(method, path, answer)
        return answer

    def _error(self, method: str, path: str, response: Answer) -> HooklabError:
        status = response.status_code
        try:
            error = response.json()["error"]
            code, message, field = error["code"], error["message"], error.get("field")
        except (ValueError, KeyError, TypeError):
            code, message, field = None, None, None
        if status == 401:
            hint = (
                "the access token was refused"
                if self.token
                else "it needs an access token: pass --token or set HOOKLAB_TOKEN"
            )
            return HooklabError(f"Hooklab at {self.server}: {hint}", status, code or "unauthorized")
        if message is None:
            return HooklabError(
                f"{self.server} answered {status} to {method} {path} "
                "(is it a Hooklab server of this version?)",
                status,
            )
        return HooklabError(message, status, code, field)

    def get_json(self, path: str, **params: Any) -> Any:
        """GET a JSON document."""
        return self.call("GET", path, params=params).json()

    # -- bins -------------------------------------------------------------------------------

    def health(self) -> dict:
        """The server's liveness answer (also checks the server is reachable)."""
        return self.get_json("/api/health")

    def create_bin(self, **fields: Any) -> dict:
        """Create a bin: name, response {status, headers, body, delay_ms}, secret, rules,
        rules_seed, forward."""
        return self.call("POST", "/api/bins", json=fields).json()

    def create_bins(self, count: int, **fields: Any) -> list[dict]:
        """Create `count` bins alike (1 to 100) in one call; the fields of `create_bin`."""
        response = self.call("POST", "/api/bins/batch", json=fields, params={"count": count})
        return _items(response.json(), "bins")

    def bins(self) -> list[dict]:
        """Every bin."""
        return _items(self.get_json("/api/bins"), "bins")

    def bin(self, bin_id: str) -> dict:
        """One bin."""
        return self.get_json(f"/api/bins/{_seg(bin_id)}")

    def update_bin(self, bin_id: str, **fields: Any) -> dict:
        """Change a bin."""
        return self.call("PATCH", f"/api/bins/{_seg(bin_id)}", json=fields).json()

    def reset_rules(self, bin_id: str) -> dict:
        """Start a bin's rule counts and seeded draws again; returns the bin."""
        return self.call("POST", f"/api/bins/{_seg(bin_id)}/rules/reset").json()

    def delete_bin(self, bin_id: str) -> None:
        """Delete a bin and its captured requests."""
        self.call("DELETE", f"/api/bins/{_seg(bin_id)}")

    def delete_bins(self, bin_ids: list[str]) -> list[str]:
        """Delete bins and their captured requests, one call (one transaction) per 100;
        returns the ids deleted (an id of no bin is skipped)."""
        deleted: list[str] = []
        for start in range(0, len(bin_ids), BINS_PER_CALL):
            chunk = ",".join(bin_ids[start : start + BINS_PER_CALL])
            deleted += self.call("DELETE", "/api/bins", params={"ids": chunk}).json()["deleted"]
        return deleted

    def clear_bin(self, bin_id: str) -> None:
        """Delete a bin's captured requests."""
        self.call("DELETE", f"/api/bins/{_seg(bin_id)}/requests")

    def requests(
        self,
        bin_id: str,
        after: int | None = None,
        limit: int | None = None,
        q: str | None = None,
    ) -> list[dict]:
        """Summaries of a bin's captured requests, newest first (`q`: only those matching)."""
        body = self.get_json(
            f"/api/bins/{_seg(bin_id)}/requests", after=after, limit=limit, q=q or None
        )
        return _items(body, "requests")

    def replay_request(self, bin_id: str, request_id: int | str, fields: dict) -> dict:
        """Have the server replay a captured request (edited, re-signed); returns its answer."""
        path = f"/api/bins/{_seg(bin_id)}/requests/{_seg(str(request_id))}/replay"
        # The server waits for the target's answer (its own timeout): leave it room.
        return self.call("POST", path, json=fields, timeout=max(self.timeout, 60.0)).json()

    def request(self, bin_id: str, request_id: int | str) -> dict:
        """One captured request in full."""
        return self.get_json(f"/api/bins/{_seg(bin_id)}/requests/{_seg(str(request_id))}")

    def raw_body(self, bin_id: str, request_id: int | str) -> bytes:
        """The body bytes of a captured request exactly as received."""
        path = f"/api/bins/{_seg(bin_id)}/requests/{_seg(str(request_id))}/raw"
        return self.call("GET", path).content

    def wait(
        self,
        bin_id: str,
        after: int = 0,
        timeout: float = 10.0,
        method: str | None = None,
        path: str | None = None,
    ) -> dict | None:
        """Long poll: the first request newer than `after` (in full), or None after `timeout`."""
        response = self.call(
            "GET",
            f"/api/bins/{_seg(bin_id)}/requests/wait",
            params={"after": after, "timeout": f"{timeout:g}", "method": method, "path": path},
            timeout=timeout + 10,
        )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def watch(self, bin_id: str, timeout: float = WAIT_SLICE_S) -> Watch | None:
        """Start waiting for a bin's first request now (a `Watch`); None unless `lean`."""
        if self.connection is None:
            return None
        try:
            return Watch(self, bin_id, timeout)
        except (OSError, http.client.HTTPException) as exc:
            raise self.failed("GET", f"/api/bins/{_seg(bin_id)}/requests/wait", exc) from None

    def export(self, bin_id: str, fmt: str = "json") -> bytes:
        """All of a bin's requests as HAR 1.2 or JSON (the bytes the server sent)."""
        return self.call("GET", f"/api/bins/{_seg(bin_id)}/export", params={"format": fmt}).content

    # -- webhooks, events, deliveries -------------------------------------------------------

    def events(self) -> list[dict]:
        """The event catalog."""
        return _items(self.get_json("/api/events"), "events")

    def create_webhook(self, **fields: Any) -> dict:
        """Add a webhook: name, url, event, active, secret, payload_format, timeout_s."""
        return self.call("POST", "/api/webhooks", json=fields).json()

    def webhooks(self) -> list[dict]:
        """Every webhook."""
        return _items(self.get_json("/api/webhooks"), "webhooks")

    def webhook(self, webhook_id: int | str) -> dict:
        """One webhook."""
        return self.get_json(f"/api/webhooks/{_seg(str(webhook_id))}")

    def update_webhook(self, webhook_id: int | str, **fields: Any) -> dict:
        """Change a webhook."""
        return self.call("PATCH", f"/api/webhooks/{_seg(str(webhook_id))}", json=fields).json()

    def delete_webhook(self, webhook_id: int | str) -> None:
        """Delete a webhook."""
        self.call("DELETE", f"/api/webhooks/{_seg(str(webhook_id))}")

    def test_webhook(self, webhook_id: int | str, timeout: float = 60.0) -> dict:
        """Send the webhook's test event now and wait for the answer."""
        path = f"/api/webhooks/{_seg(str(webhook_id))}/test"
        return self.call("POST", path, timeout=timeout).json()

    def rotate_secret(self, webhook_id: int | str) -> dict:
        """A new secret; the previous one stays valid until `previous_secret_expires_at`."""
        return self.call("POST", f"/api/webhooks/{_seg(str(webhook_id))}/rotate").json()

    def probe(
        self,
        url: str,
        secret: str,
        event: str | None = None,
        timeout_s: float | None = None,
    ) -> dict:
        """Run the receiver checks against `url`, signing with `secret`; returns the report."""
        fields: dict[str, Any] = {"url": url, "secret": secret}
        if event is not None:
            fields["event"] = event
        if timeout_s is not None:
            fields["timeout_s"] = timeout_s
        wait = probe_wait_s(timeout_s or 10.0)
        return self.call("POST", "/api/probe", json=fields, timeout=wait).json()

    def probe_webhook(self, webhook_id: int | str, timeout_s: float = 60.0) -> dict:
        """Run the receiver checks against a webhook's URL with its secret; returns the report."""
        path = f"/api/webhooks/{_seg(str(webhook_id))}/probe"
        return self.call("POST", path, timeout=probe_wait_s(timeout_s)).json()

    def fire(
        self,
        event: str,
        payload: Any = None,
        idempotency_key: str | None = None,
        check: bool = True,
    ) -> dict:
        """Fire an event (no payload: the catalog's example); returns the event and deliveries.

        A payload for a user event is checked against its schema first; `check=False` sends it
        even when it does not match.
        """
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        params = None if check else {"check": "0"}
        path = f"/api/events/{_seg(event)}"
        return self.call("POST", path, json=payload, headers=headers, params=params).json()

    def event(self, slug: str) -> dict:
        """One event of the catalog, with its example payload and schema."""
        return self.get_json(f"/api/events/{_seg(slug)}")

    def event_schema(self, slug: str) -> dict:
        """The JSON Schema of an event."""
        return self.get_json(f"/api/events/{_seg(slug)}/schema")

    def check_payload(self, slug: str, payload: Any) -> dict:
        """Check a payload against an event's schema: `{"valid", "problems", "warnings"?}`."""
        return self.call("POST", f"/api/events/{_seg(slug)}/check", json=payload).json()

    def check_request(self, bin_id: str, request_id: int | str, event: str | None = None) -> dict:
        """Check a captured request against an event (default: the one its header names)."""
        path = f"/api/bins/{_seg(bin_id)}/requests/{_seg(str(request_id))}/check"
        return self.get_json(path, event=event)

    def create_event(self, **fields: Any) -> dict:
        """Add a user event: slug, name, description, payload (the example), schema."""
        return self.call("POST", "/api/events", json=fields).json()

    def update_event(self, slug: str, **fields: Any) -> dict:
        """Change a user event."""
        return self.call("PATCH", f"/api/events/{_seg(slug)}", json=fields).json()

    def delete_event(self, slug: str) -> None:
        """Delete a user event."""
        self.call("DELETE", f"/api/events/{_seg(slug)}")

    def import_events(
        self, document: Any, prefix: str = "", dry_run: bool = False, timeout: float = 300.0
    ) -> dict:
        """Import an OpenAPI 3.1 document's webhooks (a parsed document) as user events."""
        body = jsonlib.dumps(document, ensure_ascii=False, allow_nan=False).encode()
        return self.call(
            "POST",
            "/api/events/import",
            data=body,
            params={"prefix": prefix, "dry_run": "1" if dry_run else None},
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        ).json()

    def deliveries(self, webhook_id: int | str) -> list[dict]:
        """A webhook's deliveries with their attempts."""
        body = self.get_json(f"/api/webhooks/{_seg(str(webhook_id))}/deliveries")
        return _items(body, "deliveries")

    def delivery(self, delivery_id: int | str) -> dict:
        """One delivery with its attempts."""
        return self.get_json(f"/api/deliveries/{_seg(str(delivery_id))}")

    def redeliver(self, delivery_id: int | str) -> dict:
        """One more attempt of a delivery, now."""
        return self.call("POST", f"/api/deliveries/{_seg(str(delivery_id))}/redeliver").json()


def probe_wait_s(timeout_s: float) -> float:
    """How long to wait for a probe: a receiver that hangs holds each of its 11 requests."""
    return 12 * (timeout_s + 1) + 10


def _seg(value: str) -> str:
    """One path segment, escaped (ids come from users and must not change the route)."""
    return quote(str(value), safe="")


def _items(body: Any, key: str) -> list:
    """A list from an API answer that is either a list or an object holding one under `key`."""
    if isinstance(body, dict):
        body = body.get(key, body.get("items", []))
    return list(body)


def body_bytes(captured: dict) -> bytes:
    """The body of a captured request in full, from its `body_base64`."""
    return base64.b64decode(captured.get("body_base64") or "")


def header_value(captured: dict, name: str) -> str | None:
    """The value of a captured request's header (names compare case-insensitively)."""
    wanted = name.lower()
    for header_name, value in captured.get("headers") or []:
        if header_name.lower() == wanted:
            return value
    return None


def replay(
    client: Client,
    bin_id: str,
    request_id: int | str,
    to: str,
    with_path: bool = False,
    timeout: float = 30.0,
) -> tuple[dict, requests.Response]:
    """Re-send a captured request to `to`: same method, byte-exact body, the same headers."""
    target = urlsplit(to)
    if target.scheme not in ("http", "https") or not target.netloc:
        raise HooklabError(f"--to must be an http:// or https:// URL (got {to!r})")
    captured = client.request(bin_id, request_id)
    if captured.get("truncated"):
        raise HooklabError(
            f"request {request_id} was cut at the body limit when captured, "
            "so it cannot be replayed byte-exact"
        )
    body = client.raw_body(bin_id, request_id)
    url = to
    if with_path:
        url = to.rstrip("/") + (captured.get("subpath") or "")
        if captured.get("query_string"):
            url += "?" + captured["query_string"]
    session = requests.Session()
    session.headers.clear()  # no default headers of requests' own: only the captured ones
    session.trust_env = False  # no proxy or .netrc credentials from the environment
    try:
        response = session.request(
            captured["method"],
            url,
            data=body,
            headers=resend_headers(captured.get("headers") or []),
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.ConnectionError:
        raise HooklabError(f"cannot reach {url} (is your app running?)") from None
    except requests.Timeout:
        raise HooklabError(f"{url} did not answer within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise HooklabError(f"replaying to {url} failed: {exc}") from None
    finally:
        session.close()
    return captured, response


def parse_json_text(text: str, what: str) -> Any:
    """Parse JSON given on a command line or in a file, or a HooklabError naming `what`."""
    try:
        return jsonlib.loads(text)
    except ValueError as exc:
        raise HooklabError(f"{what} is not valid JSON: {exc}") from None
