"""A small HTTP client of Hooklab's API, used by the CLI and by the pytest plugin."""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json as jsonlib
import re
import select
import threading
import time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
import simple_websocket

import hooklab.shared
from hooklab.client.terminal import visible
from hooklab.shared import json_input
from hooklab.shared.resend import resend_headers, send_as_captured, with_subpath

BUSY_RETRY_S = 1.0  # the server's Retry-After for a long poll it has no place for
DEFAULT_SERVER = "http://127.0.0.1:8000"
# The server caps a long poll at `wait_max_s` (60 s by default); ask for at most this much.
WAIT_SLICE_S = 30.0
# Idle kept-alive connections a lean Client keeps for its Watches.
MAX_SPARE = 16
# Bins the server's batch routes take in one call (POST /api/bins/batch, DELETE /api/bins).
BINS_PER_CALL = 100
# Deliveries one call of the delivery log gives at most (sender/deliveries.py MAX_LIMIT).
DELIVERIES_PER_CALL = 200
# The longest timeout the server lets a webhook have (sender/webhooks.py MAX_TIMEOUT_S).
MAX_WEBHOOK_TIMEOUT_S = 60.0
# How long a test send or a redelivery is waited for: the server answers once the attempt
# is over, which may take a webhook's whole timeout (its deadline adds 0.25 s), plus the
# name lookup, the write of its outcome and the trip back.
ATTEMPT_WAIT_S = MAX_WEBHOOK_TIMEOUT_S + 15.0


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


class ServerUrlError(HooklabError):
    """A server URL that cannot be called (`why` says what is wrong with it, in words)."""

    def __init__(self, why: str) -> None:
        super().__init__(
            f"the Hooklab server URL {why}; give one like {DEFAULT_SERVER}", None, "bad_server"
        )
        self.why = why


def server_url_problem(server: str) -> str | None:
    """What is wrong with a server's base URL, in words (`'x' names no host`), or None."""
    shown = repr(server if len(server) <= 80 else server[:80] + "…")
    try:
        parts = urlsplit(server)
    except ValueError as exc:  # "http://[::1": urlsplit refuses an unclosed bracket
        unclosed = "Invalid IPv6 URL" in str(exc)
        return f"{shown} is not a valid URL: " + (
            "its host has an unclosed [" if unclosed else str(exc)
        )
    if parts.scheme.lower() not in ("http", "https") or "://" not in server:
        return f"{shown} is not an http:// or https:// URL"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 0x7F for c in server):
        return f"{shown} has a space or a control character in it"
    if not parts.hostname:
        return f"{shown} names no host"
    if not _valid_host(parts.hostname):
        return f"{shown} names no valid host ({parts.hostname!r})"
    try:
        port = parts.port
    except ValueError:  # not a number, or above 65535
        port = 0
    if port == 0:
        return f"{shown} has no valid port (1 to 65535)"
    # The API and pages are at the server's root: a query, a fragment or a path would be
    # dropped or mixed into every call's URL.
    if "?" in server:
        return f"{shown} has a query (?…): the server's root URL takes none"
    if "#" in server:
        return f"{shown} has a fragment (#…): the server's root URL takes none"
    if parts.path not in ("", "/"):
        return f"{shown} has a path ({parts.path!r}): give the server's root URL, with no path"
    return None


# A host name: labels of letters, digits, `-` and `_` (as in container names), dot-separated.
HOST_NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*\.?", re.I)


def _valid_host(host: str) -> bool:
    """Whether `host` (a URL's, without brackets) is an IP address or a host name."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")  # (a name in another script)
        except UnicodeError:
            return False
    return len(host) <= 253 and HOST_NAME.fullmatch(host) is not None


class TokenError(HooklabError):
    """An access token that cannot be sent in an HTTP header (`why` says why, in words)."""

    def __init__(self, why: str) -> None:
        super().__init__(f"the access token {why}", None, "bad_token")
        self.why = why


def header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as an HTTP header's value, in words, or None.

    A header carries Latin-1 text (http.client encodes it so, and a server decodes it so); a
    control character would end the header or be refused by the server.
    """
    for char in value:
        code = ord(char)
        if code > 0xFF:
            return (
                f"has '{visible(char)}' (U+{code:04X}) in it, which an HTTP header cannot "
                "carry (Latin-1 characters only)"
            )
        if code < 0x20 or 0x7F <= code < 0xA0:
            return f"has a control character ({visible(char)}) in it"
    return None


