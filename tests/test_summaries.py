"""The list API's summaries (bin_server/captured.py `summaries_json`): the stored headers and
`answered_by` are put in as the JSON text they are stored as, and the Host of the URL is read
from that text. The answer must be what `summary()` gives for each request, whatever arrived."""

from __future__ import annotations

import json
import socket
import string

import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklab.bin_server import captured
from hooklab.bin_server.capture import answered_by_json
from tests.test_fuzz import FUZZ_SETTINGS

BASE = "http://127.0.0.1:8000"
TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^`|~"
HOST_NAMES = st.sampled_from(["Host", "host", "HOST", "hOsT", "Hosts", "X-Host", "Ho"])
NAMES = st.one_of(HOST_NAMES, st.text(TCHAR, min_size=1, max_size=12))
# Values with what JSON must escape, and text that looks like a stored Host pair.
TRICKY = st.sampled_from(
    ['"], ["Host", "evil.example"]', '\\"], ["Host", "evil.example', "a\\", '"', "\\", "], ["]
)
VALUES = st.one_of(TRICKY, st.text(max_size=30), st.sampled_from(["hooks.test:8080", "[::1]"]))
PAIRS = st.lists(st.tuples(NAMES, VALUES), max_size=6)


def stored_row(
    number: int, pairs, compact: bool, answered: str | None, query: str, subpath: str = "/x"
) -> dict:
    """A row as the store gives it, its headers in capture's format or a compact one."""
    separators = (",", ":") if compact else (", ", ": ")
    return {
        "id": number + 1,
        "bin_id": "b1",
        "received_at": 1_700_000_000_123 + number,
        "method": "POST",
        "path": "/b/b1" + subpath,
        "subpath": subpath,
        "query_string": query,
        "headers": json.dumps([list(p) for p in pairs], ensure_ascii=False, separators=separators),
        "http_version": "HTTP/1.1",
        "remote_addr": None if number % 3 == 2 else "127.0.0.1",
        "content_type": None if number % 2 else 'application/json; x="é\\"',
        "body_size": 3,
        "truncated": number % 2,
        "answered_by": answered,
    }


ROWS = st.lists(
    st.builds(
        lambda *fields: fields,
        PAIRS,
        st.booleans(),
        st.sampled_from(
            [None, "", answered_by_json(None, "default", 200), answered_by_json(2, 'é"', 418)]
        ),
        st.sampled_from(["", "a=1&a=2&b", "q=%22%5D"]),
        st.one_of(st.just("/x"), VALUES.map(lambda value: "/" + value)),
    ),
    max_size=5,
)


@settings(max_examples=300, **FUZZ_SETTINGS)
@given(ROWS, st.booleans(), st.booleans())
def test_the_list_is_each_summary_whatever_the_headers(rows, trust_host, with_matches):
    stored = [stored_row(n, *row) for n, row in enumerate(rows)]
    matches = [{"field": "body", "text": f"«{n}»"} for n in range(len(rows))]
    text = captured.summaries_json(stored, BASE, trust_host, matches if with_matches else None)
    expected = [captured.summary(row, BASE, trust_host) for row in stored]
    if with_matches:
        for item, match in zip(expected, matches, strict=True):
            item["match"] = match
    assert json.loads(text) == expected
    # And in the same order of fields as one request's summary.
    assert [list(item) for item in json.loads(text)] == [list(item) for item in expected]


def test_the_url_takes_the_first_host_and_only_a_sane_one():
    def url(*pairs) -> str:
        row = stored_row(0, pairs, False, None, "")
        return json.loads(captured.summaries_json([row], BASE))[0]["url"]

    assert url(("Host", "hooks.test:8080")) == "http://hooks.test:8080/b/b1/x"
    assert (
        url(("X-Host", "a.test"), ("host", "b.test"), ("Host", "c.test")) == "http://b.test/b/b1/x"
    )
    assert url(("X", '"], ["Host", "evil.example"]')) == BASE + "/b/b1/x"
    assert url(("Host", "evil.example/phish")) == BASE + "/b/b1/x"
    assert url(("Host", 'a"b')) == BASE + "/b/b1/x"
    assert url() == BASE + "/b/b1/x"


def raw_request(port: int, head: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.")


def test_served_list_matches_each_request_read_alone(live_server):
    made = live_server.create_bin(name="summaries")
    port, path = live_server.port, f"/b/{made['id']}"
    raw_request(port, f"GET {path}/plain HTTP/1.1\r\nHost: hooks.test:{port}\r\n\r\n".encode())
    raw_request(port, f"GET {path}/old HTTP/1.0\r\n\r\n".encode())  # no Host at all
    raw_request(
        port,
        f"POST {path}/tricky?a=1&a=2 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
        + b'X-Fake: "], ["Host", "evil.example"]\r\n'
        + b"X-Latin: caf\xe9 \\ \t tab\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    )
    listed = requests.get(f"{live_server.url}/api/bins/{made['id']}/requests?limit=10", timeout=5)
    assert listed.status_code == 200
    assert listed.headers["Content-Type"] == "application/json"
    items = listed.json()
    assert [item["subpath"] for item in items] == ["/tricky", "/old", "/plain"]
    for item in items:
        alone = requests.get(
            f"{live_server.url}/api/bins/{made['id']}/requests/{item['id']}", timeout=5
        ).json()
        assert item == {name: alone[name] for name in item}
    assert items[2]["url"] == f"http://hooks.test:{port}{path}/plain"
    assert items[1]["url"] == f"{live_server.url}{path}/old"
    assert items[0]["url"] == f"http://127.0.0.1:{port}{path}/tricky?a=1&a=2"
    assert ["X-Latin", "café \\ \t tab"] in items[0]["headers"]
