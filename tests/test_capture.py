"""Capture against a real server: every odd request shape, read back byte-exact through the API.

Where `requests` cannot produce a shape (repeated headers, raw chunked framing, HTTP/1.0, bytes
it would re-encode) the test writes the request on a raw socket.

What the WSGI server hands over, and so what a bin stores (see ../shared/design.md, "Store"):
Werkzeug (and gunicorn) join a repeated header into one value with a comma, hand header names
over upper-cased (the bin shows them title-cased), and drop names that contain an underscore.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import sqlite3
import time
from datetime import UTC, datetime

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from hooklab.app.factory import create_app
from hooklab.bin_server.capture import headers_json
from hooklab.shared import json_input
from tests.conftest import make_settings, start_live_server

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


# -- helpers (test_limits.py uses them too) -----------------------------------------------------


def raw_http(live_server, data: bytes, read_body: bool = True) -> http.client.HTTPResponse:
    """Write `data` as is on a new connection to the server; returns the parsed response."""
    sock = socket.create_connection(("127.0.0.1", live_server.port), timeout=5)
    try:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.body = response.read() if read_body else b""
        return response
    finally:
        sock.close()


def raw_request(
    live_server,
    method: str,
    target: str,
    headers: list[tuple[str, str]] = (),
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> http.client.HTTPResponse:
    """A request with exactly these header lines (Host and Connection: close added first)."""
    lines = [f"{method} {target} {version}", f"Host: 127.0.0.1:{live_server.port}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return raw_http(live_server, head + body)


def request_id(response) -> int:
    """The captured request's id, from the header the capture path adds to every answer."""
    headers = response.headers
    return int(headers["X-Hooklab-Request-Id"])


def read_back(live_server, bin_id: str, rid: int) -> tuple[dict, bytes]:
    """The captured request in full, and its `raw` body bytes."""
    base = f"{live_server.url}/api/bins/{bin_id}/requests/{rid}"
    full = requests.get(base, timeout=5)
    assert full.status_code == 200, full.text
    json_input.loads(full.text)  # strict JSON whatever the body held: no NaN, no Infinity
    raw = requests.get(base + "/raw", timeout=5)
    assert raw.status_code == 200
    assert raw.headers["Content-Type"] == "application/octet-stream"
    assert raw.headers["Content-Disposition"].startswith("attachment")
    assert raw.headers["X-Content-Type-Options"] == "nosniff"
    return full.json(), raw.content


def assert_body(item: dict, raw: bytes, expected: bytes) -> None:
    """The body read back both ways is exactly what was sent."""
    assert raw == expected
    assert base64.b64decode(item["body_base64"]) == expected
    assert item["body_size"] == len(expected)
    assert item["truncated"] is False


def header_values(item: dict, name: str) -> list[str]:
    return [v for n, v in item["headers"] if n.lower() == name.lower()]


def count_stored(live_server) -> int:
    conn = sqlite3.connect(live_server.db)
    try:
        return conn.execute("SELECT count(*) FROM captured_requests").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """One real server for the whole module, to keep it fast; every test makes its own bin."""
    app = create_app(make_settings(tmp_path_factory.mktemp("capture")))
    live = start_live_server(app.config["HOOKLAB"])
    yield live
    live.stop()


@pytest.fixture
def bin_(live_server) -> dict:
    return live_server.create_bin()