def normalize_server(server: str | None) -> str:
    """The base URL of a server (no trailing slash), or a ServerUrlError for a malformed one."""
    server = (server or DEFAULT_SERVER).strip()
    problem = server_url_problem(server)
    if problem is not None:
        raise ServerUrlError(problem)
    return server.rstrip("/")


class Answer:
    """The server's answer to one API call: `status_code`, `content` (bytes) and `json()`.

    `json()`, `object()` and `items()` read the body as Hooklab sends it, or raise a
    HooklabError saying what came instead: a server that is not Hooklab (another app at
    --server, a proxy's error page) answers with HTML or with JSON of another shape.
    """

    __slots__ = ("status_code", "content", "content_type", "origin", "headers")

    def __init__(
        self,
        status_code: int,
        content: bytes,
        content_type: str | None = "",
        headers: Any = None,
    ) -> None:
        self.status_code = status_code
        self.content = content
        self.content_type = content_type or ""
        # As handed over (requests' mapping, or http.client's list of pairs): see `header`.
        self.headers = headers
        # (server, method, path) of the call, for the errors below; set by the Client.
        self.origin: tuple[str, str, str] | None = None

    def header(self, name: str) -> str | None:
        """The value of one of the answer's headers (names compare case-insensitively)."""
        if self.headers is None:
            return None
        if hasattr(self.headers, "items"):
            pairs = self.headers.items()
        else:
            pairs = self.headers
        wanted = name.lower()
        for key, value in pairs:
            if key.lower() == wanted:
                return value
        return None

    def json(self) -> Any:
        """The body as JSON (a HooklabError when it is not JSON)."""
        try:
            return jsonlib.loads(self.content)
        except (ValueError, RecursionError):
            raise self.not_json() from None

    def object(self, *keys: str) -> dict:
        """The body as a JSON object holding `keys` (a HooklabError when it is not)."""
        return self.shaped(self.json(), keys)

    def items(self, key: str, *keys: str) -> list[dict]:
        """A list from the body, either a list or an object holding one under `key`; each
        item an object holding `keys` (a HooklabError when it is not)."""
        body = self.json()
        if isinstance(body, dict) and isinstance(body.get(key, body.get("items")), list):
            body = body.get(key, body.get("items"))
        if not isinstance(body, list):
            raise self.unexpected(f"{_kind(body)} where a list of {key} belongs")
        for item in body:
            self.shaped(item, keys)
        return body

    def listing(self, key: str, item_keys: tuple[str, ...] | None, *keys: str) -> dict:
        """The body as a JSON object holding `keys` and, under `key`, a list (of objects
        holding `item_keys`, when given); a HooklabError when it is not."""
        body = self.object(key, *keys)
        if not isinstance(body[key], list):
            raise self.unexpected(f"{_kind(body[key])} where a list of {key} belongs")
        if item_keys is not None:
            for item in body[key]:
                self.shaped(item, item_keys)
        return body

    def shaped(self, value: Any, keys: tuple[str, ...] | list[str]) -> dict:
        """`value` when it is a JSON object holding `keys`, else a HooklabError."""
        if not isinstance(value, dict):
            raise self.unexpected(f"{_kind(value)} where an object belongs")
        missing = [key for key in keys if key not in value]
        if missing:
            raise self.unexpected(f"no {missing[0]!r} in it")
        return value

    def not_json(self, instead: str = "not JSON") -> HooklabError:
        """The error for a body that is not what a Hooklab server sends for this call."""
        kind = self.content_type.split(";", 1)[0].strip() or "no content type"
        what = f"with {kind}" if self.content else "with an empty body"
        return HooklabError(
            f"{self._server()} answered {self.status_code} {what}, {instead}, to {self._call()} "
            "(is it a Hooklab server?)",
            self.status_code,
            "not_hooklab",
        )

    def unexpected(self, detail: str) -> HooklabError:
        """The error for JSON of another shape than Hooklab's (`detail` says how)."""
        return HooklabError(
            f"{self._server()} answered {self._call()} with JSON that Hooklab does not send "
            f"({detail}) (is it a Hooklab server of this version?)",
            self.status_code,
            "not_hooklab",
        )

    def _server(self) -> str:
        return self.origin[0] if self.origin else "the server"

    def _call(self) -> str:
        return f"{self.origin[1]} {self.origin[2]}" if self.origin else "the call"


