"""Security: who may drive this server, headers on every page, and the access token.

Without a token (the default) a web page the developer happens to visit must be able to do
nothing: every route but capture answers only to the server's own names (against DNS
rebinding), a state change or a websocket from another origin is refused, and a JSON API
takes a body only as `application/json` (a page cannot send that without a CORS preflight,
which this server never grants).

With a token set (`--token` / HOOKLAB_TOKEN), every UI, /api and /ws route needs it, as
`Authorization: Bearer <token>` or as the session cookie the login form sets. Capture routes
(/b/...) are served by the capture middleware in front of Flask, so they never reach the check
below and stay open; /static and /login stay open too.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import threading
import time
from collections import deque
from functools import lru_cache
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import Forbidden

from hooklab.shared.context import get_store
from hooklab.shared.errors import json_error
from hooklab.shared.own_server import is_from_hooklab
from hooklab.shared.params import shown
from hooklab.shared.settings import Settings

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
COOKIE = "hooklab_session"
SESSION_MAX_AGE_S = 30 * 24 * 3600
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Endpoints reachable without the token: the login form and the static files.
OPEN_ENDPOINTS = {"static", "security.login"}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# Sec-Fetch-Site values of a request made by another site's page (another port is same-site).
FOREIGN_FETCH_SITES = {"cross-site", "same-site"}
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

bp = Blueprint("security", __name__)


def _token() -> str | None:
    return current_app.config["HOOKLAB"].token


def session_value(token: str, issued_s: int) -> str:
    """The cookie value for a session issued at `issued_s`: an HMAC keyed by the token.

    The token itself is never put in the cookie; changing the token ends every session.
    """
    mac = hmac.new(token.encode(), f"hooklab-session.{issued_s}".encode(), hashlib.sha256)
    return f"{issued_s}.{mac.hexdigest()}"


def session_valid(token: str, value: str, now_s: int | None = None) -> bool:
    """Whether a cookie value is a session of this token that has not expired."""
    issued_text, _, _ = value.partition(".")
    if not issued_text.isdigit() or len(issued_text) > 12:
        return False
    issued = int(issued_text)
    now_s = int(time.time()) if now_s is None else now_s
    if not (now_s - SESSION_MAX_AGE_S <= issued <= now_s + 60):
        return False
    return hmac.compare_digest(value.encode(), session_value(token, issued).encode())


def bearer_valid(token: str, header: str | None) -> bool:
    """Whether an Authorization header carries this token as a Bearer credential."""
    if not header:
        return False
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credential.strip().encode(), token.encode())


def same_origin() -> bool:
    """Whether the request's Origin (or, without one, its Referer) names this server."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return False
    try:
        parts = urlsplit(source)
    except ValueError:
        return False
    found = _authority(parts.netloc, DEFAULT_PORTS.get(parts.scheme, 0))
    # The Host this request named; without a port (some websocket clients send none), the
    # port the connection came in on.
    try:
        server_port = int(request.environ.get("SERVER_PORT") or 0)
    except ValueError:
        server_port = 0
    allowed = {_authority(request.host, server_port)}
    public_url = current_app.config["HOOKLAB"].public_url
    if public_url:
        public = urlsplit(public_url)
        allowed.add(_authority(public.netloc, DEFAULT_PORTS.get(public.scheme, 0)))
    return found is not None and found in allowed


# -- the server's own names and origins (default mode) ------------------------------------------


def _listens_on_loopback(host: str) -> bool:
    # 0.0.0.0 and :: listen on every address, loopback included.
    if _loopback_only(host):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _loopback_only(host: str) -> bool:
    """Whether a server bound to `host` is reached from this machine only (not 0.0.0.0)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _authority(text: str, default_port: int) -> tuple[str, int] | None:
    """`host[:port]` as (lowercased host without brackets, port), or None when malformed."""
    try:
        parts = urlsplit("//" + text)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return host, port if port is not None else default_port


def own_origins(
    settings: Settings, scheme: str, server_port: int
) -> frozenset[tuple[str, str, int]]:
    """The (scheme, host, port) origins of this server: its address, --public-url, --allow-host.

    `scheme` and `server_port` are the connection's (the port the server is bound to).
    Worked out once per distinct setting values (every API request asks).
    """
    return _origins(
        settings.host, settings.public_url, tuple(settings.allow_host), scheme, server_port
    )


@lru_cache(maxsize=256)
def _origins(
    host: str, public_url: str | None, allow_host: tuple[str, ...], scheme: str, server_port: int
) -> frozenset[tuple[str, str, int]]:
    names = {host.strip("[]").lower()}
    if _listens_on_loopback(host):
        names.update(LOOPBACK_NAMES)
    origins = {(scheme, name, server_port) for name in names}
    if public_url:
        public = urlsplit(public_url)
        found = _authority(public.netloc, DEFAULT_PORTS.get(public.scheme, 80))
        if found and public.scheme in ("http", "https"):
            origins.add((public.scheme, *found))
    for allowed in allow_host:
        found = _authority(allowed, server_port)
        if found is None:
            continue
        ports = {found[1]}
        if ":" not in allowed.rsplit("]", 1)[-1]:
            # A bare name may also be reached through a proxy on the default ports.
            ports.update((80, 443))
        for port in ports:
            origins.update({("http", found[0], port), ("https", found[0], port)})
    return frozenset(origins)


def _own_origins(settings: Settings) -> frozenset[tuple[str, str, int]]:
    # The port the connection came in on: the WSGI server fills SERVER_PORT from its socket.
    try:
        port = int(request.environ.get("SERVER_PORT") or 0)
    except ValueError:
        port = 0
    return own_origins(settings, request.scheme, port)


def host_allowed(settings: Settings) -> bool:
    """Whether the request's Host header is one of the server's own names.

    The name is what stops DNS rebinding (a page cannot make the browser send another one);
    a Host without a port (some websocket clients send none) is taken as that name.
    """
    host = _authority(request.host, 0)
    if host is None:
        return False
    name, port = host
    return any(name == h and port in (0, p) for _, h, p in _own_origins(settings))


def origin_allowed(settings: Settings, origin: str) -> bool:
    """Whether an Origin header names this server: same scheme, host and port."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.path or parts.query:
        return False
    found = _authority(parts.netloc, DEFAULT_PORTS[parts.scheme])
    return found is not None and (parts.scheme, *found) in _own_origins(settings)


