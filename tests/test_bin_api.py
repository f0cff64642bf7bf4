"""The bin's JSON API: bins CRUD, validation, request lists, the long poll, clearing."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from hooklab.app.factory import create_app
from hooklab.bin_server.search import path_filter
from hooklab.shared.context import get_notifier
from tests.conftest import make_settings
from tests.waiting import wait_until_reading

MISSING_BIN = "a" * 26  # the shape of a bin id, but no such bin


def make_bin(client, **fields) -> dict:
    response = client.post("/api/bins", json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def capture(client, bin_id: str, subpath: str = "", method: str = "POST", **kwargs):
    response = client.open(f"/b/{bin_id}{subpath}", method=method, **kwargs)
    assert response.status_code == 200, response.data
    return int(response.headers["X-Hooklab-Request-Id"])


# -- bins ---------------------------------------------------------------------------------------


def test_create_bin_returns_urls_and_defaults(client):
    response = client.post("/api/bins", json={"name": "  orders  "})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/api/bins/{body['id']}"
    assert len(body["id"]) == 26
    assert body["name"] == "orders"
    assert body["url"] == f"http://localhost/b/{body['id']}"
    assert body["inspect_url"] == f"http://localhost/bins/{body['id']}"
    assert body["response"] == {"status": 200, "headers": [], "body": None, "delay_ms": 0}
    assert body["has_secret"] is False
    assert body["request_count"] == 0
    assert body["last_request_at"] is None


@pytest.mark.parametrize("data", [b"", b"  ", b"{}"])
def test_create_bin_with_an_empty_body(client, data):
    response = client.post("/api/bins", data=data, content_type="application/json")
    assert response.status_code == 201
    assert response.get_json()["name"] == ""


def test_create_bin_with_response_and_secret(client):
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = make_bin(
        client,
        name="x",
        secret=secret,
        response={"status": 201, "headers": {"X-A": "1"}, "body": "made", "delay_ms": 5},
    )
    assert body["response"] == {
        "status": 201,
        "headers": [["X-A", "1"]],
        "body": "made",
        "delay_ms": 5,
    }
    assert body["has_secret"] is True
    assert body["secret"] == secret


def test_public_url_is_the_base_of_bin_urls(tmp_path):
    app = create_app(make_settings(tmp_path, public_url="https://hooks.example.test/"))
    body = make_bin(app.test_client())
    assert body["url"] == f"https://hooks.example.test/b/{body['id']}"
    assert body["inspect_url"] == f"https://hooks.example.test/bins/{body['id']}"


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        ({"response": {"status": 600}}, 422, "invalid", "response.status"),
        ({"response": {"status": "200"}}, 422, "invalid", "response.status"),
        ({"response": {"status": True}}, 422, "invalid", "response.status"),
        ({"response": {"delay_ms": 30001}}, 422, "invalid", "response.delay_ms"),
        ({"response": {"delay_ms": -1}}, 422, "invalid", "response.delay_ms"),
        ({"response": {"headers": {"Bad Name": "x"}}}, 422, "invalid", "response.headers"),
        ({"response": {"headers": {"X-A": "a\r\nb"}}}, 422, "invalid", "response.headers"),
        ({"response": {"headers": {"Content-Length": "1"}}}, 422, "invalid", "response.headers"),
        ({"response": {"body": 5}}, 422, "invalid", "response.body"),
        ({"response": {"colour": "red"}}, 422, "invalid", "response.colour"),
        ({"response": "teapot"}, 422, "invalid", "response"),
        ({"colour": "red"}, 422, "invalid", "colour"),
        ({"name": 5}, 422, "invalid", "name"),
        ({"name": "x" * 201}, 422, "invalid", "name"),
        ({"secret": "not-a-secret"}, 422, "invalid", "secret"),
    ],
)
def test_create_bin_validation_names_the_field(client, payload, status, code, field):
    response = client.post("/api/bins", json=payload)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["field"] == field
    assert error["message"]
    assert client.get("/api/bins").get_json() == []


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"name"', "not_an_object"),
        (b"null", "not_an_object"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_bad_json_bodies_are_400(client, data, code, method):
    url = "/api/bins" if method == "POST" else f"/api/bins/{make_bin(client)['id']}"
    response = client.open(url, method=method, data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_read_change_delete_bin(client):
    bin_id = make_bin(client, name="first")["id"]
    assert client.get(f"/api/bins/{bin_id}").get_json()["name"] == "first"

    response = client.patch(
        f"/api/bins/{bin_id}", json={"name": "second", "response": {"status": 202}}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "second"
    # Only the fields given change.
    assert body["response"] == {"status": 202, "headers": [], "body": None, "delay_ms": 0}
    assert client.get(f"/api/bins/{bin_id}").get_json() == body

    # The capture path sees the change at once (its cache is told).
    assert client.post(f"/b/{bin_id}").status_code == 202

    assert client.delete(f"/api/bins/{bin_id}").status_code == 204
    assert client.get(f"/api/bins/{bin_id}").status_code == 404
    assert client.post(f"/b/{bin_id}").status_code == 404


def test_patch_validation_keeps_the_bin_unchanged(client):
    bin_id = make_bin(client, name="keep")["id"]
    response = client.patch(f"/api/bins/{bin_id}", json={"name": "new", "response": {"status": 1}})
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "response.status"
    assert client.get(f"/api/bins/{bin_id}").get_json()["name"] == "keep"


def test_secret_can_be_removed(client):
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    bin_id = make_bin(client, secret=secret)["id"]
    body = client.patch(f"/api/bins/{bin_id}", json={"secret": None}).get_json()
    assert body["has_secret"] is False


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("GET", "/requests"),
        ("DELETE", "/requests"),
        ("GET", "/requests/1"),
        ("GET", "/requests/1/raw"),
        ("GET", "/requests/1/files/0"),
        ("GET", "/requests/wait?timeout=0"),
        ("GET", "/export?format=json"),
    ],
)
def test_unknown_bin_is_404_json(client, method, suffix):
    for bin_id in (MISSING_BIN, "not-a-bin-id", "A" * 26):
        response = client.open(f"/api/bins/{bin_id}{suffix}", method=method, json={})
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "bin_not_found"


@pytest.mark.parametrize("suffix", ["", "/raw", "/files/0"])
def test_unknown_request_is_404_json(client, suffix):
    bin_id = make_bin(client)["id"]
    other = make_bin(client)["id"]
    rid = capture(client, other)  # exists, but in another bin
    for request_id in (rid, rid + 100, 2**64):
        response = client.get(f"/api/bins/{bin_id}/requests/{request_id}{suffix}")
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "request_not_found"


def test_list_bins_newest_first_with_counts(client):
    first = make_bin(client, name="first")["id"]
    second = make_bin(client, name="second")["id"]
    capture(client, first)
    capture(client, first)
    listed = client.get("/api/bins").get_json()
    assert [b["id"] for b in listed] == [second, first]
    assert [b["request_count"] for b in listed] == [0, 2]
    assert listed[0]["last_request_at"] is None
    assert listed[1]["last_request_at"].endswith("Z")
    assert client.get(f"/api/bins/{first}").get_json()["request_count"] == 2


# -- captured requests --------------------------------------------------------------------------


@pytest.fixture
def bin_with_requests(client):
    bin_id = make_bin(client)["id"]
    ids = [capture(client, bin_id, f"/n/{n}", data=str(n)) for n in range(7)]
    return bin_id, ids


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", lambda ids: ids[::-1]),
        ("?limit=3", lambda ids: ids[::-1][:3]),
        ("?after={2}", lambda ids: ids[3:][::-1]),
        ("?before={4}", lambda ids: ids[:4][::-1]),
        ("?before={4}&limit=2", lambda ids: [ids[3], ids[2]]),
        ("?after={1}&before={5}", lambda ids: [ids[4], ids[3], ids[2]]),
        ("?after=0", lambda ids: ids[::-1]),
        ("?after={6}", lambda ids: []),
        ("?limit=1000", lambda ids: ids[::-1]),
    ],
)
def test_list_requests_pagination(client, bin_with_requests, query, expected):
    bin_id, ids = bin_with_requests
    response = client.get(f"/api/bins/{bin_id}/requests" + query.format(*ids))
    assert response.status_code == 200
    assert [r["id"] for r in response.get_json()] == expected(ids)


def test_list_requests_pages_through_with_before(client, bin_with_requests):
    bin_id, ids = bin_with_requests
    seen, before = [], ""
    while True:
        page = client.get(f"/api/bins/{bin_id}/requests?limit=3{before}").get_json()
        if not page:
            break
        seen += [r["id"] for r in page]
        before = f"&before={page[-1]['id']}"
    assert seen == ids[::-1]


def test_default_limit_is_50(client):
    bin_id = make_bin(client)["id"]
    for _ in range(53):
        capture(client, bin_id)
    assert len(client.get(f"/api/bins/{bin_id}/requests").get_json()) == 50


def test_summaries_leave_out_the_body_fields(client, bin_with_requests):
    bin_id, _ = bin_with_requests
    item = client.get(f"/api/bins/{bin_id}/requests?limit=1").get_json()[0]
    assert item["subpath"] == "/n/6"
    assert item["body_size"] == 1
    for name in ("body_text", "body_base64", "json", "form", "files", "signature"):
        assert name not in item


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=1.5", "limit"),
        ("after=-1", "after"),
        ("after=x", "after"),
        ("before=-5", "before"),
        ("before=1e3", "before"),
    ],
)
def test_list_requests_bad_params(client, bin_with_requests, query, field):
    bin_id, _ = bin_with_requests
    response = client.get(f"/api/bins/{bin_id}/requests?{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["field"] == field
    assert field in error["message"]


def test_clear_requests(client, bin_with_requests):
    bin_id, ids = bin_with_requests
    other = make_bin(client)["id"]
    kept = capture(client, other)
    assert client.delete(f"/api/bins/{bin_id}/requests").status_code == 204
    assert client.get(f"/api/bins/{bin_id}/requests").get_json() == []
    assert client.get(f"/api/bins/{bin_id}/requests/{ids[0]}").status_code == 404
    assert client.get(f"/api/bins/{bin_id}").get_json()["request_count"] == 0
    # Other bins keep theirs, and ids keep growing after a clear (they are cursors).
    assert [r["id"] for r in client.get(f"/api/bins/{other}/requests").get_json()] == [kept]
    assert capture(client, bin_id) > kept


def test_changes_wake_the_notifier(app, client):
    notifier = get_notifier(app)
    steps = [
        lambda: make_bin(client)["id"],
        lambda: client.patch(f"/api/bins/{bin_id}", json={"name": "n"}),
        lambda: client.delete(f"/api/bins/{bin_id}/requests"),
        lambda: client.delete(f"/api/bins/{bin_id}"),
    ]
    bin_id = None
    for step in steps:
        before = notifier.version
        result = step()
        bin_id = bin_id or result
        assert notifier.version > before


# -- the long poll ------------------------------------------------------------------------------


def wait_url(live_server, bin_id: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{live_server.url}/api/bins/{bin_id}/requests/wait?{query}"


def send_later(url: str, method: str = "POST", **kwargs) -> threading.Thread:
    """Send a request from another thread once this thread waits for its long poll's answer."""
    waiter = threading.current_thread()

    def run():
        wait_until_reading(waiter)
        requests.request(method, url, timeout=5, **kwargs)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_wait_returns_a_request_captured_after_it_started(live_server):
    bin_ = live_server.create_bin()
    sender = send_later(bin_["url"] + "/hook", json={"n": 1})
    started = time.monotonic()
    response = requests.get(wait_url(live_server, bin_["id"], timeout=10), timeout=15)
    sender.join()
    assert response.status_code == 200
    body = response.json()
    assert body["subpath"] == "/hook"
    assert body["json"] == {"n": 1}
    assert "body_base64" in body  # in full
    assert time.monotonic() - started < 9  # woke on the capture, not on the timeout


