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
    assert response.json()["error"]["code"] == "bad_request"
    assert "not valid JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize("body", [b'{"name": NaN}', b'{"response": {"delay_ms": 1e400}}'])
def test_a_bin_body_that_is_not_json_is_refused(live_server, body):
    headers = {"Content-Type": "application/json"}
    response = requests.post(f"{live_server.url}/api/bins", data=body, headers=headers, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