def _kind(value: Any) -> str:
    """What a JSON value is, in words: `a list`, `a string`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


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
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                content_type = response.getheader("Content-Type")
                answer = Answer(
                    response.status, response.read(), content_type, response.getheaders()
                )
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
            conn.request(method, path, headers=self.headers)
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
            answer = Answer(response.status, response.read(), response.getheader("Content-Type"))
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
            idle = select.poll()  # not select(): a test process may hold over 1024 files
            idle.register(conn.sock, select.POLLIN)
            if idle.poll(0):
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
        self._path = f"/api/bins/{_bin(bin_id)}/requests/wait"
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
        ended first (its answer was 204), a kept-alive connection turned out closed, or the
        server had no place for the poll (503 too_many_waiting): ask the server again.
        HooklabError for any other failure. Once only."""
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
        try:
            answer = self._client._checked("GET", self._path, answer)
        except HooklabError as exc:
            if exc.code == "too_many_waiting":
                return None  # no place for a poll sent ahead: ask again (Client.wait retries)
            raise
        if answer.status_code == 204 or not answer.content:
            return None
        return answer.object("id", "method")

    def close(self) -> None:
        """Give up the poll (the server notices the closed connection and stops waiting)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Client:
    """Calls one Hooklab server's API. Threads may share one (the pytest fixture's is).

    `lean=True`: the calls go over one kept-alive `Connection` instead of requests (no proxy,
    no .netrc); for a server reached directly, like the pytest fixture's own. A call made while
    another thread's is under way takes a connection of its own (kept for the next such call).
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
        if self.token is not None and (problem := header_value_problem(self.token)):
            raise TokenError(problem)
        self.timeout = timeout
        self.session = requests.Session()
        # A server on this machine is never reached through a proxy (an exported HTTP_PROXY
        # would send 127.0.0.1 to it, and the error would blame Hooklab).
        self.session.trust_env = not on_loopback(self.server)
        self.session.headers["User-Agent"] = f"hooklab-client/{hooklab.shared.__version__}"
        if self.token:
            self.session.headers["Authorization"] = f"Bearer {self.token}"
        self.connection: Connection | None = None
        # How a user of this Client gives it a token (the pytest plugin says its own option).
        self.token_hint = "pass --token or set HOOKLAB_TOKEN"
        self._in_use = threading.Lock()  # held while a call is under way on `connection`
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
        content_type = response.headers.get("Content-Type")
        answer = Answer(response.status_code, response.content, content_type, response.headers)
        return self._checked(method, path, answer)

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
        # One call at a time per connection: another thread's call under way on the Client's
        # own connection leaves this one a spare (http.client is not for two at once).
        own = self._in_use.acquire(blocking=False)
        connection = self.connection if own else self.spare_connection()
        try:
            answer = connection.request(method, target, data, headers, timeout)
        except (OSError, http.client.HTTPException) as exc:
            raise self.failed(method, path, exc, timeout) from None
        finally:
            if own:
                self._in_use.release()
            else:
                self.give_back(connection)
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
        answer.origin = (self.server, method, path)
        if answer.status_code >= 300:
            raise self._error(method, path, answer)
        return answer

    def _error(self, method: str, path: str, response: Answer) -> HooklabError:
        status = response.status_code
        try:
            error = response.json()["error"]
            code, message, field = error["code"], error["message"], error.get("field")
            several = error.get("errors") or []
            if len(several) > 1:  # every bad field of a form, on the one line
                message = " ".join(str(item["message"]) for item in several)
        except (ValueError, KeyError, TypeError):
            code, message, field = None, None, None
        if status == 401:
            hint = (
                "the access token was refused"
                if self.token
                else f"it needs an access token: {self.token_hint}"
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

    def expect(self, value: dict, keys: tuple[str, ...], method: str, path: str) -> dict:
        """`value`, an object the server answered `method path` with, when it holds `keys`;
        else the HooklabError of an answer that is not Hooklab's (as `Answer.object`)."""
        answer = Answer(200, b"", "application/json")
        answer.origin = (self.server, method, path)
        return answer.shaped(value, keys)

    def get_object(self, path: str, *keys: str, **params: Any) -> dict:
        """GET a JSON object that holds `keys` (a HooklabError when the answer does not)."""
        return self.call("GET", path, params=params).object(*keys)

    def live_url(self, bin_id: str, after: int) -> str:
        """The websocket URL of a bin's live stream, from after request `after`."""
        return self.ws_url(f"/ws/bins/{_bin(bin_id)}?{urlencode({'after': int(after)})}")

    # -- bins -------------------------------------------------------------------------------

    def health(self) -> dict:
        """The server's liveness answer (also checks the server is reachable)."""
        return self.get_object("/api/health")

    def create_bin(self, **fields: Any) -> dict:
        """Create a bin: name, response {status, headers, body, delay_ms}, secret, rules,
        rules_seed, forward. (Checked for its `id`: see `expect` for more.)"""
        return self.call("POST", "/api/bins", json=fields).object("id")

    def create_bins(self, count: int, **fields: Any) -> list[dict]:
        """Create `count` bins alike (1 to 100) in one call; the fields of `create_bin`."""
        response = self.call("POST", "/api/bins/batch", json=fields, params={"count": count})
        return response.items("bins", *BIN_KEYS)

    def bins(self) -> list[dict]:
        """Every bin."""
        return self.call("GET", "/api/bins").items("bins", *BIN_KEYS)

    def bin(self, bin_id: str) -> dict:
        """One bin."""
        return self.get_object(f"/api/bins/{_bin(bin_id)}", *BIN_KEYS)

    def update_bin(self, bin_id: str, **fields: Any) -> dict:
        """Change a bin."""
        return self.call("PATCH", f"/api/bins/{_bin(bin_id)}", json=fields).object(*BIN_KEYS)

    def reset_rules(self, bin_id: str) -> dict:
        """Start a bin's rule counts and seeded draws again; returns the bin."""
        return self.call("POST", f"/api/bins/{_bin(bin_id)}/rules/reset").object(*BIN_KEYS)

    def delete_bin(self, bin_id: str) -> None:
        """Delete a bin and its captured requests."""
        self.call("DELETE", f"/api/bins/{_bin(bin_id)}")

    def delete_bins(self, bin_ids: list[str]) -> list[str]:
        """Delete bins and their captured requests, one call (one transaction) per 100;
        returns the ids deleted (an id of no bin is skipped)."""
        for bin_id in bin_ids:
            _bin(bin_id)  # all checked before any is deleted
        deleted: list[str] = []
        for start in range(0, len(bin_ids), BINS_PER_CALL):
            chunk = ",".join(bin_ids[start : start + BINS_PER_CALL])
            answer = self.call("DELETE", "/api/bins", params={"ids": chunk})
            deleted += answer.listing("deleted", None)["deleted"]
        return deleted

    def clear_bin(self, bin_id: str) -> None:
        """Delete a bin's captured requests."""
        self.call("DELETE", f"/api/bins/{_bin(bin_id)}/requests")

    def requests(
        self,
        bin_id: str,
        after: int | None = None,
        limit: int | None = None,
        q: str | None = None,
    ) -> list[dict]:
        """Summaries of a bin's captured requests, newest first (`q`: only those matching)."""
        params = {"after": after, "limit": limit, "q": q or None}
        answer = self.call("GET", f"/api/bins/{_bin(bin_id)}/requests", params=params)
        return answer.items("requests", "id")

    def replay_request(self, bin_id: str, request_id: int | str, fields: dict) -> dict:
        """Have the server replay a captured request (edited, re-signed); returns its answer."""
        path = f"{_request_path(bin_id, request_id)}/replay"
        # The server waits for the target's answer (its own timeout): leave it room.
        answer = self.call("POST", path, json=fields, timeout=max(self.timeout, 60.0))
        return answer.object("status_code", "duration_ms", "error")

    def report_replay(self, bin_id: str, request_id: int | str, entry: dict) -> dict:
        """Keep a replay sent from here in the request's `replays`; returns the kept entry.

        `entry`: `{"url", "method", "status_code" (None when it failed), "duration_ms",
        "error"}`.
        """
        path = f"{_request_path(bin_id, request_id)}/replays"
        return self.call("POST", path, json=entry).object("url", "method", "sent_from")

    def request(self, bin_id: str, request_id: int | str) -> dict:
        """One captured request in full."""
        return self.get_object(_request_path(bin_id, request_id), *REQUEST_KEYS)

    def raw_body(self, bin_id: str, request_id: int | str) -> bytes:
        """The body bytes of a captured request exactly as received."""
        answer = self.call("GET", f"{_request_path(bin_id, request_id)}/raw")
        kind = answer.content_type.split(";", 1)[0].strip().lower()
        if kind and kind != "application/octet-stream":
            raise answer.not_json("not the body bytes")
        return answer.content

    def wait(
        self,
        bin_id: str,
        after: int = 0,
        timeout: float = 10.0,
        method: str | None = None,
        path: str | None = None,
    ) -> dict | None:
        """Long poll: the first request newer than `after` (in full), or None after `timeout`.

        A server whose threads are all held by waiting connections answers 503
        `too_many_waiting` (Retry-After: 1): asked again each second until `timeout`, then
        once more without waiting (what has arrived is answered even then).
        """
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            try:
                response = self.call(
                    "GET",
                    f"/api/bins/{_bin(bin_id)}/requests/wait",
                    params={
                        "after": after,
                        "timeout": f"{left:.3f}",
                        "method": method,
                        "path": path,
                    },
                    timeout=left + 10,
                )
                break
            except HooklabError as exc:
                if exc.code != "too_many_waiting" or left == 0:
                    raise  # (a look without waiting is refused by no server of this version)
                time.sleep(min(BUSY_RETRY_S, max(0.0, deadline - time.monotonic())))
        if response.status_code == 204 or not response.content:
            return None
        return response.object(*REQUEST_KEYS)

    def watch(self, bin_id: str, timeout: float = WAIT_SLICE_S) -> Watch | None:
        """Start waiting for a bin's first request now (a `Watch`); None unless `lean`."""
        if self.connection is None:
            return None
        try:
            return Watch(self, bin_id, timeout)
        except (OSError, http.client.HTTPException) as exc:
            raise self.failed("GET", f"/api/bins/{_bin(bin_id)}/requests/wait", exc) from None

    def export(self, bin_id: str, fmt: str = "json") -> bytes:
        """All of a bin's requests as HAR 1.2 or JSON (the bytes the server sent)."""
        answer = self.call("GET", f"/api/bins/{_bin(bin_id)}/export", params={"format": fmt})
        # Both formats are JSON documents: a page of another server is not an export.
        if answer.content.lstrip()[:1] not in (b"{", b"["):
            raise answer.not_json()
        return answer.content

    # -- webhooks, events, deliveries -------------------------------------------------------

    def events(self) -> list[dict]:
        """The event catalog."""
        return self.call("GET", "/api/events").items("events", "slug")

    def create_webhook(self, **fields: Any) -> dict:
        """Add a webhook: name, url, event, active, secret, payload_format, timeout_s."""
        return self.call("POST", "/api/webhooks", json=fields).object(*WEBHOOK_KEYS)

    def webhooks(self) -> list[dict]:
        """Every webhook."""
        return self.call("GET", "/api/webhooks").items("webhooks", *WEBHOOK_KEYS)

    def webhook(self, webhook_id: int | str) -> dict:
        """One webhook."""
        return self.get_object(f"/api/webhooks/{_webhook(webhook_id)}", *WEBHOOK_KEYS)

    def update_webhook(self, webhook_id: int | str, **fields: Any) -> dict:
        """Change a webhook."""
        path = f"/api/webhooks/{_webhook(webhook_id)}"
        return self.call("PATCH", path, json=fields).object(*WEBHOOK_KEYS)

    def delete_webhook(self, webhook_id: int | str) -> None:
        """Delete a webhook."""
        self.call("DELETE", f"/api/webhooks/{_webhook(webhook_id)}")

    def test_webhook(self, webhook_id: int | str, timeout: float | None = None) -> dict:
        """Send the webhook's test event now and wait for the answer (by default as long as
        an attempt of any webhook may take: `ATTEMPT_WAIT_S`)."""
        path = f"/api/webhooks/{_webhook(webhook_id)}/test"
        wait = self.attempt_wait() if timeout is None else timeout
        return self.call("POST", path, timeout=wait).object("ok", "status_code", "error")

    def attempt_wait(self) -> float:
        """How long to wait for a call that answers once a delivery attempt is over."""
        return max(self.timeout, ATTEMPT_WAIT_S)

    def rotate_secret(self, webhook_id: int | str) -> dict:
        """A new secret; the previous one stays valid until `previous_secret_expires_at`."""
        path = f"/api/webhooks/{_webhook(webhook_id)}/rotate"
        return self.call("POST", path).object("secret")

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
        return self._report(self.call("POST", "/api/probe", json=fields, timeout=wait))

    def probe_webhook(self, webhook_id: int | str, timeout_s: float = 60.0) -> dict:
        """Run the receiver checks against a webhook's URL with its secret; returns the report."""
        path = f"/api/webhooks/{_webhook(webhook_id)}/probe"
        return self._report(self.call("POST", path, timeout=probe_wait_s(timeout_s)))

    @staticmethod
    def _report(answer: Answer) -> dict:
        return answer.listing("checks", PROBE_CHECK_KEYS, "ok")

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
        if idempotency_key and (problem := header_value_problem(idempotency_key)):
            raise HooklabError(f"the idempotency key {problem}", None, "bad_idempotency_key")
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        params = None if check else {"check": "0"}
        path = f"/api/events/{_slug(event)}"
        answer = self.call("POST", path, json=payload, headers=headers, params=params)
        return answer.listing("deliveries", ("id",), "event_id")

    def event(self, slug: str) -> dict:
        """One event of the catalog, with its example payload and schema."""
        return self.get_object(f"/api/events/{_slug(slug)}", "slug", "name", "payload")

    def event_schema(self, slug: str) -> dict:
        """The JSON Schema of an event."""
        return self.get_object(f"/api/events/{_slug(slug)}/schema")

    def check_payload(self, slug: str, payload: Any) -> dict:
        """Check a payload against an event's schema: `{"valid", "problems", "warnings"?}`."""
        path = f"/api/events/{_slug(slug)}/check"
        return self._check_result(self.call("POST", path, json=payload))

    def check_request(self, bin_id: str, request_id: int | str, event: str | None = None) -> dict:
        """Check a captured request against an event (default: the one its header names)."""
        path = f"{_request_path(bin_id, request_id)}/check"
        return self._check_result(self.call("GET", path, params={"event": event}))

    @staticmethod
    def _check_result(answer: Answer) -> dict:
        return answer.listing("problems", ("path", "message"), "valid")

    def create_event(self, **fields: Any) -> dict:
        """Add a user event: slug, name, description, payload (the example), schema."""
        return self.call("POST", "/api/events", json=fields).object("slug")

    def update_event(self, slug: str, **fields: Any) -> dict:
        """Change a user event."""
        return self.call("PATCH", f"/api/events/{_slug(slug)}", json=fields).object("slug")

    def delete_event(self, slug: str) -> None:
        """Delete a user event."""
        self.call("DELETE", f"/api/events/{_slug(slug)}")

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
        ).object()

    def deliveries(
        self,
        webhook_id: int | str,
        limit: int | None = None,
        before: int | None = None,
        status: str | None = None,
    ) -> list[dict]:
        """A webhook's deliveries with their attempts, newest first: all of them, or the newest
        `limit`; `before`: only older than that delivery id; `status`: only those in it.

        The server gives a page at a time (50 unless asked, DELIVERIES_PER_CALL at most): this
        reads page after page, each from below the last one's oldest.
        """
        found: list[dict] = []
        while limit is None or len(found) < limit:
            wanted = DELIVERIES_PER_CALL
            if limit is not None:
                wanted = min(wanted, limit - len(found))
            page = self.deliveries_page(webhook_id, wanted, before, status)
            items = page["deliveries"]
            found += items
            if len(items) < wanted or (page["total"] is not None and page["total"] <= len(items)):
                break  # the last page
            oldest = items[-1]["id"]
            if not isinstance(oldest, int) or (before is not None and oldest >= before):
                break  # not a page below the last one: asking again would loop
            before = oldest
        return found

    def deliveries_page(
        self,
        webhook_id: int | str,
        limit: int | None = None,
        before: int | None = None,
        status: str | None = None,
    ) -> dict:
        """One page of a webhook's deliveries: `{"deliveries", "total"}`, `total` being how
        many match (`X-Total-Count`; None from a server that does not say)."""
        path = f"/api/webhooks/{_webhook(webhook_id)}/deliveries"
        params = {"limit": limit, "before": before, "status": status}
        answer = self.call("GET", path, params=params)
        found = answer.items("deliveries", "id")
        total = (answer.header("X-Total-Count") or "").strip()
        counted = total.isascii() and total.isdigit()
        return {"deliveries": found, "total": int(total) if counted else None}

    def delivery(self, delivery_id: int | str) -> dict:
        """One delivery with its attempts."""
        return self.get_object(f"/api/deliveries/{_delivery(delivery_id)}", "id")

    def redeliver(self, delivery_id: int | str) -> dict:
        """One more attempt of a delivery, now; waits for it (as `test_webhook`)."""
        path = f"/api/deliveries/{_delivery(delivery_id)}/redeliver"
        return self.call("POST", path, timeout=self.attempt_wait()).object("ok")