def test_wait_times_out_with_204(live_server):
    bin_ = live_server.create_bin()
    response = requests.get(wait_url(live_server, bin_["id"], timeout=0.5), timeout=5)
    assert response.status_code == 204
    assert response.content == b""


def test_wait_returns_at_once_when_a_match_is_already_there(live_server):
    bin_ = live_server.create_bin()
    requests.post(bin_["url"] + "/a", data="first", timeout=5)
    requests.post(bin_["url"] + "/b", data="second", timeout=5)
    # No `after`: from the oldest kept request.
    response = requests.get(wait_url(live_server, bin_["id"], timeout=0), timeout=5)
    assert response.status_code == 200
    assert response.json()["body_text"] == "first"


def test_wait_after_cursor_skips_older_requests(live_server):
    bin_ = live_server.create_bin()
    first = requests.post(bin_["url"], data="1", timeout=5).headers["X-Hooklab-Request-Id"]
    second = requests.post(bin_["url"], data="2", timeout=5).headers["X-Hooklab-Request-Id"]
    response = requests.get(wait_url(live_server, bin_["id"], after=first, timeout=0), timeout=5)
    assert response.json()["id"] == int(second)
    response = requests.get(wait_url(live_server, bin_["id"], after=second, timeout=0.3), timeout=5)
    assert response.status_code == 204


