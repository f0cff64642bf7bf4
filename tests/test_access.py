"""The access token: every UI, /api and /ws route refuses without it and works with it.

The routes are enumerated from the app's URL map, so a route added later is checked too.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests
from simple_websocket import Client as WsClient
from werkzeug.routing import IntegerConverter, PathConverter, Rule

from hooklab.app.factory import create_app
from hooklab.bin_server.bins import create_bin
from hooklab.shared import security
from hooklab.shared.context import get_store
from tests.conftest import make_settings

TOKEN = "t0ken-for-tests-only"
# Routes that are open on purpose: the static files and the login form itself.
OPEN = {"static", "security.login"}
SKIPPED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, token=TOKEN)


@pytest.fixture
def bin_id(app) -> str:
    with app.app_context():
        return create_bin(get_store(), {"name": "access"})["id"]


def fill(rule: Rule, bin_id: str) -> str:
    """A concrete path for `rule`: the real bin for bin ids, plain values elsewhere."""
    values = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        if name == "bin_id":
            values[name] = bin_id
        elif isinstance(converter, IntegerConverter):
            values[name] = 999999
        elif isinstance(converter, PathConverter):
            values[name] = "some/path"
        else:
            values[name] = "x"
    path = rule.rule
    for name, value in values.items():
        path = _replace_arg(path, name, str(value))
    return path


def _replace_arg(path: str, name: str, value: str) -> str:
    start = path.index("<")
    while start != -1:
        end = path.index(">", start)
        inner = path[start + 1 : end]
        if inner.split(":")[-1] == name:
            return path[:start] + value + path[end + 1 :]
        start = path.find("<", end)
    raise AssertionError(f"no argument {name} in {path}")


def guarded_rules(app) -> list[Rule]:
    rules = [r for r in app.url_map.iter_rules() if r.endpoint not in OPEN]
    # The check below cannot pass vacuously: the main routes of both halves are in the map.
    paths = {r.rule for r in rules}
    assert {"/", "/api/settings", "/api/health"} <= paths, paths
    return rules


def login(live) -> requests.Session:
    """A browser-like session that logged in through the form."""
    session = requests.Session()
    response = session.post(
        f"{live.url}/login",
        data={"token": TOKEN, "next": "/"},
        headers={"Origin": live.url},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 303, response.text
    return session


def call(session, live, method: str, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", 5)
    kwargs.setdefault("params", {"timeout": "0"})  # long polls answer at once
    kwargs.setdefault("allow_redirects", False)
    return session.request(method, f"{live.url}{path}", **kwargs)


def refused(response: requests.Response, path: str) -> str | None:
    """Why a response without the token is not the refusal it should be, or None."""
    if path.startswith(("/api", "/ws")):
        if response.status_code != 401:
            return f"status {response.status_code}, want 401"
        if response.json()["error"]["code"] != "unauthorized":
            return f"error body {response.text}"
        return None
    if response.status_code not in (302, 303) or not response.headers["Location"].startswith(
        "/login?next="
    ):
        return f"status {response.status_code}, want a redirect to /login"
    return None


def admitted(response: requests.Response) -> str | None:
    """Why a response with the token looks refused (or broken), or None."""
    if response.status_code in (401, 403):
        return f"status {response.status_code}: {response.text[:200]}"
    if response.is_redirect and response.headers["Location"].startswith("/login?next="):
        return "redirected to /login"
    if response.status_code >= 500:
        return f"server error {response.status_code}: {response.text[:200]}"
    return None


def test_every_http_route_refuses_without_token_and_works_with_it(app, live_server, bin_id):
    live = live_server
    # The cookie is sent by hand, so that POST /logout cannot end it for the routes after it.
    cookie = {security.COOKIE: login(live).cookies[security.COOKIE]}
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    problems, checked = [], 0
    rules = [r for r in guarded_rules(app) if not r.websocket]
    # Deleting routes last, so the bin is still there for the others.
    rules.sort(key=lambda r: "DELETE" in r.methods)
    for rule in rules:
        path = fill(rule, bin_id)
        for method in sorted(rule.methods - SKIPPED_METHODS):
            checked += 1
            body = {"json": {}} if method in security.STATE_CHANGING else {}
            anonymous = call(requests, live, method, path, **body)
            wrong = call(requests, live, method, path, headers={"Authorization": "Bearer nope"})
            for label, response in (("no token", anonymous), ("wrong token", wrong)):
                if (why := refused(response, path)) is not None:
                    problems.append(f"{method} {path} with {label}: {why}")
            with_bearer = call(requests, live, method, path, headers=bearer, **body)
            if (why := admitted(with_bearer)) is not None:
                problems.append(f"{method} {path} with the bearer token: {why}")
            with_cookie = call(
                requests, live, method, path, headers={"Origin": live.url}, cookies=cookie, **body
            )
            if (why := admitted(with_cookie)) is not None:
                problems.append(f"{method} {path} with the session cookie: {why}")
    assert checked >= 3
    assert not problems, "\n".join(problems)


def test_every_websocket_route_refuses_without_token_and_works_with_it(app, live_server, bin_id):
    rules = [r for r in guarded_rules(app) if r.websocket]
    assert rules, "the live stream route should be in the URL map"
    cookie = login(live_server).cookies[security.COOKIE]
    for rule in rules:
        url = live_server.ws_url + fill(rule, bin_id)
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            assert ws_handshake_status(url, headers) == 401, url
        with_cookie = {"Cookie": f"{security.COOKIE}={cookie}"}
        for headers in (
            {"Authorization": f"Bearer {TOKEN}"},
            {**with_cookie, "Origin": live_server.url},
        ):
            ws = WsClient.connect(url, headers=headers)
            ws.close()
        # The cookie goes with any page's request, a page of another port of this host too
        # (the same site for SameSite): a live stream it could read needs this server's Origin.
        other_port = live_server.url.rsplit(":", 1)[0] + ":1"
        for origin in ({"Origin": other_port}, {"Origin": "null"}, {}):
            assert ws_handshake_status(url, {**with_cookie, **origin}) == 403, origin


def ws_handshake_status(url: str, headers: dict) -> int:
    """The status a websocket handshake gets (a real upgrade request over a socket)."""
    parts = urlsplit(url)
    lines = [
        f"GET {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def test_capture_and_static_stay_open(live_server, bin_id):
    response = requests.post(f"{live_server.url}/b/{bin_id}/hook", data=b"hi", timeout=5)
    assert response.status_code == 200
    assert requests.get(f"{live_server.url}/b/{bin_id}", timeout=5).status_code == 200
    static = requests.get(f"{live_server.url}/static/app.css", timeout=5)
    assert static.status_code == 200
    page = requests.get(f"{live_server.url}/login", timeout=5)
    assert page.status_code == 200
    assert 'name="token"' in page.text


def test_ui_redirect_keeps_where_the_user_was_going(live_server, bin_id):
    response = requests.get(
        f"{live_server.url}/bins/{bin_id}?tab=raw", allow_redirects=False, timeout=5
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next=/bins/{bin_id}?tab%3Draw"
    # The form sends the user back there once logged in.
    session = requests.Session()
    back = session.post(
        f"{live_server.url}/login",
        data={"token": TOKEN, "next": f"/bins/{bin_id}?tab=raw"},
        headers={"Origin": live_server.url},
        allow_redirects=False,
        timeout=5,
    )
    assert back.headers["Location"] == f"/bins/{bin_id}?tab=raw"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_the_server(live_server, target):
    response = requests.post(
        f"{live_server.url}/login",
        data={"token": TOKEN, "next": target},
        headers={"Origin": live_server.url},
        allow_redirects=False,
        timeout=5,
    )
    assert response.headers["Location"] == "/"


def test_session_cookie_flags_and_value(live_server):
    response = requests.post(
        f"{live_server.url}/login",
        data={"token": TOKEN},
        headers={"Origin": live_server.url},
        allow_redirects=False,
        timeout=5,
    )
    set_cookie = response.headers["Set-Cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= attributes
    assert "SameSite=Strict" in set_cookie
    value = response.cookies[security.COOKIE]
    assert TOKEN not in value  # an HMAC of the token, never the token itself
    assert security.session_valid(TOKEN, value)
    assert not security.session_valid("another-token", value)


def test_wrong_token_on_the_form_is_refused(live_server):
    response = requests.post(
        f"{live_server.url}/login",
        data={"token": "guess"},
        headers={"Origin": live_server.url},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 401
    assert security.COOKIE not in response.cookies
    assert "not right" in response.text


def test_forged_and_expired_cookies_are_refused(live_server):
    old = int(time.time()) - security.SESSION_MAX_AGE_S - 10
    for value in (
        security.session_value(TOKEN, old),
        security.session_value("another-token", int(time.time())),
        "12345.deadbeef",
        TOKEN,
        "",
    ):
        response = requests.get(
            f"{live_server.url}/api/settings",
            cookies={security.COOKIE: value},
            timeout=5,
        )
        assert response.status_code == 401, value


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
        {"Origin": "http://127.0.0.1.evil.example"},
        {},  # a browser always sends Origin on a POST; a request without it is not ours
    ],
)
def test_cross_origin_state_change_with_cookie_is_refused(live_server, headers):
    session = login(live_server)
    response = session.post(
        f"{live_server.url}/api/bins", json={"name": "csrf"}, headers=headers, timeout=5
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    logout = session.post(f"{live_server.url}/logout", headers=headers, timeout=5)
    assert logout.status_code == 403


def test_same_origin_state_change_with_cookie_works(live_server):
    session = login(live_server)
    for headers in ({"Origin": live_server.url}, {"Referer": f"{live_server.url}/"}):
        response = session.post(
            f"{live_server.url}/api/bins", json={"name": "mine"}, headers=headers, timeout=5
        )
        assert response.status_code not in (401, 403), response.text


def test_cross_origin_login_is_refused(live_server):
    response = requests.post(
        f"{live_server.url}/login",
        data={"token": TOKEN},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 403
    assert security.COOKIE not in response.cookies


def test_logout_ends_the_session(live_server):
    session = login(live_server)
    assert session.get(f"{live_server.url}/api/settings", timeout=5).status_code == 200
    response = session.post(
        f"{live_server.url}/logout",
        headers={"Origin": live_server.url},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 303
    assert security.COOKIE not in session.cookies
    assert session.get(f"{live_server.url}/api/settings", timeout=5).status_code == 401


def test_without_a_token_everything_is_open(tmp_path):
    from hooklab.app.factory import create_app

    client = create_app(make_settings(tmp_path)).test_client()
    assert client.get("/api/settings").status_code == 200
    assert client.get("/login").headers["Location"] == "/"


# --- the login form is rate-limited per client address -----------------------------------------


def test_ten_wrong_tokens_a_minute_and_the_form_waits(tmp_path):
    client = create_app(make_settings(tmp_path, token=TOKEN)).test_client()
    same_page = {"Origin": "http://localhost"}

    def attempt(token: str, address: str = "127.0.0.1"):
        return client.post(
            "/login",
            data={"token": token},
            headers=same_page,
            environ_base={"REMOTE_ADDR": address},
        )

    for _ in range(security.LoginThrottle.MAX_FAILURES):
        assert attempt("guess").status_code == 401
    refused = attempt("guess")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "Too many wrong tokens" in refused.get_data(as_text=True)
    # While it waits, even the right token is not tried (a guess must not learn it was right).
    assert attempt(TOKEN).status_code == 429
    # Another address is not held up by this one.
    assert attempt(TOKEN, "10.0.0.2").status_code == 303


def test_the_throttle_forgets_failures_after_its_window():
    throttle = security.LoginThrottle()
    for n in range(throttle.MAX_FAILURES):
        throttle.failed("a", now=100.0 + n)
    assert throttle.wait_s("a", now=110.0) == 50  # the first failure leaves the window at 160
    assert throttle.wait_s("a", now=160.0) == 0
    assert throttle.wait_s("b", now=110.0) == 0