def _from_another_site(settings: Settings) -> bool:
    """Whether a browser says this request comes from another site's page."""
    if request.headers.get("Sec-Fetch-Site", "").lower() in FOREIGN_FETCH_SITES:
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        # A browser that sends no Origin (an older one, a privacy extension) still names the
        # page in Referer; curl, the CLI, the client and the fixture send neither.
        referer = request.headers.get("Referer")
        if not referer:
            return False
        origin = _origin_of(referer)
        if origin is None:
            return True  # a Referer that names no page cannot vouch for one
    return not origin_allowed(settings, origin)


def _origin_of(url: str) -> str | None:
    """The origin (scheme://host[:port]) of a URL, or None when it has none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _is_websocket() -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _has_body() -> bool:
    return (
        bool(request.content_length)
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


def _refuse(status: int, code: str, message: str) -> Response:
    if _wants_json():
        return json_error(status, code, message)
    page = render_template("error.html", status=status, title="Refused", message=message)
    return Response(page, status=status, mimetype="text/html")


def check_request() -> Response | None:
    """The default-mode rules: Host allow-list, same-origin state changes, JSON bodies."""
    settings: Settings = current_app.config["HOOKLAB"]
    marker = is_from_hooklab(request.headers)
    if marker is not None:
        # A webhook, probe or forward aimed at this server's API would drive it, and its
        # next delivery would too: a loop. Only a bin's capture URL (not routed here) may
        # take what Hooklab sends. (Saving such a URL is refused already: shared/own_server.)
        return _refuse(
            508,
            "loop_detected",
            f"This request was sent by Hooklab (it has {marker}): a webhook, probe or forward "
            "may reach a bin's capture URL (/b/…) of this server, not its API or pages.",
        )
    if settings.token:
        # With a token the token guards: a foreign page has neither it nor the cookie's site.
        # A server only this machine reaches still knows its names: any other is a page's DNS
        # rebinding, which could try tokens and throttle the user's own login.
        if _loopback_only(settings.host) and not host_allowed(settings):
            return _host_refused()
        return None
    if not host_allowed(settings):
        return _host_refused()
    if (request.method in STATE_CHANGING or _is_websocket()) and _from_another_site(settings):
        return _refuse(
            403,
            "cross_origin",
            "Cross-origin request refused: only this server's own pages, or clients that send "
            "no Origin (curl, the CLI), may change things here.",
        )
    return None


def _host_refused() -> Response:
    found = _authority(request.host, 80)  # Werkzeug gives "" for a Host it cannot read
    if found is None:
        # As sent, quoted and cut (a malformed name is no name to allow).
        raw = request.environ.get("HTTP_HOST", "")
        return _refuse(
            403,
            "host_not_allowed",
            f"The Host header {shown(raw)} is not a valid host name with an optional port "
            "(such as 127.0.0.1:8311), so this server does not answer to it (a guard against "
            "DNS rebinding). A name it should answer to is allowed with --allow-host NAME.",
        )
    bare = found[0]
    return _refuse(
        403,
        "host_not_allowed",
        f"This server does not answer to the name {request.host!r} (a guard against DNS "
        f"rebinding). To allow it, start it with --allow-host {bare} "
        f"(or HOOKLAB_ALLOW_HOST={bare}).",
    )


def check_json_body() -> Response | None:
    """A JSON API takes a body only as application/json (a form post cannot fake that)."""
    if request.method not in STATE_CHANGING or not request.path.startswith("/api/"):
        return None
    if not _has_body() or request.mimetype == "application/json":
        return None
    return json_error(
        415,
        "unsupported_media_type",
        "Send the body as JSON with `Content-Type: application/json`.",
    )


def _wants_json() -> bool:
    path = request.path
    return path == "/api" or path.startswith(("/api/", "/ws/")) or path == "/ws"


def _safe_next(target: str | None) -> str:
    # Only a path on this server: no scheme, no host, no protocol-relative `//` or `/\`.
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 32 for c in target):
        return "/"
    return target


def check_access() -> Response | None:
    """Refuse a request without the token (401 JSON or a redirect to /login); None lets it in."""
    token = _token()
    if not token or request.endpoint in OPEN_ENDPOINTS:
        return None
    if bearer_valid(token, request.headers.get("Authorization")):
        return None
    cookie = request.cookies.get(COOKIE)
    if cookie and session_valid(token, cookie):
        # A cookie is sent by the browser whoever made the page: state changes, and live
        # streams (which a page could read), must come from our own pages. SameSite=Strict
        # stops other sites, not a page of another port of the same host (the same site).
        if (request.method in STATE_CHANGING or _is_websocket()) and not same_origin():
            raise Forbidden("Cross-origin request refused: it must come from this server's pages.")
        return None
    if _wants_json():
        response = json_error(
            401,
            "unauthorized",
            "This server needs its access token: send `Authorization: Bearer <token>`.",
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="hooklab"'
        return response
    return redirect(url_for("security.login", next=request.full_path.rstrip("?")))


class LoginThrottle:
    """Failed logins per client address: past MAX_FAILURES within WINDOW_S, the form waits.

    Hangs off the app's Store (`store.attached`); a guessed token costs a minute per ten.
    """

    MAX_FAILURES = 10
    WINDOW_S = 60.0
    MAX_ADDRESSES = 10_000  # memory stays bounded whoever knocks

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def wait_s(self, address: str, now: float | None = None) -> int:
        """Seconds before `address` may try again (0: it may now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._failures.get(address)
            if failures is None:
                return 0
            while failures and failures[0] <= now - self.WINDOW_S:
                failures.popleft()
            if not failures:
                del self._failures[address]
                return 0
            if len(failures) < self.MAX_FAILURES:
                return 0
            return max(1, math.ceil(failures[0] + self.WINDOW_S - now))

    def failed(self, address: str, now: float | None = None) -> None:
        """Count one failed login from `address`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if address not in self._failures and len(self._failures) >= self.MAX_ADDRESSES:
                self._failures.pop(next(iter(self._failures)))  # the longest-known address
            failures = self._failures.setdefault(address, deque(maxlen=self.MAX_FAILURES))
            failures.append(now)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form: the access token in, a session cookie out."""
    token = _token()
    next_path = _safe_next(request.values.get("next"))
    if not token:
        return redirect(next_path)
    if request.method == "GET":
        return render_template("login.html", next=next_path, failed=False)
    if not same_origin():
        return render_template("login.html", next=next_path, failed=False, cross_origin=True), 403
    throttle = get_store().attached("login_throttle", LoginThrottle)
    address = request.remote_addr or "-"
    wait_s = throttle.wait_s(address)
    if wait_s:
        page = render_template("login.html", next=next_path, failed=False, wait_s=wait_s)
        return page, 429, {"Retry-After": str(wait_s)}
    given = request.form.get("token", "")
    if not hmac.compare_digest(given.encode(), token.encode()):
        throttle.failed(address)
        return render_template("login.html", next=next_path, failed=True), 401
    response = redirect(next_path, code=303)
    response.set_cookie(
        COOKIE,
        session_value(token, int(time.time())),
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
        path="/",
    )
    return response


@bp.post("/logout")
def logout():
    """End the browser's session."""
    response = redirect(url_for("security.login"), code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict")
    return response


def init_app(app: Flask) -> None:
    """Add the access check, the login routes and the security headers."""
    app.register_blueprint(bp)
    app.before_request(check_request)
    app.before_request(check_access)
    app.before_request(check_json_body)
    # Bodies sent to /api and the pages: a huge Content-Length gets 413 before any is read.
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = app.config["HOOKLAB"].max_body_bytes

    @app.context_processor
    def _access_context() -> dict:
        return {"access_token_required": bool(app.config["HOOKLAB"].token)}

    @app.after_request
    def _drain_unread_body(response: Response) -> Response:
        # A body the route did not read (a GET with a body, a DELETE with one): gunicorn drains
        # at most 64 KiB of it, then resets the connection while the client is still sending,
        # and the client never sees the answer. Read the rest here and drop it: bounded by
        # MAX_CONTENT_LENGTH (a larger one is not read at all) and by the read deadline.
        environ = request.environ
        if (
            not environ.get("CONTENT_LENGTH")
            and "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            return response  # no body was sent (most GETs): nothing to drain
        try:
            stream = request.stream
            while stream.read(256 * 1024):
                pass
        except Exception:  # a body that cannot be read changes nothing here
            pass
        return response

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.endpoint != "static":
            # Pages and API answers are live: the back button must not show a stale list (a
            # webhook form shown again, filled in, made a duplicate), and pages behind the
            # token must not stay in shared caches.
            response.headers.setdefault("Cache-Control", "no-store")
        return response