# -- bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        (b"plain text", "text/plain", "plain text"),
        ("héllo wörld ✓".encode(), "text/plain; charset=utf-8", "héllo wörld ✓"),
        (b"\xff\xfe\x00\x01 not utf-8 \x80", "application/octet-stream", None),
        (b"nul\x00inside\x00", "application/octet-stream", "nul\x00inside\x00"),
        (bytes(range(256)), "application/octet-stream", None),
        (b"latin-1 caf\xe9", "text/plain; charset=latin-1", None),
        (b"<script>alert(1)</script>", "text/html", "<script>alert(1)</script>"),
        (b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", None, "\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
    ],
)
def test_bodies_read_back_byte_exact(live_server, bin_, body, content_type, text):
    headers = {"Content-Type": content_type} if content_type else {}
    response = requests.post(bin_["url"], data=body, headers=headers, timeout=5)
    assert response.status_code == 200
    item, raw = read_back(live_server, bin_["id"], request_id(response))
    assert_body(item, raw, body)
    assert item["body_text"] == text
    assert item["content_type"] == content_type


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_empty_body(live_server, bin_, method):
    response = requests.request(method, bin_["url"], timeout=5)
    item, raw = read_back(live_server, bin_["id"], request_id(response))
    assert_body(item, raw, b"")
    assert item["body_text"] == ""
    assert item["json"] is None
    assert item["form"] is None
    assert item["files"] == []


@pytest.mark.parametrize(
    ("body", "content_type", "parsed"),
    [
        (b'{"a": 1, "b": [true, null, "x"]}', "application/json", {"a": 1, "b": [True, None, "x"]}),
        ('{"名前": "ü", "n": 1.5e3}'.encode(), "application/json", {"名前": "ü", "n": 1500.0}),
        (b"[1, 2, 3]", "application/json", [1, 2, 3]),
        (b'{"no": "content type"}', None, {"no": "content type"}),
        (b'{"vendor": true}', "application/vnd.api+json", {"vendor": True}),
        (b'  {"spaced": 1}\n', "application/json", {"spaced": 1}),
        (b'{"broken": ', "application/json", None),
        (b'{"n": NaN}', "application/json", None),
        (b'{"n": Infinity}', "application/json", None),
        (b'{"n": 1e400}', "application/json", None),  # float() would make it infinity
        (b"[-1e999]", "application/json", None),
        (b'{"n": 1e308}', "application/json", {"n": 1e308}),
        (b"\xff{}", "application/json", None),
        ('{"utf16": 1}'.encode("utf-16-le"), "application/json", None),
        (b'\xef\xbb\xbf{"bom": 1}', "application/json", {"bom": 1}),
        (b"null", "application/json", None),
        (b"42", "application/json", 42),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", None),
    ],
)
def test_json_bodies(live_server, bin_, body, content_type, parsed):
    headers = {"Content-Type": content_type} if content_type else {}
    response = requests.post(bin_["url"], data=body, headers=headers, timeout=5)
    item, raw = read_back(live_server, bin_["id"], request_id(response))
    assert_body(item, raw, body)
    assert item["json"] == parsed


def test_urlencoded_form(live_server, bin_):
    response = requests.post(
        bin_["url"],
        data=[("name", "Ada"), ("tag", "x"), ("tag", "y"), ("empty", ""), ("sp ace", "a&b=c")],
        timeout=5,
    )
    item, raw = read_back(live_server, bin_["id"], request_id(response))
    assert raw == b"name=Ada&tag=x&tag=y&empty=&sp+ace=a%26b%3Dc"
    assert item["content_type"] == "application/x-www-form-urlencoded"
    assert item["form"] == {"name": ["Ada"], "tag": ["x", "y"], "empty": [""], "sp ace": ["a&b=c"]}
    assert list(item["form"]) == ["name", "tag", "empty", "sp ace"]
    assert item["files"] == []


