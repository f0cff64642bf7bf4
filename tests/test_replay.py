"""Replay with edits: POST /api/bins/<id>/requests/<rid>/replay against a real server."""

from __future__ import annotations

import base64
import http.client
from urllib.parse import urlsplit

import pytest
import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hooklab.shared.signing import generate_secret, sign
from tests.app_receiver import AppReceiver
from tests.conftest import make_settings, start_live_server

SECRET = generate_secret()


def send_raw(url: str, method: str, headers: list[tuple[str, str]], body: bytes) -> None:
    """Send a request with exactly these headers (http.client adds only Host and length)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    target = parts.path + ("?" + parts.query if parts.query else "")
    conn.putrequest(method, target, skip_accept_encoding=True)
    for name, value in headers:
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    conn.getresponse().read()
    conn.close()


def signed_capture(live_server, bin_, body: bytes, msg_id: str = "msg_original") -> dict:
    """A Standard Webhooks request captured by `bin_`, signed with SECRET; returns it in full."""
    timestamp = 1_700_000_000
    send_raw(
        bin_["url"] + "/hooks?x=1",
        "POST",
        [
            ("Content-Type", "application/json"),
            ("webhook-id", msg_id),
            ("webhook-timestamp", str(timestamp)),
            ("webhook-signature", sign(SECRET, msg_id, timestamp, body)),
            ("X-Custom", "kept"),
        ],
        body,
    )
    return newest(live_server, bin_["id"])


def newest(live_server, bin_id: str) -> dict:
    listed = requests.get(f"{live_server.url}/api/bins/{bin_id}/requests?limit=1", timeout=5)
    rid = listed.json()[0]["id"]
    return requests.get(f"{live_server.url}/api/bins/{bin_id}/requests/{rid}", timeout=5).json()


def replay(live_server, captured: dict, **fields) -> requests.Response:
    url = f"{live_server.url}/api/bins/{captured['bin_id']}/requests/{captured['id']}/replay"
    return requests.post(url, json=fields, timeout=15)


def raw(live_server, captured: dict) -> bytes:
    url = f"{live_server.url}/api/bins/{captured['bin_id']}/requests/{captured['id']}/raw"
    return requests.get(url, timeout=5).content


def kept_headers(captured: dict) -> list[list[str]]:
    skip = {"host", "content-length"}
    return [[n, v] for n, v in captured["headers"] if n.lower() not in skip]


def test_an_unedited_replay_is_byte_exact_and_kept_on_the_request(live_server):
    source = live_server.create_bin()
    target = live_server.create_bin(response={"status": 202, "body": "taken"})
    body = b'{"amount": 4200}\n\xff\x00 not utf-8'
    send_raw(
        source["url"] + "/stripe?a=1",
        "PATCH",
        [("Content-Type", "application/json"), ("X-Custom", "one, two"), ("Te", "trailers")],
        body,
    )
    original = newest(live_server, source["id"])

    response = replay(live_server, original, url=target["url"] + "/app")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status_code"] == 202 and answer["body_text"] == "taken"
    assert answer["error"] is None and answer["duration_ms"] >= 0
    assert ["Content-Type", "text/plain; charset=utf-8"] in answer["headers"]

    replayed = newest(live_server, target["id"])
    assert replayed["method"] == "PATCH" and replayed["subpath"] == "/app"
    assert raw(live_server, replayed) == body
    assert kept_headers(replayed) == [h for h in kept_headers(original) if h[0] != "Te"]
    names = {n.lower() for n, _ in replayed["headers"]}
    assert "user-agent" not in names and "accept-encoding" not in names
    assert dict(replayed["headers"])["Content-Length"] == str(len(body))

    entry = newest(live_server, source["id"])["replays"]
    assert len(entry) == 1
    assert entry[0]["url"] == target["url"] + "/app"
    assert entry[0]["method"] == "PATCH"
    assert entry[0]["edited"] == [] and entry[0]["resigned"] is False
    assert entry[0]["status_code"] == 202 and entry[0]["error"] is None
    assert entry[0]["at"].endswith("Z")


def test_replays_are_listed_newest_first(live_server):
    source = live_server.create_bin()
    target = live_server.create_bin()
    requests.post(source["url"], data=b"x", timeout=5)
    original = newest(live_server, source["id"])
    replay(live_server, original, url=target["url"] + "/first")
    replay(live_server, original, url=target["url"] + "/second", method="PUT")
    kept = newest(live_server, source["id"])["replays"]
    assert [r["url"].rsplit("/", 1)[1] for r in kept] == ["second", "first"]
    assert kept[0]["edited"] == ["method"]


def test_with_path_appends_the_subpath_and_query(live_server):
    source = live_server.create_bin()
    target = live_server.create_bin()
    requests.post(source["url"] + "/hooks/github?delivery=9", json={"zen": "yes"}, timeout=5)
    original = newest(live_server, source["id"])
    replay(live_server, original, url=target["url"], with_path=True)
    replayed = newest(live_server, target["id"])
    assert replayed["subpath"] == "/hooks/github" and replayed["query_string"] == "delivery=9"


@pytest.mark.parametrize(
    ("fields", "edited", "check"),
    [
        ({"method": "PUT"}, ["method"], lambda r, raw: r["method"] == "PUT"),
        (
            {"headers": [["Content-Type", "text/plain"], ["X-New", "a"], ["X-New", "b"]]},
            ["headers"],
            lambda r, raw: (
                ["X-New", "a, b"] in r["headers"]
                and ["Content-Type", "text/plain"] in r["headers"]
                and "X-Custom" not in dict(r["headers"])
            ),
        ),
        ({"body": "plain text é"}, ["body"], lambda r, raw: raw == "plain text é".encode()),
        (
            {"body_base64": base64.b64encode(b"\x00\xffbytes").decode()},
            ["body"],
            lambda r, raw: raw == b"\x00\xffbytes",
        ),
        ({"body": ""}, ["body"], lambda r, raw: raw == b"" and r["body_size"] == 0),
    ],
    ids=["method", "headers", "body", "body_base64", "empty body"],
)
def test_every_edit_kind(live_server, fields, edited, check):
    source = live_server.create_bin()
    target = live_server.create_bin()
    send_raw(source["url"], "POST", [("X-Custom", "kept")], b'{"a": 1}')
    original = newest(live_server, source["id"])
    response = replay(live_server, original, url=target["url"], **fields)
    assert response.status_code == 200, response.text
    replayed = newest(live_server, target["id"])
    assert check(replayed, raw(live_server, replayed))
    assert newest(live_server, source["id"])["replays"][0]["edited"] == edited


def test_a_resigned_replay_after_an_edit_verifies_with_standardwebhooks(live_server):
    source = live_server.create_bin()
    target = live_server.create_bin(secret=SECRET)
    original = signed_capture(live_server, source, b'{"amount": 4200}')
    edited_body = '{"amount": 1}'

    # Edited without re-signing: the old signature no longer matches.
    replay(live_server, original, url=target["url"], body=edited_body)
    unsigned = newest(live_server, target["id"])
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(edited_body.encode(), dict(unsigned["headers"]))

    response = replay(
        live_server, original, url=target["url"], body=edited_body, resign={"secret": SECRET}
    )
    assert response.status_code == 200, response.text
    signed = newest(live_server, target["id"])
    headers = {name.lower(): value for name, value in signed["headers"]}
    assert Webhook(SECRET).verify(raw(live_server, signed), headers) == {"amount": 1}
    assert headers["webhook-id"] == "msg_original"
    assert headers["webhook-timestamp"] != "1700000000"
    assert headers["x-custom"] == "kept"
    # The bin holding the secret agrees.
    assert signed["signature"]["valid"] is True, signed["signature"]
    entry = newest(live_server, source["id"])["replays"][0]
    assert entry["resigned"] is True and entry["edited"] == ["body"]


def test_resign_without_a_webhook_id_gives_a_new_msg_id(live_server):
    source = live_server.create_bin()
    target = live_server.create_bin()
    requests.post(source["url"], json={"plain": True}, timeout=5)
    original = newest(live_server, source["id"])
    replay(live_server, original, url=target["url"], resign={"secret": SECRET})
    signed = newest(live_server, target["id"])
    headers = {name.lower(): value for name, value in signed["headers"]}
    assert headers["webhook-id"].startswith("msg_")
    Webhook(SECRET).verify(raw(live_server, signed), headers)


def test_a_replay_to_the_same_bin_is_captured(live_server):
    bin_ = live_server.create_bin()
    requests.post(bin_["url"], data=b"again", timeout=5)
    original = newest(live_server, bin_["id"])
    response = replay(live_server, original, url=bin_["url"] + "/again")
    assert response.json()["status_code"] == 200
    assert newest(live_server, bin_["id"])["subpath"] == "/again"


def test_redirects_are_not_followed(live_server):
    source = live_server.create_bin()
    redirecting = live_server.create_bin(
        response={"status": 302, "headers": {"Location": source["url"] + "/followed"}}
    )
    requests.post(source["url"], data=b"x", timeout=5)
    original = newest(live_server, source["id"])
    answer = replay(live_server, original, url=redirecting["url"]).json()
    assert answer["status_code"] == 302
    assert newest(live_server, source["id"])["subpath"] == ""


def test_an_unreachable_target_is_an_error_in_the_answer(live_server):
    source = live_server.create_bin()
    requests.post(source["url"], data=b"x", timeout=5)
    original = newest(live_server, source["id"])
    with socket_closed() as port:
        answer = replay(live_server, original, url=f"http://127.0.0.1:{port}/").json()
    assert answer["status_code"] is None
    assert "cannot connect" in answer["error"]
    assert newest(live_server, source["id"])["replays"][0]["error"] == answer["error"]


class socket_closed:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        return None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "http://127.0.0.1:99999/"}, "url"),
        ({"url": "http://127.0.0.1:9/", "colour": "red"}, "colour"),
        ({"url": "http://127.0.0.1:9/", "body": "a", "body_base64": "YQ=="}, "body"),
        ({"url": "http://127.0.0.1:9/", "body_base64": "not base64!"}, "body_base64"),
        ({"url": "http://127.0.0.1:9/", "body": 5}, "body"),
        ({"url": "http://127.0.0.1:9/", "method": "GET POST"}, "method"),
        ({"url": "http://127.0.0.1:9/", "headers": {"A": "b"}}, "headers"),
        ({"url": "http://127.0.0.1:9/", "headers": [["A"]]}, "headers[0]"),
        ({"url": "http://127.0.0.1:9/", "headers": [["A b", "c"]]}, "headers[0]"),
        ({"url": "http://127.0.0.1:9/", "headers": [["A", "b\r\nX: y"]]}, "headers[0]"),
        ({"url": "http://127.0.0.1:9/", "with_path": "yes"}, "with_path"),
        ({"url": "http://127.0.0.1:9/", "resign": "whsec_x"}, "resign"),
        ({"url": "http://127.0.0.1:9/", "resign": {"secret": "nope"}}, "resign.secret"),
        ({"url": "http://127.0.0.1:9/", "resign": {"secret": "whsec_!!!"}}, "resign.secret"),
        ({"url": "http://127.0.0.1:9/", "resign": {"secret": SECRET, "x": 1}}, "resign.x"),
    ],
)
def test_bad_replay_fields_are_422_naming_the_field(app, client, fields, field):
    created = client.post("/api/bins", json={}).get_json()
    client.post(f"/b/{created['id']}", data=b"x")
    rid = client.get(f"/api/bins/{created['id']}/requests").get_json()[0]["id"]
    response = client.post(f"/api/bins/{created['id']}/requests/{rid}/replay", json=fields)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["field"] == field


def test_replay_of_a_missing_request_is_404(client):
    created = client.post("/api/bins", json={}).get_json()
    response = client.post(
        f"/api/bins/{created['id']}/requests/999/replay", json={"url": "http://127.0.0.1:9/"}
    )
    assert response.status_code == 404


def test_the_private_target_block_applies_to_replays(tmp_path):
    live = start_live_server(make_settings(tmp_path, block_private_targets=True))
    try:
        created = live.create_bin()
        requests.post(created["url"], data=b"x", timeout=5)
        original = newest(live, created["id"])
        answer = replay(live, original, url=created["url"]).json()
        assert answer["status_code"] is None
        assert "loopback" in answer["error"]
        assert newest(live, created["id"])["replays"][0]["error"] == answer["error"]
    finally:
        live.kill()


def test_the_answer_body_in_base64_when_not_text(live_server):
    source = live_server.create_bin()
    requests.post(source["url"], data=b"x", timeout=5)
    original = newest(live_server, source["id"])
    receiver = AppReceiver(body=b"\xff\xfe")
    try:
        answer = replay(live_server, original, url=receiver.url, method="GET").json()
    finally:
        receiver.stop()
    assert answer["status_code"] == 200
    assert "body_text" not in answer
    assert base64.b64decode(answer["body_base64"]) == b"\xff\xfe"


def test_a_captured_path_cannot_climb_above_the_apps_url(live_server):
    # A capture of /b/<id>/../../secret/admin (a raw request line), replayed with its path to
    # http://app/hooks: the app gets /hooks/../../secret/admin as sent, not /secret/admin.
    source = live_server.create_bin()
    send_raw(source["url"] + "/../../secret/admin", "POST", [], b"x")
    captured = newest(live_server, source["id"])
    assert captured["subpath"] == "/../../secret/admin"
    app = AppReceiver()
    try:
        response = replay(live_server, captured, url=app.url + "/hooks", with_path=True)
        assert response.status_code == 200, response.text
        assert app.seen[0].path == "/hooks/../../secret/admin"
        # The same from this machine (`hooklab replay` unedited, `hooklab listen`).
        from hooklab.client.http import Client
        from hooklab.client.http import replay as replay_here

        replay_here(Client(live_server.url), source["id"], captured["id"], app.url + "/hooks", True)
        assert app.seen[1].path == "/hooks/../../secret/admin"
    finally:
        app.stop()


# -- a replay sent by a client (an unedited `hooklab replay`), reported to be kept ------------

GOOD_REPORT = {"url": "http://127.0.0.1:5000/hooks", "method": "POST", "duration_ms": 12}


def reported_request(client) -> tuple[str, int]:
    created = client.post("/api/bins", json={}).get_json()
    client.post(f"/b/{created['id']}", data=b"x")
    rid = client.get(f"/api/bins/{created['id']}/requests").get_json()[0]["id"]
    return created["id"], rid


def test_a_reported_replay_is_kept_newest_first(client):
    bin_id, rid = reported_request(client)
    path = f"/api/bins/{bin_id}/requests/{rid}/replays"
    first = client.post(path, json={**GOOD_REPORT, "status_code": 204})
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["sent_from"] == "cli" and first.get_json()["status_code"] == 204
    failed = {**GOOD_REPORT, "status_code": None, "error": "cannot reach it"}
    assert client.post(path, json=failed).status_code == 201
    kept = client.get(f"/api/bins/{bin_id}/requests/{rid}").get_json()["replays"]
    assert [r["status_code"] for r in kept] == [None, 204]
    assert kept[0]["error"] == "cannot reach it" and kept[0]["edited"] == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({**GOOD_REPORT, "status_code": 200, "colour": "red"}, "colour"),
        ({"method": "POST", "duration_ms": 1, "status_code": 200}, "url"),
        ({**GOOD_REPORT, "url": "ftp://x/", "status_code": 200}, "url"),
        ({**GOOD_REPORT, "url": "http://" + "a" * 9000, "status_code": 200}, "url"),
        ({**GOOD_REPORT, "url": "http://[::1/", "status_code": 200}, "url"),
        ({**GOOD_REPORT, "method": "GET POST", "status_code": 200}, "method"),
        ({**GOOD_REPORT, "method": 5, "status_code": 200}, "method"),
        ({**GOOD_REPORT, "status_code": 99}, "status_code"),
        ({**GOOD_REPORT, "status_code": 2**64}, "status_code"),
        ({**GOOD_REPORT, "status_code": True}, "status_code"),
        ({**GOOD_REPORT, "status_code": 200.0}, "status_code"),
        ({**GOOD_REPORT}, "status_code"),  # neither a status nor an error
        ({**GOOD_REPORT, "status_code": 200, "duration_ms": -1}, "duration_ms"),
        ({**GOOD_REPORT, "status_code": 200, "duration_ms": 2**63}, "duration_ms"),
        ({**GOOD_REPORT, "status_code": 200, "duration_ms": "5"}, "duration_ms"),
        ({**GOOD_REPORT, "status_code": None, "error": 5}, "error"),
        ({**GOOD_REPORT, "status_code": None, "error": "x" * 2001}, "error"),
    ],
)
def test_bad_reported_replays_are_422_naming_the_field_and_keep_nothing(client, fields, field):
    bin_id, rid = reported_request(client)
    response = client.post(f"/api/bins/{bin_id}/requests/{rid}/replays", json=fields)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["field"] == field
    assert client.get(f"/api/bins/{bin_id}/requests/{rid}").get_json()["replays"] == []


def test_a_report_for_a_missing_request_is_404_and_a_bad_body_400(client):
    bin_id, rid = reported_request(client)
    missing = client.post(
        f"/api/bins/{bin_id}/requests/{rid + 1}/replays", json={**GOOD_REPORT, "status_code": 200}
    )
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "request_not_found"
    not_json = client.post(
        f"/api/bins/{bin_id}/requests/{rid}/replays",
        data=b"[1,",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400
