"""Header names and values that cannot go on the wire are refused (422) before they are saved
or sent, against the real `hooklab serve` (gunicorn): gunicorn answers a 500 for every capture
of a bin whose configured header holds a character it will not send (U+0100 and up, control
characters), and http.client cannot send such a value in a replay."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from hooklab.bin_server.replay import plan
from hooklab.bin_server.rules import validate_headers
from hooklab.shared.errors import ApiError
from tests.conftest import LiveServer, make_settings, start_live_server

ALLOWED = "visible ASCII"  # the start of the message that says which characters are allowed

BAD_VALUES = {
    "U+0100": "a\u0100b",
    "U+0001": "a\u0001b",
    "DEL": "a\x7fb",
    "U+2028": "a\u2028b",
    "emoji": "ok \U0001f600",
    "vertical tab": "a\x0bb",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    """One real server for the module: these tests only add bins and captures of their own."""
    live = start_live_server(make_settings(tmp_path_factory.mktemp("header_values")))
    yield live
    live.kill()


def bins_listed(server: LiveServer) -> list[str]:
    response = requests.get(f"{server.url}/api/bins", timeout=5)
    assert response.status_code == 200, response.text
    return sorted(b["id"] for b in response.json())


def assert_refused(response: requests.Response, field: str) -> str:
    """Check a 422 naming `field`; returns its message."""
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["field"] == field
    return error["message"]


def bad_configurations() -> list:
    cases = []
    for label, value in BAD_VALUES.items():
        cases.append(
            pytest.param(
                {"rules": [{"headers": [["X-R", value]]}]},
                "rules[0].headers",
                id=f"rule value {label}",
            )
        )
        cases.append(
            pytest.param(
                {"response": {"headers": {"X-R": value}}},
                "response.headers",
                id=f"response value {label}",
            )
        )
    cases += [
        pytest.param(
            {"rules": [{"status": 200}, {"headers": {"X-R\n": "a"}}]},
            "rules[1].headers",
            id="rule name ending in a line break",
        ),
        pytest.param(
            {"response": {"headers": [["X R", "a"]]}}, "response.headers", id="name with a space"
        ),
        pytest.param(
            {"response": {"headers": [["X-\u00e9", "a"]]}},
            "response.headers",
            id="name not ASCII",
        ),
        pytest.param(
            {"rules": [{"match": {"method": "POST\n"}}]},
            "rules[0].match.method",
            id="method ending in a line break",
        ),
    ]
    return cases


@pytest.mark.parametrize(("fields", "field"), bad_configurations())
def test_a_bin_with_a_header_that_cannot_be_sent_is_refused_and_not_saved(server, fields, field):
    before = bins_listed(server)
    response = requests.post(f"{server.url}/api/bins", json=fields, timeout=5)
    message = assert_refused(response, field)
    if "value" in message:
        assert ALLOWED in message and "tabs" in message, message
    assert bins_listed(server) == before


@pytest.mark.parametrize(("fields", "field"), bad_configurations())
def test_a_change_to_such_a_header_is_refused_and_the_bin_keeps_answering(server, fields, field):
    created = server.create_bin(name="kept", response={"status": 202, "headers": {"X-Before": "1"}})
    response = requests.patch(
        f"{server.url}/api/bins/{created['id']}", json={"name": "changed", **fields}, timeout=5
    )
    assert_refused(response, field)
    after = requests.get(f"{server.url}/api/bins/{created['id']}", timeout=5).json()
    assert after["name"] == "kept"
    assert after["rules"] == created["rules"]
    assert after["response"] == created["response"]
    answer = requests.post(created["url"], data=b"x", timeout=5)
    assert answer.status_code == 202 and answer.headers["X-Before"] == "1"


def test_the_batch_create_refuses_them_too(server):
    before = bins_listed(server)
    response = requests.post(
        f"{server.url}/api/bins/batch?count=2",
        json={"response": {"headers": {"X-R": "a\u0100b"}}},
        timeout=5,
    )
    assert_refused(response, "response.headers")
    assert bins_listed(server) == before


def test_good_headers_come_back_on_a_capture(server):
    latin1 = "caf\u00e9 \u00ff"  # Latin-1: gunicorn sends it, one byte each
    created = server.create_bin(
        response={"status": 201, "headers": [["X-Default", "tab\tand space ~!"]]},
        rules=[
            {"match": {"path": "/ruled"}, "status": 203, "headers": {"X-Rule": latin1}},
        ],
    )
    default = requests.post(created["url"], data=b"x", timeout=5)
    assert default.status_code == 201
    assert default.headers["X-Default"] == "tab\tand space ~!"
    ruled = requests.post(created["url"] + "/ruled", data=b"x", timeout=5)
    assert ruled.status_code == 203
    assert ruled.headers["X-Rule"] == latin1  # requests reads header bytes as Latin-1
    listed = requests.get(f"{server.url}/api/bins/{created['id']}/requests", timeout=5).json()
    assert len(listed) == 2


# -- replay -------------------------------------------------------------------------------------


def captured_request(server: LiveServer) -> dict:
    created = server.create_bin()
    requests.post(created["url"], data=b"x", headers={"X-Custom": "kept"}, timeout=5)
    listed = requests.get(f"{server.url}/api/bins/{created['id']}/requests", timeout=5).json()
    return {"bin": created, "id": listed[0]["id"]}


def replay(server: LiveServer, captured: dict, **fields) -> requests.Response:
    url = f"{server.url}/api/bins/{captured['bin']['id']}/requests/{captured['id']}/replay"
    return requests.post(url, json=fields, timeout=15)


def replays_kept(server: LiveServer, captured: dict) -> list:
    url = f"{server.url}/api/bins/{captured['bin']['id']}/requests/{captured['id']}"
    return requests.get(url, timeout=5).json()["replays"]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        *[
            pytest.param(
                {"headers": [["X-Ok", "1"], ["X-R", value]]}, "headers[1]", ALLOWED, id=label
            )
            for label, value in BAD_VALUES.items()
        ],
        pytest.param({"headers": [["X-R", "\u00a0lead"]]}, "headers[0]", "start", id="nbsp"),
        pytest.param({"method": "POST\n"}, "method", "method", id="method line break"),
        pytest.param({"url": "http://[::1"}, "url", "IPv6", id="unclosed bracket"),
        pytest.param({"url": "http://[zz]/"}, "url", "IPv6", id="bracketed not IPv6"),
        pytest.param({"url": "http://a]b/"}, "url", "IPv6", id="stray bracket"),
    ],
)
def test_a_replay_that_cannot_be_sent_is_a_422_naming_the_field(server, fields, field, words):
    captured = captured_request(server)
    target = server.create_bin()
    fields = {"url": target["url"], **fields}
    message = assert_refused(replay(server, captured, **fields), field)
    assert words in message, message
    assert replays_kept(server, captured) == []  # nothing sent, nothing recorded


def test_a_replay_with_good_header_values_sends_them(server):
    captured = captured_request(server)
    target = server.create_bin()
    latin1 = "na\u00efve \u00e9t\u00e9"
    response = replay(
        server,
        captured,
        url=target["url"],
        headers=[["X-Latin", latin1], ["X-Tab", "a\tb"], ["X-Padded", "  trimmed\t"]],
    )
    assert response.status_code == 200, response.text
    assert response.json()["status_code"] == 200, response.json()
    listed = requests.get(f"{server.url}/api/bins/{target['id']}/requests", timeout=5).json()
    headers = dict(listed[0]["headers"])
    assert headers["X-Latin"] == latin1
    assert headers["X-Tab"] == "a\tb"
    assert headers["X-Padded"] == "trimmed"


# -- the checks themselves ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["", "plain", "a b\tc", "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./", "\u0080\u00a0\u00ff"],
)
def test_values_gunicorn_sends_are_accepted(value):
    assert validate_headers({"X-V": value}, "response.headers") == [["X-V", value]]


@pytest.mark.parametrize("value", [*BAD_VALUES.values(), "a\rb", "a\nb", "a\0b", "\x1f"])
def test_values_gunicorn_refuses_are_refused(value):
    with pytest.raises(ApiError) as caught:
        validate_headers([["X-V", value]], "rules[3].headers")
    assert caught.value.status == 422 and caught.value.field == "rules[3].headers"


def test_the_replay_check_and_the_rules_check_agree():
    row = {"method": "POST", "headers": "[]", "body": b"", "truncated": 0, "subpath": ""}
    for code in range(0x300):
        value = f"a{chr(code)}b"
        try:
            validate_headers([["X-V", value]], "headers")
            rules_ok = True
        except ApiError:
            rules_ok = False
        try:
            plan({"url": "http://127.0.0.1/", "headers": [["X-V", value]]}, row)
            replay_ok = True
        except ApiError:
            replay_ok = False
        assert rules_ok == replay_ok == (code == 9 or 0x20 <= code <= 0x7E or 0x80 <= code <= 0xFF)


def test_a_bin_saved_with_a_bad_header_before_the_check_still_answers(server):
    """A database from before values were checked: the capture leaves the header out
    instead of gunicorn failing every answer of the bin with a 500."""
    from hooklab.app.factory import open_store

    created = requests.post(
        f"{server.url}/api/bins",
        json={"response": {"headers": [["X-Good", "yes"]]}},
        timeout=5,
    ).json()
    store = open_store(server.settings.db)
    with store.write() as conn:
        conn.execute(
            "UPDATE bins SET response_headers = ? WHERE id = ?",
            ('[["X-Good", "yes"], ["X-Bad", "a\u0100b"], ["X-Bad2\\n", "x"]]', created["id"]),
        )
    # The capture path caches a bin for up to 2 s: a new server process reads it afresh.
    fresh = start_live_server(server.settings)
    try:
        response = requests.post(f"{fresh.url}/b/{created['id']}", data=b"x", timeout=5)
    finally:
        fresh.kill()
    assert response.status_code == 200, response.text
    assert response.headers["X-Good"] == "yes"
    assert "X-Bad" not in response.headers and "X-Bad2" not in response.headers