def test_multipart_form_with_files(live_server, bin_):
    binary = bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n"
    response = requests.post(
        bin_["url"] + "/upload",
        data={"title": "Report", "tags": ["a", "b"]},
        files=[
            ("doc", ("notes.txt", b"hello\nworld", "text/plain")),
            ("blob", ("data.bin", binary, "application/octet-stream")),
            ("doc", ("résumé.pdf", b"%PDF-1.4", "application/pdf")),
        ],
        timeout=5,
    )
    item, raw = read_back(live_server, bin_["id"], request_id(response))
    assert raw == response.request.body
    assert item["content_type"].startswith("multipart/form-data; boundary=")
    assert item["form"] == {"title": ["Report"], "tags": ["a", "b"]}
    # Files in the order they arrived (not grouped by field).
    assert item["files"] == [
        {"field": "doc", "filename": "notes.txt", "content_type": "text/plain", "size": 11},
        {
            "field": "blob",
            "filename": "data.bin",
            "content_type": "application/octet-stream",
            "size": len(binary),
        },
        {"field": "doc", "filename": "résumé.pdf", "content_type": "application/pdf", "size": 8},
    ]
    files_url = f"{live_server.url}/api/bins/{bin_['id']}/requests/{item['id']}/files"
    for index, expected in enumerate([b"hello\nworld", binary, b"%PDF-1.4"]):
        download = requests.get(f"{files_url}/{index}", timeout=5)
        assert download.status_code == 200
        assert download.content == expected
        assert download.headers["Content-Type"] == "application/octet-stream"
        assert download.headers["Content-Disposition"].startswith("attachment")
        assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "notes.txt" in requests.get(f"{files_url}/0", timeout=5).headers["Content-Disposition"]
    missing = requests.get(f"{files_url}/3", timeout=5)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "file_not_found"


@pytest.mark.parametrize(
    ("filename", "shown"),
    [
        ('../../etc/passwd"; x=y', '../../etc/passwd"; x=y'),
        # Werkzeug's header parser reads a backslash in a quoted name as an escape.
        ("C:\\Windows\\evil.exe", "C:Windowsevil.exe"),
        ("line\tbreak", "line\tbreak"),
        ("", ""),
        ("...", "..."),
        ("файл.txt", "файл.txt"),
    ],
)
def test_hostile_upload_names_are_safe_download_names(live_server, bin_, filename, shown):
    response = requests.post(bin_["url"], files={"f": (filename, b"content")}, timeout=5)
    rid = request_id(response)
    item, _ = read_back(live_server, bin_["id"], rid)
    assert item["files"][0]["filename"] == shown
    url = f"{live_server.url}/api/bins/{bin_['id']}/requests/{rid}/files/0"
    download = requests.get(url, timeout=5)
    assert download.content == b"content"
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=")
    assert "/" not in disposition.split("filename=", 1)[1].split(";")[0]
    assert '"; x=y' not in disposition


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--"),
        ("multipart/form-data; boundary=x", b"garbage without any boundary"),
        ("multipart/form-data; boundary=x", b"--x\r\nNo-Disposition: 1\r\n\r\nv\r\n--x--\r\n"),
    ],
)
def test_broken_multipart_is_kept_and_shown_as_an_empty_form(live_server, bin_, content_type, body):
    response = requests.post(
        bin_["url"], data=body, headers={"Content-Type": content_type}, timeout=5
    )
    item, raw = read_back(live_server, bin_["id"], request_id(response))
    assert_body(item, raw, body)
    assert item["form"] == {}
    assert item["files"] == []


def test_chunked_body_from_requests(live_server, bin_):
    parts = [b"first,", b"\x00\xff second,", b"", b"third"]
    response = requests.post(bin_["url"], data=iter(parts), timeout=5)
    item, raw = read_back(live_server, bin_["id"], request_id(response))
    assert header_values(item, "Transfer-Encoding") == ["chunked"]
    assert_body(item, raw, b"".join(parts))


def test_chunked_body_on_a_raw_socket(live_server, bin_):
    # Upper-case hex sizes are legal; the body is the chunk data only.
    framed = b"5\r\nhello\r\n1A\r\n" + b"z" * 26 + b"\r\n0\r\n\r\n"
    response = raw_request(
        live_server,
        "PUT",
        f"/b/{bin_['id']}/chunks",
        [("Transfer-Encoding", "chunked"), ("Content-Type", "text/plain")],
        framed,
    )
    assert response.status == 200
    item, raw = read_back(live_server, bin_["id"], request_id(response))
    assert_body(item, raw, b"hello" + b"z" * 26)
    assert item["method"] == "PUT"