@pytest.mark.parametrize(
    ("filters", "sent", "expected_body"),
    [
        ({"method": "put"}, [("POST", "/x"), ("PUT", "/x")], "PUT /x"),
        ({"method": "PURGE"}, [("GET", "/"), ("PURGE", "/cache")], "PURGE /cache"),
        ({"path": "/orders/2"}, [("POST", "/orders/1"), ("POST", "/orders/2")], "POST /orders/2"),
        ({"path": "orders/2"}, [("POST", "/orders/1"), ("POST", "/orders/2")], "POST /orders/2"),
        ({"path": "/orders/*"}, [("POST", "/users/1"), ("POST", "/orders/9")], "POST /orders/9"),
        ({"path": "/"}, [("POST", "/deep"), ("POST", "")], "POST "),
        (
            {"method": "post", "path": "/a*"},
            [("PUT", "/a1"), ("POST", "/b"), ("POST", "/a2")],
            "POST /a2",
        ),
    ],
)
def test_wait_filters(live_server, filters, sent, expected_body):
    bin_ = live_server.create_bin()
    waiter = threading.current_thread()

    def run():
        wait_until_reading(waiter)
        for method, subpath in sent:
            requests.request(method, bin_["url"] + subpath, data=f"{method} {subpath}", timeout=5)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    response = requests.get(wait_url(live_server, bin_["id"], timeout=10, **filters), timeout=15)
    thread.join()
    assert response.status_code == 200
    assert response.json()["body_text"] == expected_body


