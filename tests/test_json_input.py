"""JSON from outside is read strictly: NaN, Infinity and out-of-range numbers are not JSON."""

from __future__ import annotations

import pytest
import requests

from hooklab.shared import json_input


@pytest.mark.parametrize(
    "text", ["NaN", "[Infinity]", '{"a": -Infinity}', "1e400", '{"a": [-1e999]}', "1E+309"]
)
def test_what_python_reads_but_json_does_not_is_refused(text):
    with pytest.raises(ValueError):
        json_input.loads(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e308", 1e308), ("-0.0", -0.0), ("[1, 2.5]", [1, 2.5]), ('{"a": null}', {"a": None})],
)
def test_json_is_read_as_json(text, value):
    assert json_input.loads(text) == value


@pytest.mark.parametrize("payload", [b'{"a": NaN}', b'{"a": 1e400}', b"[Infinity]"])
def test_an_event_payload_that_is_not_json_is_refused_and_nothing_fired(live_server, payload):
    base = live_server.url
    slug = requests.get(f"{base}/api/events", timeout=5).json()[0]["slug"]
    headers = {"Content-Type": "application/json"}
    response = requests.post(f"{base}/api/events/{slug}", data=payload, headers=headers, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert "not valid JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize("body", [b'{"name": NaN}', b'{"response": {"delay_ms": 1e400}}'])
def test_a_bin_body_that_is_not_json_is_refused(live_server, body):
    headers = {"Content-Type": "application/json"}
    response = requests.post(f"{live_server.url}/api/bins", data=body, headers=headers, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


LONE = b'"\\ud800"'  # a JSON string escape of half a UTF-16 pair: valid syntax, not text


@pytest.mark.parametrize(
    "text",
    [b'{"a": ' + LONE + b"}", b'{"\\udc00": 1}', b"[[" + LONE + b"]]", b'"x\\udfff"'],
)
def test_a_lone_surrogate_is_not_text(text):
    with pytest.raises(ValueError, match="lone UTF-16 surrogate"):
        json_input.loads(text)
    assert json_input.loads('{"smile": "\\ud83d\\ude00"}') == {"smile": "\U0001f600"}


def test_no_route_takes_a_lone_surrogate_and_none_fails_on_one(client):
    # Each was a 500 (UnicodeEncodeError writing to SQLite or encoding the answer).
    bin_id = client.post("/api/bins", json={"name": "ok"}).get_json()["id"]
    client.post(f"/b/{bin_id}", data=b"x")
    request_id = client.get(f"/api/bins/{bin_id}/requests").get_json()[0]["id"]
    webhook = {"name": "ok", "url": "https://example.com/hook", "event": "*"}
    webhook_id = client.post("/api/webhooks", json=webhook).get_json()["id"]
    for method, path, body in [
        ("POST", "/api/bins", b'{"name": ' + LONE + b"}"),
        ("POST", "/api/bins", b'{"response": {"body": ' + LONE + b"}}"),
        ("PATCH", f"/api/bins/{bin_id}", b'{"name": ' + LONE + b"}"),
        ("POST", "/api/webhooks", b'{"name": "ok", "event": "*", "url": ' + LONE + b"}"),
        ("PATCH", f"/api/webhooks/{webhook_id}", b'{"event": ' + LONE + b"}"),
        ("POST", "/api/events", b'{"slug": "s", "name": ' + LONE + b', "payload": {}}'),
        ("POST", "/api/events/payment_received", b'{"a": ' + LONE + b"}"),
        ("POST", f"/api/bins/{bin_id}/requests/{request_id}/replay",
         b'{"url": "http://127.0.0.1:9/", "body": ' + LONE + b"}"),
        ("POST", f"/api/bins/{bin_id}/requests/{request_id}/replays",
         b'{"url": "http://127.0.0.1:9/", "method": "POST", "duration_ms": 1, "error": '
         + LONE + b"}"),
    ]:  # fmt: skip
        response = client.open(path, method=method, data=body, content_type="application/json")
        assert response.status_code == 400, (method, path, response.get_data(as_text=True))
        error = response.get_json()["error"]
        assert "lone UTF-16 surrogate" in error["message"], (path, error)
    assert client.get(f"/api/bins/{bin_id}").get_json()["name"] == "ok"  # nothing changed