@pytest.mark.parametrize(
    "framed",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",  # not a hex size
        b"5\r\nhelloXX0\r\n\r\n",  # data not followed by CRLF
    ],
)
def test_broken_chunked_framing_is_400_and_not_stored(live_server, bin_, framed):
    before = count_stored(live_server)
    response = raw_request(
        live_server, "POST", f"/b/{bin_['id']}", [("Transfer-Encoding", "chunked")], framed
    )
    assert response.status == 400
    assert json.loads(response.body)["error"]["code"] == "bad_request"
    assert count_stored(live_server) == before


# -- headers ------------------------------------------------------------------------------------


def test_repeated_headers_are_joined_with_a_comma(live_server, bin_):
    response = raw_request(
        live_server,
        "POST",
        f"/b/{bin_['id']}",
        [
            ("X-First", "1"),
            ("X-Dup", "one"),
            ("x-lower", "Mixed Case Value"),
            ("X-Dup", "two"),
            ("X_Under", "dropped"),
            ("X-Empty", ""),
            ("X-Last", "3"),
            ("Content-Length", "0"),
        ],
    )
    assert response.status == 200
    item, _ = read_back(live_server, bin_["id"], request_id(response))
    names = [n for n, _ in item["headers"]]
    # The order the server handed over; a repeated header sits where it first appeared.
    custom = [h for h in item["headers"] if h[0].startswith("X-")]
    assert custom == [
        ["X-First", "1"],
        ["X-Dup", "one,two"],
        ["X-Lower", "Mixed Case Value"],
        ["X-Empty", ""],
        ["X-Last", "3"],
    ]
    assert "X-Under" not in names and "X_Under" not in names
    assert names.index("Host") < names.index("X-First")


@pytest.mark.parametrize(
    "value",
    ["plain", "", 'say "hi"', "back\\slash", "caf\xe9 \xff", "tab\there", "\x00\x1f\x7f", "\u2028"],
)
def test_stored_headers_are_exactly_the_json_of_the_header_list(value):
    # headers_json builds the JSON in one pass on the hot path: it must equal json.dumps of the
    # [name, value] list, whatever bytes a client put in a value (gunicorn hands over latin-1).
    environ = {
        "REQUEST_METHOD": "POST",
        "wsgi.input": None,
        "HTTP_HOST": "127.0.0.1:8000",
        "CONTENT_TYPE": "",  # not sent: servers set it empty, the bin leaves it out
        "CONTENT_LENGTH": "12",
        "HTTP_X_VALUE": value,
        "HTTP_X_EMPTY": "",  # sent empty: kept
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    expected = [
        ["Host", "127.0.0.1:8000"],
        ["Content-Length", "12"],
        ["X-Value", value],
        ["X-Empty", ""],
    ]
    assert headers_json(environ) == json.dumps(expected, ensure_ascii=False)
    assert json.loads(headers_json(environ)) == expected


def test_headers_from_requests(live_server, bin_):
    response = requests.get(
        bin_["url"],
        headers={"Authorization": "Bearer abc", "X-Unicode": "caf\xe9", "Accept": "*/*"},
        cookies={"session": "s1"},
        timeout=5,
    )
    item, _ = read_back(live_server, bin_["id"], request_id(response))
    assert header_values(item, "Authorization") == ["Bearer abc"]
    # Header values arrive as latin-1 (HTTP's own encoding).
    assert header_values(item, "X-Unicode") == ["caf\xe9"]
    assert header_values(item, "Cookie") == ["session=s1"]
    assert item["remote_addr"] == "127.0.0.1"
    assert item["http_version"] == "HTTP/1.1"


def test_http_1_0_request(live_server, bin_):
    response = raw_request(
        live_server, "POST", f"/b/{bin_['id']}/old", [("Content-Length", "3")], b"abc", "HTTP/1.0"
    )
    assert response.status == 200
    item, raw = read_back(live_server, bin_["id"], request_id(response))
    assert item["http_version"] == "HTTP/1.0"
    assert_body(item, raw, b"abc")


# -- methods, paths, queries --------------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [
        "GET",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "PURGE",
        "PROPFIND",
        "MKCOL",
        "FROBNICATE",
    ],
)
def test_any_method(live_server, bin_, method):
    response = requests.request(method, bin_["url"] + "/m", data=b"payload", timeout=5)
    assert response.status_code == 200
    item, raw = read_back(live_server, bin_["id"], request_id(response))
    assert item["method"] == method
    assert_body(item, raw, b"payload")


