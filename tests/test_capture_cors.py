"""Browsers can send to a bin: CORS headers on captures that carry an Origin."""

from __future__ import annotations

import pytest
import requests


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from hooklab.app.launcher import start_server

    local = start_server(tmp_path_factory.mktemp("cors") / "hooklab.db")
    yield local
    local.stop()


def new_bin(server, **fields) -> dict:
    return requests.post(f"{server.url}/api/bins", json=fields, timeout=5).json()


def test_a_request_with_an_origin_may_be_read_by_the_page(server):
    bin_row = new_bin(server)
    answer = requests.post(
        bin_row["url"], data="hi", headers={"Origin": "https://app.example"}, timeout=5
    )
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Hooklab-Request-Id" in answer.headers["Access-Control-Expose-Headers"]


def test_a_preflight_is_captured_and_allows_what_it_asked_for(server):
    bin_row = new_bin(server)
    answer = requests.options(
        bin_row["url"] + "/hook",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type, x-signature",
        },
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Methods"] == "PUT"
    assert answer.headers["Access-Control-Allow-Headers"] == "content-type, x-signature"
    listed = requests.get(f"{server.url}/api/bins/{bin_row['id']}/requests", timeout=5).json()
    assert [r["method"] for r in listed] == ["OPTIONS"]


def test_no_origin_no_cors_headers(server):
    answer = requests.post(new_bin(server)["url"], data="hi", timeout=5)
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_a_bins_own_cors_headers_win(server):
    bin_row = new_bin(
        server, response={"headers": {"Access-Control-Allow-Origin": "https://only.example"}}
    )
    answer = requests.get(bin_row["url"], headers={"Origin": "https://app.example"}, timeout=5)
    assert answer.headers["Access-Control-Allow-Origin"] == "https://only.example"
    assert "Access-Control-Expose-Headers" not in answer.headers