def test_wait_filter_with_no_match_times_out(live_server):
    bin_ = live_server.create_bin()
    requests.post(bin_["url"] + "/other", timeout=5)
    response = requests.get(
        wait_url(live_server, bin_["id"], path="/wanted", timeout=0.5), timeout=5
    )
    assert response.status_code == 204


def test_wait_sees_a_capture_it_was_not_told_about(live_server):
    # A capture by another process never reaches this process's notifier; the long poll must
    # still find it by re-reading the store. Simulated by writing the row with a separate
    # connection and no notification.
    import sqlite3

    bin_ = live_server.create_bin()
    db_path = live_server.db
    waiter = threading.current_thread()

    def write_directly():
        wait_until_reading(waiter)
        conn = sqlite3.connect(db_path, timeout=5)
        with conn:
            conn.execute(
                "INSERT INTO captured_requests (bin_id, received_at, method, path, subpath, "
                "query_string, headers, http_version, remote_addr, content_type, body, "
                "body_size, truncated) VALUES (?, 0, 'POST', ?, '', '', '[]', 'HTTP/1.1', "
                "'127.0.0.1', NULL, ?, 3, 0)",
                (bin_["id"], f"/b/{bin_['id']}", b"far"),
            )
        conn.close()

    thread = threading.Thread(target=write_directly, daemon=True)
    thread.start()
    response = requests.get(wait_url(live_server, bin_["id"], timeout=10), timeout=15)
    thread.join()
    assert response.status_code == 200
    assert response.json()["body_text"] == "far"