def probe_wait_s(timeout_s: float) -> float:
    """How long to wait for a probe: a receiver that hangs holds each of its 11 requests."""
    return 12 * (timeout_s + 1) + 10


# What the client reads of the API's objects (an answer without them is not Hooklab's).
BIN_KEYS = ("id", "url")
REQUEST_KEYS = ("id", "method")
WEBHOOK_KEYS = ("id", "name", "url")
PROBE_CHECK_KEYS = ("name", "ok", "status_code", "duration_ms", "error", "expected")

# A bin id is 26 of a-z2-7; anything outside these characters names no bin. The path is
# decoded before routing, so a `/` in an id would reach another route ("BIN/requests").
BIN_ID_CHARS = re.compile(r"[A-Za-z0-9_-]{1,100}")


def _shown(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


def on_loopback(server: str) -> bool:
    """Whether `server` (a base URL) is on this machine: localhost or a loopback address."""
    host = (urlsplit(server).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bin_id_problem(value: Any) -> str | None:
    """Why `value` cannot be a bin id, or None when it may be one."""
    if isinstance(value, str) and BIN_ID_CHARS.fullmatch(value):
        return None
    return f"{_shown(value)} is not a bin id."


def whole_number_problem(value: Any, what: str) -> str | None:
    """Why `value` cannot be an id that is a whole number (`what`: "a webhook id"), or None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return None
    return f"{_shown(value)} is not {what} (a whole number)."


def slug_problem(value: Any) -> str | None:
    """Why `value` cannot be an event slug (it would reach another route), or None."""
    if isinstance(value, str) and value not in ("", ".", "..") and "/" not in value:
        return None
    return f"{_shown(value)} is not an event slug."


def _checked_segment(problem: str | None, value: Any) -> str:
    """One path segment, escaped; a HooklabError (before any call) when it is no id at all."""
    if problem is not None:
        raise HooklabError(problem, None, "bad_id")
    return quote(str(value), safe="")


def _bin(bin_id: Any) -> str:
    return _checked_segment(bin_id_problem(bin_id), bin_id)


def _webhook(webhook_id: Any) -> str:
    return _checked_segment(whole_number_problem(webhook_id, "a webhook id"), webhook_id)


def _delivery(delivery_id: Any) -> str:
    return _checked_segment(whole_number_problem(delivery_id, "a delivery id"), delivery_id)


def _slug(slug: Any) -> str:
    return _checked_segment(slug_problem(slug), slug)


def _request_path(bin_id: Any, request_id: Any) -> str:
    """The API path of one captured request (both ids checked, then escaped)."""
    rid = _checked_segment(whole_number_problem(request_id, "a request id"), request_id)
    return f"/api/bins/{_bin(bin_id)}/requests/{rid}"


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


class ReplayFailed(HooklabError):
    """A replay sent from here got no answer (`url`, `method`: what was sent where)."""

    def __init__(self, url: str, method: str, message: str) -> None:
        super().__init__(message)
        self.url = url
        self.method = method


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
        # A captured `/../../x` stays below `to` (resend.with_subpath), as the server's replay.
        url = with_subpath(to, captured.get("subpath") or "")
        if captured.get("query_string"):
            url += "?" + captured["query_string"]
    # Here, not at the top: own_server imports Flask, which no other client call needs (the
    # CLI and the pytest plugin start faster without it).
    from hooklab.shared.own_server import is_capture_url, points_here, server_at

    here = server_at(client.server)
    if here is not None and points_here(url, here) and not is_capture_url(url):
        # As the server's own replays: a captured request (hostile data) must not drive the
        # Hooklab API it was read from, through a user's replay or `hooklab listen`.
        raise HooklabError(
            f"--to {url} is the Hooklab server's own API or pages ({client.server}); a replay "
            "there may only go to a bin's capture URL (/b/…)"
        )
    session = requests.Session()
    session.headers.clear()  # no default headers of requests' own: only the captured ones
    session.trust_env = False  # no proxy or .netrc credentials from the environment
    try:
        # The method as captured: requests alone would send a captured `get` as `GET`.
        response = send_as_captured(
            session,
            captured["method"],
            url,
            body,
            resend_headers(captured.get("headers") or []),
            timeout,
        )
        response.content  # noqa: B018 - read whole before the session closes (it streams)
    except requests.ConnectionError:
        why = f"cannot reach {url} (is your app running?)"
        raise ReplayFailed(url, captured["method"], why) from None
    except requests.Timeout:
        why = f"{url} did not answer within {timeout:g} s"
        raise ReplayFailed(url, captured["method"], why) from None
    except requests.RequestException as exc:
        why = f"replaying to {url} failed: {exc}"
        raise ReplayFailed(url, captured["method"], why) from None
    finally:
        session.close()
    return captured, response


def parse_json_text(text: str, what: str) -> Any:
    """Parse JSON given on a command line or in a file, or a HooklabError naming `what`.

    Read strictly, as the server reads a body (shared/json_input.py): NaN, Infinity and
    numbers too large for a float (1e309) are not JSON, and no server would take them.
    """
    try:
        return json_input.loads(text)
    except ValueError as exc:
        raise HooklabError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise HooklabError(f"{what} is not valid JSON: it is nested too deeply") from None
