"""Safe by default: no web page on another origin can drive a local Hooklab.

Without a token, state changes need this server's own Origin (or none at all, as from curl),
JSON APIs need `Content-Type: application/json`, and every route but capture answers only to
the server's own names (DNS rebinding). The Flask test client sends `Host: localhost` on port
80, so "own" here is http://localhost, http://127.0.0.1 and http://[::1] on port 80.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from urllib.parse import urlsplit

import pytest
import requests

from hooklab.app.factory import create_app
from hooklab.client.http import LiveSocket
from hooklab.shared.security import own_origins
from hooklab.shared.settings import Settings
from tests.conftest import make_settings

EVIL = "http://evil.example"
HOOK = {"name": "Evil", "url": "http://127.0.0.1:9/collect", "event": "*"}


def webhook_count(client) -> int:
    return len(client.get("/api/webhooks").get_json())


def bin_count(client) -> int:
    return len(client.get("/api/bins").get_json())


# --- the attacks of the issue, exactly -------------------------------------------------------


def test_text_plain_post_from_another_origin_creates_no_webhook(client):
    response = client.post(
        "/api/webhooks",
        data=b'{"name": "Evil", "url": "http://evil.example/collect", "event": "*"}',
        headers={"Origin": EVIL, "Content-Type": "text/plain"},
    )
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "cross_origin"
    assert webhook_count(client) == 0


def test_a_bin_answering_html_cannot_be_made_from_another_origin(client):
    fields = {"response": {"headers": {"Content-Type": "text/html"}, "body": "<script>1</script>"}}
    response = client.post("/api/bins", json=fields, headers={"Origin": EVIL})
    assert response.status_code == 403
    assert bin_count(client) == 0


def test_a_rebinding_host_cannot_read_the_bins(client):
    created = client.post("/api/bins", json={"secret": "whsec_" + "A" * 32}).get_json()
    response = client.get("/api/bins", headers={"Host": "evil.example:8000"})
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "host_not_allowed"
    assert "--allow-host evil.example" in error["message"]
    assert "HOOKLAB_ALLOW_HOST=evil.example" in error["message"]
    assert created["id"] not in response.get_data(as_text=True)


# --- Origin and Sec-Fetch-Site on state changes ----------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 201),  # curl, the CLI, the client, the fixture
        ({"Origin": "http://localhost"}, 201),
        ({"Origin": "http://127.0.0.1"}, 201),
        ({"Origin": "http://[::1]"}, 201),
        ({"Origin": "http://localhost:80"}, 201),
        ({"Sec-Fetch-Site": "same-origin"}, 201),
        ({"Sec-Fetch-Site": "none"}, 201),
        ({"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}, 201),
        ({"Origin": "http://localhost:3000"}, 403),  # another port is another origin
        ({"Origin": "https://localhost"}, 403),  # another scheme too
        ({"Origin": EVIL}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": ""}, 403),
        ({"Origin": "http://localhost.evil.example"}, 403),
        ({"Origin": "http://evil.example@localhost"}, 403),
        ({"Origin": "http://localhost/path"}, 403),
        ({"Origin": "http://[::1"}, 403),
        ({"Origin": "file://"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),
        ({"Origin": "http://localhost", "Sec-Fetch-Site": "cross-site"}, 403),
        # Without Origin (an older browser, a privacy extension), the Referer says where from.
        ({"Referer": "http://localhost/bins/abc?x=1"}, 201),
        ({"Referer": "http://127.0.0.1:80/"}, 201),
        ({"Referer": EVIL + "/attack.html"}, 403),
        ({"Referer": "http://localhost:3000/"}, 403),
        ({"Referer": "http://localhost.evil.example/"}, 403),
        ({"Referer": "not a url"}, 403),
        ({"Referer": ""}, 201),  # an empty Referer says nothing, like none at all
        ({"Origin": "http://localhost", "Referer": EVIL + "/"}, 201),  # Origin decides
    ],
)
def test_state_changes_need_our_origin_or_none(client, headers, status):
    response = client.post("/api/bins", json={"name": "x"}, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    assert bin_count(client) == (1 if status == 201 else 0)
    if status == 403:
        assert response.get_json()["error"]["code"] == "cross_origin"


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_every_state_changing_method_is_checked(client, method):
    bin_id = client.post("/api/bins", json={"name": "mine"}).get_json()["id"]
    response = client.open(
        f"/api/bins/{bin_id}", method=method, json={"name": "theirs"}, headers={"Origin": EVIL}
    )
    assert response.status_code == 403
    assert client.get(f"/api/bins/{bin_id}").get_json()["name"] == "mine"


def test_reads_from_another_origin_are_not_refused(client):
    # A GET changes nothing, and without CORS the page cannot read the answer anyway.
    assert client.get("/api/health", headers={"Origin": EVIL}).status_code == 200


def test_html_forms_refuse_another_origin_with_a_page(client):
    form = {"name": "Evil", "url": HOOK["url"], "event": "*"}
    refused = client.post("/webhooks/new", data=form, headers={"Origin": EVIL})
    assert refused.status_code == 403
    assert refused.mimetype == "text/html"
    assert webhook_count(client) == 0
    made = client.post("/webhooks/new", data=form, headers={"Origin": "http://localhost"})
    assert made.status_code == 303
    assert webhook_count(client) == 1


# --- Content-Type on JSON APIs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 201),
        ("application/json; charset=utf-8", 201),
        ("text/plain", 415),
        ("text/plain; charset=utf-8", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        (None, 415),
    ],
)
def test_json_apis_take_a_body_only_as_json(client, content_type, status):
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post("/api/webhooks", data=json.dumps(HOOK), headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 415:
        assert response.get_json()["error"]["code"] == "unsupported_media_type"
        assert webhook_count(client) == 0


def test_a_bodyless_post_needs_no_content_type(client):
    webhook = client.post("/api/webhooks", json=HOOK).get_json()
    response = client.post(f"/api/webhooks/{webhook['id']}/regenerate-secret")
    assert response.status_code == 200
    slug = client.get("/api/events").get_json()[0]["slug"]
    assert client.post(f"/api/events/{slug}").status_code == 202


def test_capture_takes_any_content_type_origin_and_host(client):
    bin_id = client.post("/api/bins", json={}).get_json()["id"]
    response = client.post(
        f"/b/{bin_id}",
        data="a=1",
        headers={
            "Origin": EVIL,
            "Host": "evil.example",
            "Content-Type": "text/plain",
            "Sec-Fetch-Site": "cross-site",
        },
    )
    assert response.status_code == 200
    assert len(client.get(f"/api/bins/{bin_id}/requests").get_json()) == 1


# --- Host: the server's own names only ---------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:80", "127.0.0.1", "127.0.0.1:80", "[::1]", "LOCALHOST"]
)
def test_own_names_are_answered(client, host):
    assert client.get("/api/health", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:80",
        "localhost:3000",  # our name, another port
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "0.0.0.0",
        "user@localhost",
        "localhost:notaport",
        "[::1",
        "",
    ],
)
@pytest.mark.parametrize("path", ["/api/bins", "/", "/webhooks", "/static/app.css", "/login"])
def test_other_names_are_refused_everywhere_but_capture(client, host, path):
    response = client.get(path, headers={"Host": host})
    assert response.status_code == 403, (host, path)
    if path.startswith("/api/"):
        assert response.get_json()["error"]["code"] == "host_not_allowed"
    else:
        assert response.mimetype == "text/html"
        assert "--allow-host" in response.get_data(as_text=True)


def test_allow_host_adds_a_name(tmp_path):
    client = create_app(make_settings(tmp_path, allow_host="dev.test,box.lan:9000")).test_client()
    assert client.get("/api/health", headers={"Host": "dev.test"}).status_code == 200
    assert client.get("/api/health", headers={"Host": "box.lan:9000"}).status_code == 200
    assert client.get("/api/health", headers={"Host": "box.lan:9001"}).status_code == 403
    assert client.get("/api/health", headers={"Host": "other.test"}).status_code == 403
    made = client.post(
        "/api/bins", json={}, headers={"Host": "dev.test", "Origin": "http://dev.test"}
    )
    assert made.status_code == 201


def test_public_url_is_one_of_the_names(tmp_path):
    settings = make_settings(tmp_path, public_url="https://hooks.example.com")
    client = create_app(settings).test_client()
    public = {"Host": "hooks.example.com"}
    assert client.get("/api/health", headers=public).status_code == 200
    same = client.post("/api/bins", json={}, headers={"Origin": "https://hooks.example.com"})
    assert same.status_code == 201
    plain = client.post("/api/bins", json={}, headers={"Origin": "http://hooks.example.com"})
    assert plain.status_code == 403


@pytest.mark.parametrize(
    ("bound", "name", "included"),
    [
        ("127.0.0.1", "localhost", True),
        ("127.0.0.1", "::1", True),
        ("0.0.0.0", "127.0.0.1", True),  # listens on every address, loopback included
        ("::", "localhost", True),
        ("192.168.1.5", "192.168.1.5", True),
        ("192.168.1.5", "localhost", False),  # loopback does not reach that bind
    ],
)
def test_own_names_follow_the_bound_address(bound, name, included):
    settings = Settings({"host": bound}, environ={})
    assert (("http", name, 8000) in own_origins(settings, "http", 8000)) is included


def test_token_mode_keeps_its_own_rules(tmp_path):
    shared = make_settings(tmp_path, token="s3cret", host="0.0.0.0")  # noqa: S104
    client = create_app(shared).test_client()
    bearer = {"Authorization": "Bearer s3cret"}
    # Reached by others, the token guards: a page has neither it nor the cookie, so the name
    # (the deployment's own: a proxy's, a LAN address) is not checked.
    assert (
        client.get("/api/health", headers={**bearer, "Host": "hooks.internal"}).status_code == 200
    )
    assert client.get("/api/bins", headers={"Host": "evil.example"}).status_code == 401


def test_token_mode_on_loopback_refuses_a_rebinding_name_at_login_too(tmp_path):
    # A DNS-rebinding page could post wrong tokens to /login: ten a minute, throttling the
    # user's own login (the throttle counts by address, and every page here is 127.0.0.1).
    client = create_app(make_settings(tmp_path, token="s3cret")).test_client()
    rebound = {
        "Host": "rebind.attacker.example:8000",
        "Origin": "http://rebind.attacker.example:8000",
    }
    for _ in range(12):
        refused = client.post("/login", data={"token": "guess"}, headers=rebound)
        assert refused.status_code == 403
    assert b"does not answer to the name" in refused.data
    own = {"Host": "127.0.0.1:80", "Origin": "http://127.0.0.1:80"}
    assert client.post("/login", data={"token": "s3cret"}, headers=own).status_code in (302, 303)
    bearer = {"Authorization": "Bearer s3cret"}
    assert client.get("/api/health", headers={**bearer, "Host": "evil.example"}).status_code == 403


# --- the websocket handshake (real server) ------------------------------------------------------


def ws_handshake_status(url: str, headers: dict) -> int:
    """The status a websocket handshake gets (a real upgrade request over a socket)."""
    parts = urlsplit(url)
    fields = {
        "Host": parts.netloc,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
        **headers,
    }
    head = [f"GET {parts.path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items())]
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # our address, another port
        {"Sec-Fetch-Site": "cross-site"},
        {"Host": "evil.example"},
    ],
)
def test_websocket_handshake_from_another_origin_is_refused(live_server, headers):
    bin_id = live_server.create_bin()["id"]
    assert ws_handshake_status(f"{live_server.ws_url}/ws/bins/{bin_id}", headers) == 403


@pytest.mark.parametrize("own_origin", [False, True])
def test_websocket_from_our_page_or_without_origin_works(live_server, own_origin):
    bin_id = live_server.create_bin()["id"]
    headers = {"Origin": live_server.url} if own_origin else {}
    ws = LiveSocket.connect(f"{live_server.ws_url}/ws/bins/{bin_id}", headers=headers)
    try:
        requests.post(f"{live_server.url}/b/{bin_id}", data="hi", timeout=5)
        frame = ws.receive(timeout=5)
        assert frame is not None and '"type": "request"' in frame
    finally:
        ws.close()