def test_head_is_captured(live_server, bin_):
    response = requests.head(bin_["url"], timeout=5)
    assert response.status_code == 200
    item, _ = read_back(live_server, bin_["id"], request_id(response))
    assert item["method"] == "HEAD"


@pytest.mark.parametrize(
    ("sent_subpath", "stored_subpath"),
    [
        ("", ""),
        ("/", "/"),
        ("/orders/42/items", "/orders/42/items"),
        ("/trailing/", "/trailing/"),
        ("//double//slash", "//double//slash"),
        ("/a%20b%2Fc%3F", "/a%20b%2Fc%3F"),
        ("/café/ü", "/caf%C3%A9/%C3%BC"),
        ("/%E2%9C%93", "/%E2%9C%93"),
        ("/" + "a" * 2500, "/" + "a" * 2500),
        ("/" + "/".join(["seg"] * 700), "/" + "/".join(["seg"] * 700)),
    ],
)
def test_paths_are_kept_as_sent(live_server, bin_, sent_subpath, stored_subpath):
    response = requests.post(bin_["url"] + sent_subpath, timeout=5)
    assert response.status_code == 200
    item, _ = read_back(live_server, bin_["id"], request_id(response))
    assert item["subpath"] == stored_subpath
    assert item["path"] == f"/b/{bin_['id']}{stored_subpath}"
    assert item["url"] == f"{live_server.url}/b/{bin_['id']}{stored_subpath}"


@pytest.mark.parametrize(
    ("target_suffix", "subpath"),
    [
        ("/a%2fb", "/a%2fb"),  # lower-case escapes, as sent
        ("/semi;colon=1", "/semi;colon=1"),
        ("/plus+sign", "/plus+sign"),
        # A path that holds a URL is a path, not an absolute-form target.
        ("/http://foo/bar", "/http://foo/bar"),
        ("/see/https://x.y/z", "/see/https://x.y/z"),
        ("/http://foo/a%20b%2Fc", "/http://foo/a%20b%2Fc"),
        # An encoded slash right after the bin id stays in the subpath, as sent.
        ("%2Fsub/deeper", "/%2Fsub/deeper"),
    ],
)
def test_raw_paths_on_a_socket(live_server, bin_, target_suffix, subpath):
    target = f"/b/{bin_['id']}{target_suffix}"
    response = raw_request(live_server, "GET", target + "?x=1")
    assert response.status == 200
    item, _ = read_back(live_server, bin_["id"], request_id(response))
    assert item["subpath"] == subpath
    assert item["path"] == target
    assert item["url"] == f"{live_server.url}{target}?x=1"


def test_an_empty_content_type_sent_is_kept_in_its_place(live_server, bin_):
    # It vanished (taken for "not sent"), while any other empty header was kept.
    response = raw_request(
        live_server,
        "POST",
        f"/b/{bin_['id']}",
        [("X-Before", "1"), ("Content-Type", ""), ("X-Empty", ""), ("Content-Length", "0")],
    )
    assert response.status == 200
    item, _ = read_back(live_server, bin_["id"], request_id(response))
    assert item["headers"][1:5] == [
        ["X-Before", "1"], ["Content-Type", ""], ["X-Empty", ""], ["Content-Length", "0"]
    ]  # fmt: skip
    assert item["content_type"] is None


def test_an_absolute_form_target_is_stored_as_its_path(live_server, bin_):
    target = f"/b/{bin_['id']}/abs/http://x/y"
    response = raw_request(live_server, "GET", f"http://127.0.0.1:{live_server.port}{target}?x=1")
    assert response.status == 200
    item, _ = read_back(live_server, bin_["id"], request_id(response))
    assert (item["path"], item["subpath"], item["query_string"]) == (
        target,
        "/abs/http://x/y",
        "x=1",
    )


