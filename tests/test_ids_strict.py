"""Ids in URL paths are plain ASCII digits, as ids in query strings (shared/params.py): "+1",
" 1", "1_0", "١" (Arabic-Indic one) or "１" (fullwidth one) name no row, so each row has one
address. And /ws and /api themselves answer errors in JSON, as everything under them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from hooklab.shared.store import MAX_ROW_ID, row_id
from tests.conftest import LiveServer, make_settings, start_live_server

URL = "http://127.0.0.1:9/hooks"  # nothing listens: deliveries fail, which is all we need

# Each of these names webhook (or delivery) 1 or 10 to a bare int().
NOT_IDS = [
    "%D9%A1",  # ١ Arabic-Indic digit one
    "%EF%BC%91",  # １ fullwidth digit one
    "%F0%9D%9F%8F",  # 𝟏 mathematical bold digit one
    "%E0%A5%A7",  # १ Devanagari digit one
    "+1",
    "%201",
    "1%20",
    "%091",
    "1_0",
    "%D9%A1%D9%A0",  # ١٠
    "-0",
    "0x1",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    """A real server with ten webhooks (ids 1 to 10) and a delivery (id 1)."""
    live = start_live_server(make_settings(tmp_path_factory.mktemp("ids_strict")))
    for n in range(10):
        body = {"name": f"Hook {n + 1}", "url": URL, "event": "payment_received", "active": False}
        response = requests.post(f"{live.url}/api/webhooks", json=body, timeout=5)
        assert response.status_code == 201, response.text
        assert response.json()["id"] == n + 1
    fired = requests.post(f"{live.url}/api/webhooks/1/test", json={}, timeout=15)
    assert fired.status_code in (200, 201), fired.text
    yield live
    live.kill()


def get(server: LiveServer, path: str) -> requests.Response:
    return requests.get(server.url + path, timeout=10, allow_redirects=False)


def test_the_plain_ids_are_found(server):
    assert get(server, "/api/webhooks/1").json()["id"] == 1
    assert get(server, "/api/webhooks/10").json()["id"] == 10
    assert get(server, "/api/webhooks/1/deliveries").status_code == 200
    assert get(server, "/api/deliveries/1").json()["id"] == 1
    assert get(server, "/webhooks/1").status_code == 200
    # Leading zeros are taken, as in a query string (?after=007).
    assert get(server, "/api/webhooks/01").json()["id"] == 1


@pytest.mark.parametrize("text", NOT_IDS)
@pytest.mark.parametrize(
    "template",
    [
        "/api/webhooks/{}",
        "/api/webhooks/{}/deliveries",
        "/api/deliveries/{}",
        "/webhooks/{}",
    ],
)
def test_other_spellings_of_an_id_are_not_found(server, template, text):
    # The API says which id is not a number (design.md: a 400 that names it); a page says
    # there is no such webhook.
    response = get(server, template.format(text))
    if template.startswith("/api/"):
        assert response.status_code == 400, (response.status_code, response.text[:200])
        field = "delivery_id" if "deliveries/{}" in template else "webhook_id"
        assert response.json()["error"]["field"] == field
    else:
        assert response.status_code == 404, (response.status_code, response.text[:200])


@pytest.mark.parametrize("text", ["%D9%A1", "+1", "1_0", "%EF%BC%91"])
def test_changes_through_other_spellings_find_nothing_and_change_nothing(server, text):
    before = get(server, "/api/webhooks/1").json()
    for method, template, body in [
        ("PATCH", "/api/webhooks/{}", {"name": "renamed"}),
        ("POST", "/api/webhooks/{}/regenerate-secret", {}),
        ("POST", "/api/deliveries/{}/redeliver", {}),
        ("DELETE", "/api/webhooks/{}", None),
    ]:
        response = requests.request(
            method, server.url + template.format(text), json=body, timeout=10
        )
        assert response.status_code == 400, (method, template, response.text[:200])
    after = get(server, "/api/webhooks/1").json()
    assert after["name"] == before["name"] and after["secret"] == before["secret"]
    assert get(server, "/api/webhooks/10").status_code == 200


@pytest.mark.parametrize("path", ["/ws", "/api", "/ws/", "/api/", "/ws/nothing", "/api/nothing"])
def test_unknown_paths_under_ws_and_api_answer_json(server, path):
    response = get(server, path)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:100]
    assert response.json()["error"]["code"] == "not_found"


def test_a_page_path_still_answers_a_page(server):
    response = get(server, "/wsx")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1),
        ("0001", 1),
        ("10", 10),
        (str(MAX_ROW_ID), MAX_ROW_ID),
        (str(MAX_ROW_ID + 1), None),
        ("0", None),
        ("", None),
        ("1" * 31, None),
        ("\u0661", None),
        ("\uff11", None),
        ("\u00b9", None),  # superscript one: isdigit() says yes, int() says no
        ("+1", None),
        ("-1", None),
        (" 1", None),
        ("1 ", None),
        ("1\n", None),
        ("1_0", None),
        ("1.0", None),
        (1, 1),
        (MAX_ROW_ID, MAX_ROW_ID),
        (0, None),
        (-1, None),
        (MAX_ROW_ID + 1, None),
        (True, None),
        (1.0, None),
        (None, None),
        (b"1", None),
    ],
)
def test_row_id_takes_ints_and_plain_ascii_digits_only(value, expected):
    assert row_id(value) == expected
