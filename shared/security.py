"""Security: headers on every page (a CSP without inline scripts) and the access token.

With a token set (`--token` / HOOKLAB_TOKEN), every UI, /api and /ws route needs it, as
`Authorization: Bearer <token>` or as the session cookie the login form sets. Capture routes
(/b/...) are served by the capture middleware in front of Flask, so they never reach the check
below and stay open; /static and /login stay open too.
"""

from __future__ import annotations

import hashlib
import hmac
import time
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

from hooklab.shared.errors import json_error

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
    netloc = urlsplit(source).netloc.lower()
    allowed = {request.host.lower()}
    public_url = current_app.config["HOOKLAB"].public_url
    if public_url:
        allowed.add(urlsplit(public_url).netloc.lower())
    return netloc in allowed


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
        # A cookie is sent by the browser whoever made the page: state changes must come
        # from our own pages (SameSite=Strict already stops most of this; this is the backstop).
        if request.method in STATE_CHANGING and not same_origin():
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
    given = request.form.get("token", "")
    if not hmac.compare_digest(given.encode(), token.encode()):
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
    app.before_request(check_access)
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
        if _token() and request.endpoint != "static":
            # Pages behind the token must not stay in shared caches or the back button.
            response.headers.setdefault("Cache-Control", "no-store")
        return response
