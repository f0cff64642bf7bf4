"""Export: HAR 1.2 with the fields the spec requires, and a JSON list that round-trips."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest
import requests

import hooklab.shared
from tests.conftest import make_settings, start_live_server

BINARY = b"\x00\x01\xfe\xff" + bytes(range(256))

# Required members of each HAR 1.2 object (http://www.softwareishard.com/blog/har-12-spec/).
HAR_REQUIRED = {
    "log": {"version", "creator", "entries"},
    "creator": {"name", "version"},
    "entry": {"startedDateTime", "time", "request", "response", "cache", "timings"},
    "request": {
        "method",
        "url",
        "httpVersion",
        "cookies",
        "headers",
        "queryString",
        "headersSize",
        "bodySize",
    },
    "response": {
        "status",
        "statusText",
        "httpVersion",
        "cookies",
        "headers",
        "content",
        "redirectURL",
        "headersSize",
        "bodySize",
    },
    "content": {"size", "mimeType"},
    "timings": {"send", "wait", "receive"},
    "postData": {"mimeType"},
}


def export(live_server, bin_id: str, fmt: str | None):
    query = f"?format={fmt}" if fmt is not None else ""
    return requests.get(f"{live_server.url}/api/bins/{bin_id}/export{query}", timeout=10)


@pytest.fixture
def filled_bin(live_server) -> tuple[dict, list[int]]:
    """A bin with a configured response and four different requests (oldest first)."""
    bin_ = live_server.create_bin(
        name="export me",
        response={"status": 201, "headers": {"X-Reply": "yes"}, "body": "made", "delay_ms": 0},
    )
    url = bin_["url"]
    sent = [
        requests.post(url + "/json?x=1&x=2&e=", json={"a": [1, "ü"]}, timeout=5),
        requests.put(url + "/bin", data=BINARY, timeout=5),
        requests.get(url, cookies={"sid": "abc", "theme": "dark"}, timeout=5),
        requests.post(url + "/form", data={"k": "v", "m": ["1", "2"]}, timeout=5),
    ]
    return bin_, [int(r.headers["X-Hooklab-Request-Id"]) for r in sent]


def assert_har_shape(har: dict) -> None:
    """Every object carries the members HAR 1.2 requires, with the right types."""
    log = har["log"]
    assert HAR_REQUIRED["log"] <= set(log)
    assert log["version"] == "1.2"
    assert HAR_REQUIRED["creator"] <= set(log["creator"])
    assert isinstance(log["entries"], list)
    for entry in log["entries"]:
        assert HAR_REQUIRED["entry"] <= set(entry)
        datetime.fromisoformat(entry["startedDateTime"])  # ISO 8601
        assert isinstance(entry["time"], (int, float)) and entry["time"] >= 0
        request, response = entry["request"], entry["response"]
        assert HAR_REQUIRED["request"] <= set(request)
        assert HAR_REQUIRED["response"] <= set(response)
        assert HAR_REQUIRED["content"] <= set(response["content"])
        assert HAR_REQUIRED["timings"] <= set(entry["timings"])
        for pairs in (
            request["headers"],
            request["queryString"],
            request["cookies"],
            response["headers"],
        ):
            assert isinstance(pairs, list)
            for pair in pairs:
                assert {"name", "value"} <= set(pair)
                assert isinstance(pair["name"], str) and isinstance(pair["value"], str)
        assert isinstance(request["bodySize"], int)
        assert isinstance(response["status"], int)
        if "postData" in request:
            assert HAR_REQUIRED["postData"] <= set(request["postData"])
            assert isinstance(request["postData"]["text"], str)


def test_har_export(live_server, filled_bin):
    bin_, ids = filled_bin
    response = export(live_server, bin_["id"], "har")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="hooklab-bin-{bin_["id"]}.har"'
    har = response.json()
    assert_har_shape(har)
    assert har["log"]["creator"] == {"name": "hooklab", "version": hooklab.shared.__version__}

    entries = har["log"]["entries"]
    assert [e["_hooklab"]["id"] for e in entries] == ids  # oldest first
    json_entry, binary_entry, get_entry, form_entry = entries

    request = json_entry["request"]
    assert request["method"] == "POST"
    assert request["url"] == f"{bin_['url']}/json?x=1&x=2&e="
    assert request["httpVersion"] == "HTTP/1.1"
    assert request["queryString"] == [
        {"name": "x", "value": "1"},
        {"name": "x", "value": "2"},
        {"name": "e", "value": ""},
    ]
    assert {"name": "Content-Type", "value": "application/json"} in request["headers"]
    assert request["postData"]["mimeType"] == "application/json"
    assert json.loads(request["postData"]["text"]) == {"a": [1, "ü"]}
    assert "encoding" not in request["postData"]
    assert request["bodySize"] == len(request["postData"]["text"].encode())

    post = binary_entry["request"]["postData"]
    assert post["encoding"] == "base64"
    assert base64.b64decode(post["text"]) == BINARY
    assert binary_entry["request"]["bodySize"] == len(BINARY)

    get_request = get_entry["request"]
    assert "postData" not in get_request
    assert get_request["bodySize"] == 0
    assert get_request["cookies"] == [
        {"name": "sid", "value": "abc"},
        {"name": "theme", "value": "dark"},
    ]

    assert form_entry["request"]["postData"]["text"] == "k=v&m=1&m=2"

    # The response is the bin's configured one.
    for entry in entries:
        reply = entry["response"]
        assert reply["status"] == 201
        assert reply["statusText"] == "Created"
        assert {"name": "X-Reply", "value": "yes"} in reply["headers"]
        assert reply["content"] == {
            "size": 4,
            "mimeType": "text/plain; charset=utf-8",
            "text": "made",
        }
        assert reply["bodySize"] == 4


def test_json_export_round_trips(live_server, filled_bin):
    bin_, ids = filled_bin
    response = export(live_server, bin_["id"], "json")
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="hooklab-bin-{bin_["id"]}.json"'
    exported = response.json()
    one_by_one = [
        requests.get(f"{live_server.url}/api/bins/{bin_['id']}/requests/{rid}", timeout=5).json()
        for rid in ids
    ]
    assert exported == one_by_one
    assert base64.b64decode(exported[1]["body_base64"]) == BINARY
    assert exported[3]["form"] == {"k": ["v"], "m": ["1", "2"]}


@pytest.mark.parametrize("fmt", [None, "", "HAR", " har "])
def test_default_format_is_har(live_server, filled_bin, fmt):
    bin_, _ = filled_bin
    assert export(live_server, bin_["id"], fmt).json()["log"]["version"] == "1.2"


@pytest.mark.parametrize("fmt", ["xml", "HAR2", "csv", "jsonl"])
def test_bad_format_is_400(live_server, fmt):
    bin_ = live_server.create_bin()
    response = export(live_server, bin_["id"], fmt)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "format"
    assert "har" in error["message"]


@pytest.mark.parametrize(("fmt", "empty"), [("har", {"entries": []}), ("json", [])])
def test_empty_bin_exports(live_server, fmt, empty):
    bin_ = live_server.create_bin()
    body = export(live_server, bin_["id"], fmt).json()
    if fmt == "har":
        assert_har_shape(body)
        assert body["log"]["entries"] == []
    else:
        assert body == empty


def test_export_of_an_unknown_bin_is_404(live_server):
    response = export(live_server, "a" * 26, "har")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bin_not_found"


def test_har_marks_truncated_requests(tmp_path):
    live = start_live_server(make_settings(tmp_path, max_body_bytes=10))
    try:
        bin_ = live.create_bin()
        response = requests.post(bin_["url"], data=b"x" * 50, timeout=5)
        assert response.status_code == 413
        har = export(live, bin_["id"], "har").json()
        assert_har_shape(har)
        (entry,) = har["log"]["entries"]
        assert entry["_hooklab"]["truncated"] is True
        assert entry["request"]["bodySize"] == 50
        assert "postData" not in entry["request"]
        # What the client was told: the 413, not the bin's configured answer.
        assert entry["response"]["status"] == 413
        assert json.loads(entry["response"]["content"]["text"]) == response.json()
    finally:
        live.stop()


def test_signature_and_full_fields_in_json_export(live_server):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    bin_ = live_server.create_bin(secret=secret)
    requests.post(bin_["url"], json={}, timeout=5)
    (item,) = export(live_server, bin_["id"], "json").json()
    assert item["signature"]["valid"] is False
    assert item["json"] == {}


def test_har_responses_are_what_each_request_was_answered_with(live_server):
    rules = [
        {"match": {"path": "/fail"}, "status": 503},
        {"match": {"path": "/drop"}, "drop": True},
    ]
    made = live_server.create_bin(response={"status": 201}, rules=rules)
    requests.post(made["url"] + "/ok", data=b"a", timeout=5)
    requests.post(made["url"] + "/fail", data=b"b", timeout=5)
    with pytest.raises(requests.ConnectionError):
        requests.post(made["url"] + "/drop", data=b"c", timeout=5)
    # The bin's own answer changes afterwards: the export still says what was answered.
    changed = requests.patch(
        f"{live_server.url}/api/bins/{made['id']}", json={"response": {"status": 202}}, timeout=5
    )
    assert changed.status_code == 200
    har = requests.get(
        f"{live_server.url}/api/bins/{made['id']}/export?format=har", timeout=10
    ).json()
    by_path = {e["request"]["url"].rsplit("/", 1)[1]: e["response"] for e in har["log"]["entries"]}
    assert by_path["ok"]["status"] == 201
    assert by_path["fail"]["status"] == 503 and by_path["fail"]["statusText"]
    assert by_path["drop"]["status"] == 0


def test_har_response_of_a_sync_forward_is_the_apps_answer(live_server):
    from tests.app_receiver import AppReceiver

    app = AppReceiver(status=418, headers=[("Content-Type", "text/plain")], body=b"teapot")
    try:
        made = live_server.create_bin(forward={"url": app.url, "mode": "sync"})
        assert requests.post(made["url"], data=b"x", timeout=10).status_code == 418
    finally:
        app.stop()
    har = requests.get(
        f"{live_server.url}/api/bins/{made['id']}/export?format=har", timeout=10
    ).json()
    response = har["log"]["entries"][0]["response"]
    assert response["status"] == 418
    assert response["content"]["text"] == "teapot"
    assert response["content"]["mimeType"] == "text/plain"


def test_har_cookies_of_two_cookie_headers_are_both_there(live_server):
    # The server joins the two headers with a comma: cookie b was lost inside a's value.
    import socket

    bin_ = live_server.create_bin()
    head = (
        f"GET /b/{bin_['id']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Cookie: a=1; c=3\r\nCookie: b=2\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=5) as sock:
        sock.sendall(head.encode())
        while sock.recv(65536):
            pass
    har = requests.get(f"{live_server.url}/api/bins/{bin_['id']}/export", timeout=5).json()
    cookies = har["log"]["entries"][0]["request"]["cookies"]
    assert cookies == [
        {"name": "a", "value": "1"},
        {"name": "c", "value": "3"},
        {"name": "b", "value": "2"},
    ]
