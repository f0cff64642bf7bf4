"""A captured request's id in a URL path: a whole number, or a 400 that names it (design.md:
"a bad number in a URL … is a 400 that names it"), never the router's bare "not found"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import LiveServer, make_settings, start_live_server

BOUNDARY = "b0undary"
MULTIPART = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="upload"; filename="a.txt"\r\n'
    "Content-Type: text/plain\r\n\r\n"
    "file body\r\n"
    f"--{BOUNDARY}--\r\n"
).encode()

# (text in the path as sent, the id as the server reads it after decoding)
NOT_WHOLE_NUMBERS = [
    ("abc", "abc"),
    ("NaN", "NaN"),
    ("1e309", "1e309"),
    ("-1", "-1"),
    ("1.5", "1.5"),
    ("+1", "+1"),
    ("%201", " 1"),
    ("1_0", "1_0"),
    ("%D9%A1", "\u0661"),  # Arabic-Indic digit one: `<int:…>` took it as request 1
    ("%EF%BC%91", "\uff11"),  # fullwidth digit one
    ("x" * 100, "x" * 40 + "…"),
]
SUFFIXES = [
    ("GET", ""),
    ("GET", "/raw"),
    ("GET", "/check"),
    ("GET", "/files/0"),
    ("POST", "/replay"),
    ("POST", "/replays"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    live = start_live_server(make_settings(tmp_path_factory.mktemp("request_ids")))
    yield live
    live.kill()


@pytest.fixture(scope="module")
def world(server) -> dict:
    """A bin with one captured multipart request (one file)."""
    made = server.create_bin()
    answer = requests.post(
        made["url"],
        data=MULTIPART,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=5,
    )
    assert answer.status_code == 200
    newest = requests.get(f"{server.url}/api/bins/{made['id']}/requests", timeout=5).json()
    return {"bin_id": made["id"], "request_id": newest[0]["id"]}


def call(server: LiveServer, method: str, path: str) -> requests.Response:
    body = {"url": "http://127.0.0.1:9/"} if method == "POST" else None
    return requests.request(method, server.url + path, json=body, timeout=10)


@pytest.mark.parametrize(("method", "suffix"), SUFFIXES)
@pytest.mark.parametrize(("text", "read"), NOT_WHOLE_NUMBERS)
def test_an_id_that_is_not_a_whole_number_is_a_400_naming_it(
    server, world, method, suffix, text, read
):
    response = call(server, method, f"/api/bins/{world['bin_id']}/requests/{text}{suffix}")
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert error["field"] == "request_id"
    assert error["message"] == f"The request id in the URL must be a whole number, not {read!r}."


@pytest.mark.parametrize(("method", "suffix"), SUFFIXES)
@pytest.mark.parametrize("number", ["0", str(2**63), str(2**64), "9" * 40])
def test_a_whole_number_of_no_request_is_a_404(server, world, method, suffix, number):
    response = call(server, method, f"/api/bins/{world['bin_id']}/requests/{number}{suffix}")
    assert response.status_code == 404, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "request_not_found"
    shown = number if len(number) <= 40 else number[:40] + "…"
    assert error["message"] == f"No captured request {shown} in bin {world['bin_id']!r}."


def test_the_request_is_found_by_its_id_with_or_without_leading_zeros(server, world):
    base = f"{server.url}/api/bins/{world['bin_id']}/requests"
    rid = world["request_id"]
    for text in (str(rid), f"000{rid}"):
        full = requests.get(f"{base}/{text}", timeout=5)
        assert full.status_code == 200 and full.json()["id"] == rid
        raw = requests.get(f"{base}/{text}/raw", timeout=5)
        assert raw.content == MULTIPART
        assert raw.headers["Content-Disposition"] == f'attachment; filename="request-{rid}.bin"'
        file = requests.get(f"{base}/{text}/files/0", timeout=5)
        assert file.status_code == 200 and file.content == b"file body"
    checked = requests.get(f"{base}/000{rid}/check?event=payment_received", timeout=5)
    assert checked.status_code == 400 and checked.json()["error"]["code"] == "not_json"
    assert f"request {rid} " in checked.json()["error"]["message"]


@pytest.mark.parametrize("index", ["x", "-1", "1.0", "NaN", "%D9%A1"])
def test_a_file_index_that_is_not_a_whole_number_is_a_400_naming_it(server, world, index):
    path = f"/api/bins/{world['bin_id']}/requests/{world['request_id']}/files/{index}"
    response = call(server, "GET", path)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "index" and "file index" in error["message"]


@pytest.mark.parametrize("index", ["1", "0001", str(2**64), "9" * 40])
def test_a_file_index_of_no_file_is_a_404(server, world, index):
    path = f"/api/bins/{world['bin_id']}/requests/{world['request_id']}/files/{index}"
    response = call(server, "GET", path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "file_not_found"


def test_the_long_poll_keeps_its_route(server, world):
    base = f"{server.url}/api/bins/{world['bin_id']}/requests/wait"
    found = requests.get(f"{base}?after=0&timeout=0", timeout=10)
    assert found.status_code == 200 and found.json()["id"] == world["request_id"]
    nothing = requests.get(f"{base}?after={world['request_id']}&timeout=0", timeout=10)
    assert nothing.status_code == 204
    assert requests.post(base, timeout=10).status_code == 405


def test_an_unknown_bin_is_still_a_404(server):
    response = requests.get(f"{server.url}/api/bins/{'a' * 26}/requests/1", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bin_not_found"