@pytest.mark.parametrize(
    ("query_string", "query"),
    [
        ("a=1&a=2&b=", {"a": ["1", "2"], "b": [""]}),
        ("b=2&a=1&b=3", {"b": ["2", "3"], "a": ["1"]}),
        ("q=caf%C3%A9&sp=a+b&pct=50%25", {"q": ["café"], "sp": ["a b"], "pct": ["50%"]}),
        ("flag&x=", {"flag": [""], "x": [""]}),
        ("", {}),
        ("long=" + "x" * 3000, {"long": ["x" * 3000]}),
    ],
)
def test_query_strings(live_server, bin_, query_string, query):
    target = f"/b/{bin_['id']}/q" + (f"?{query_string}" if query_string else "")
    response = raw_request(live_server, "GET", target)
    assert response.status == 200
    item, _ = read_back(live_server, bin_["id"], request_id(response))
    assert item["query_string"] == query_string
    assert item["query"] == query
    assert list(item["query"]) == list(query)  # first-seen order kept
    expected_url = f"{live_server.url}/b/{bin_['id']}/q"
    assert item["url"] == expected_url + (f"?{query_string}" if query_string else "")


def test_query_from_requests_params(live_server, bin_):
    response = requests.get(
        bin_["url"], params=[("a", "1"), ("a", "2"), ("b", ""), ("c", "x y")], timeout=5
    )
    item, _ = read_back(live_server, bin_["id"], request_id(response))
    assert item["query_string"] == "a=1&a=2&b=&c=x+y"
    assert item["query"] == {"a": ["1", "2"], "b": [""], "c": ["x y"]}


# -- unknown bins, configured responses, signatures ---------------------------------------------


@pytest.mark.parametrize(
    "path", ["/b/" + "a" * 26, "/b/" + "a" * 26 + "/x", "/b/not-a-bin", "/b/", "/b/../api/bins"]
)
def test_unknown_bin_is_404_and_nothing_is_stored(live_server, bin_, path):
    before = count_stored(live_server)
    response = raw_request(live_server, "POST", path, [("Content-Length", "4")], b"body")
    assert response.status == 404
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(response.body)["error"]["code"] == "bin_not_found"
    assert count_stored(live_server) == before


def test_configured_response(live_server):
    bin_ = live_server.create_bin(
        response={
            "status": 418,
            "headers": [["X-Custom", "yes"], ["Content-Type", "text/csv"], ["Set-Cookie", "a=b"]],
            "body": "id,name\n1,tea\n",
            "delay_ms": 300,
        }
    )
    started = time.monotonic()
    response = requests.post(bin_["url"], json={"x": 1}, timeout=5)
    elapsed = time.monotonic() - started
    assert response.status_code == 418
    assert response.headers["X-Custom"] == "yes"
    assert response.headers["Content-Type"] == "text/csv"
    assert response.headers["Set-Cookie"] == "a=b"
    assert response.text == "id,name\n1,tea\n"
    assert elapsed >= 0.3  # the configured delay was applied
    # The request was captured all the same.
    item, _ = read_back(live_server, bin_["id"], request_id(response))
    assert item["json"] == {"x": 1}


def test_default_response_names_the_request(live_server, bin_):
    response = requests.put(bin_["url"], data="x", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"ok": True, "id": request_id(response), "bin_id": bin_["id"]}


def test_changed_response_applies_to_the_next_capture(live_server, bin_):
    assert requests.post(bin_["url"], timeout=5).status_code == 200
    requests.patch(
        f"{live_server.url}/api/bins/{bin_['id']}",
        json={"response": {"status": 503, "body": "down"}},
        timeout=5,
    ).raise_for_status()
    response = requests.post(bin_["url"], timeout=5)
    assert (response.status_code, response.text) == (503, "down")