def test_wait_ends_when_the_bin_is_deleted(live_server):
    bin_ = live_server.create_bin()
    thread = send_later(f"{live_server.url}/api/bins/{bin_['id']}", method="DELETE")
    response = requests.get(wait_url(live_server, bin_["id"], timeout=10), timeout=15)
    thread.join()
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bin_not_found"


@pytest.mark.parametrize("timeout", ["-1", "soon", "nan", "inf", "1e309", "-0.5", "x" * 10_000])
def test_wait_bad_timeout_is_400(client, timeout):
    bin_id = make_bin(client)["id"]
    response = client.get(f"/api/bins/{bin_id}/requests/wait?timeout={timeout}")
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "timeout"


def test_wait_bad_after_is_400(client):
    bin_id = make_bin(client)["id"]
    response = client.get(f"/api/bins/{bin_id}/requests/wait?after=x&timeout=0")
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "after"


@pytest.mark.parametrize("timeout", ["2", "61", "1000000000", "61.5", str(2**64)])
def test_wait_timeout_above_the_max_is_clamped_to_it(tmp_path, timeout):
    # wait_max_s=1: a clamped wait ends (204) within a second, an unclamped one would hang.
    client = create_app(make_settings(tmp_path, wait_max_s=1)).test_client()
    bin_id = make_bin(client)["id"]
    response = client.get(f"/api/bins/{bin_id}/requests/wait?timeout={timeout}")
    assert response.status_code == 204


@pytest.mark.parametrize(
    ("pattern", "subpath", "matches"),
    [
        ("", "/anything", True),
        ("/a", "/a", True),
        ("/a", "/a/b", False),
        ("a", "/a", True),
        ("/", "", True),
        ("/", "/", True),
        ("/a*", "/abc", True),
        ("/a/*", "/a", False),
        ("/a/*", "/a/", True),
        ("*", "", True),
        ("/café", "/caf%C3%A9", True),
        ("/caf%C3%A9", "/caf%C3%A9", True),
        ("/a b", "/a%20b", True),
        ("/A", "/a", False),
        # The same glob as search and rules: `*` anywhere, `?` one character.
        ("/orders/*/paid", "/orders/42/paid", True),
        ("/orders/*/paid", "/orders/42/refunded", False),
        ("/v?/hooks", "/v2/hooks", True),
    ],
)
def test_path_matches(pattern, subpath, matches):
    # What requests/wait does with its `path` (no pattern: every request).
    assert (not pattern or path_filter(pattern)(subpath)) is matches


def test_every_bad_field_of_a_change_is_named_at_once_and_nothing_is_written(client):
    bin_id = client.post("/api/bins", json={"name": "before"}).get_json()["id"]
    answer = client.patch(
        f"/api/bins/{bin_id}",
        json={
            "name": "after",
            "colour": "red",
            "secret": "not a key",
            "response": {"status": 999, "headers": [["Bad Name", "x"]], "delay_ms": -1},
        },
    )
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    fields = [item["field"] for item in error["errors"]]
    assert fields == [
        "colour",
        "secret",
        "response.status",
        "response.headers",
        "response.delay_ms",
    ]
    assert (error["code"], error["field"]) == ("invalid", "colour")  # the first, as before
    assert all(item["message"] for item in error["errors"])
    stored = client.get(f"/api/bins/{bin_id}").get_json()
    assert (stored["name"], stored["response"]["status"]) == ("before", 200)