def signed_headers(secret: str, body: bytes, msg_id: str = "msg_1") -> dict:
    now = datetime.now(tz=UTC)
    signature = Webhook(secret).sign(msg_id, now, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }


@pytest.mark.parametrize(
    ("tamper", "valid"),
    [
        (lambda headers, body: (headers, body), True),
        (lambda headers, body: (headers, body + b" "), False),
        (lambda headers, body: ({**headers, "webhook-id": "msg_2"}, body), False),
        (
            lambda headers, body: (
                {k: v for k, v in headers.items() if k != "webhook-signature"},
                body,
            ),
            False,
        ),
        (
            lambda headers, body: (
                {**headers, "webhook-signature": "v1,bm90IGl0 " + headers["webhook-signature"]},
                body,
            ),
            True,
        ),
    ],
)
def test_signature_check(live_server, tamper, valid):
    bin_ = live_server.create_bin(secret=SECRET)
    body = b'{"type": "invoice.paid"}'
    headers, body = tamper(signed_headers(SECRET, body), body)
    response = requests.post(bin_["url"], data=body, headers=headers, timeout=5)
    item, _ = read_back(live_server, bin_["id"], request_id(response))
    assert item["signature"]["scheme"] == "standard-webhooks"
    assert item["signature"]["valid"] is valid
    assert item["signature"]["reason"]


def test_no_signature_without_a_secret(live_server, bin_):
    body = b"{}"
    response = requests.post(
        bin_["url"], data=body, headers=signed_headers(SECRET, body), timeout=5
    )
    item, _ = read_back(live_server, bin_["id"], request_id(response))
    assert item["signature"] is None


def test_full_and_summary_agree(live_server, bin_):
    response = requests.post(bin_["url"] + "/s?x=1", json={"a": 1}, timeout=5)
    rid = request_id(response)
    item, _ = read_back(live_server, bin_["id"], rid)
    listed = requests.get(f"{live_server.url}/api/bins/{bin_['id']}/requests", timeout=5).json()
    assert len(listed) == 1
    summary = listed[0]
    assert {k: item[k] for k in summary} == summary
    assert set(item) - set(summary) == {
        "body_text",
        "body_base64",
        "body_cut",
        "json",
        "form",
        "files",
        "signature",
        "replays",
        "forward",
    }
    assert item["received_at"].endswith("Z")
    assert item["bin_id"] == bin_["id"]


def test_body_limit_reads_the_start_of_a_big_body(live_server, bin_):
    # The inspector reads a 10 MiB request as its start: the answer had it three times over.
    body = ("é" * 3000).encode() + b'{"x": 1}'  # 6,008 bytes, two a character at first
    response = requests.post(bin_["url"], data=body, timeout=5)
    base = f"{live_server.url}/api/bins/{bin_['id']}/requests/{request_id(response)}"
    cut = requests.get(base, params={"body_limit": 1001}, timeout=5).json()
    assert cut["body_cut"] is True and cut["body_size"] == len(body)
    assert cut["body_text"] == "é" * 500  # 1,001 bytes: never half a character
    assert base64.b64decode(cut["body_base64"]) == ("é" * 500).encode()
    assert cut["json"] is None
    whole = requests.get(base, timeout=5).json()
    assert whole["body_cut"] is False and whole["body_text"] == body.decode()
    assert (
        requests.get(base, params={"body_limit": len(body)}, timeout=5).json()["body_cut"] is False
    )
    form = requests.post(bin_["url"], data={"field": "a" * 5000, "small": "b"}, timeout=5)
    base_form = f"{live_server.url}/api/bins/{bin_['id']}/requests/{request_id(form)}"
    cut_form = requests.get(base_form, params={"body_limit": 1000}, timeout=5).json()
    assert cut_form["form"] == {"field": ["a" * 1000], "small": ["b"]}
    for bad in ("-1", "x", str(2**64)):
        refused = requests.get(base, params={"body_limit": bad}, timeout=5)
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "body_limit"
