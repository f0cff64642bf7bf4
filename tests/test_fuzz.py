"""Fuzzing with hypothesis: the capture endpoint and every /api route, against `hooklab serve`.

Never a 5xx, never a traceback in a response, the server keeps answering, and every capture
it accepts reads back exactly as it was sent. The /api routes are enumerated from the app's
URL map, so a route added later is fuzzed too. Bounded: a few hundred examples in all.

Safety: the only field that makes the server send traffic is a webhook's `url`; the fuzzer
only ever gives it local URLs (or values that are not http URLs), so nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import string
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import IntegerConverter

from tests.served import start

# The same examples on every run (CI must not fail at random); for a longer, exploring run:
# HOOKLAB_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py (random examples, many more of them).
EXPLORE = int(os.environ.get("HOOKLAB_FUZZ_EXAMPLES", "0"))
FUZZ_SETTINGS = {
    "deadline": None,
    "database": None,  # no .hypothesis folder in the checkout
    "derandomize": not EXPLORE,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^`|~"
# Headers that frame the request or the connection: the fuzzer sets those itself.
FRAMING = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "expect",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "content-type",  # set from a list of its own, so derived views (JSON, form, files) run
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    served = start(
        tmp,
        "--db",
        str(tmp / "fuzz.db"),
        "--client-timeout-s",
        "1",  # a body shorter than its Content-Length is cut off quickly
        "--wait-max-s",
        "1",  # fuzzed long polls end quickly
        "--max-body-bytes",
        str(512 * 1024),
    )
    yield served
    served.stop()


@pytest.fixture
def world(server) -> dict:
    """Real objects for the route arguments: a bin with a request, a webhook, a delivery."""
    api = f"{server.url}/api"
    bin_json = requests.post(f"{api}/bins", json={"name": "fuzz"}, timeout=10).json()
    captured = requests.post(bin_json["url"], json={"seed": True}, timeout=10)
    webhook = requests.post(
        f"{api}/webhooks",
        json={"name": "fuzz", "url": bin_json["url"], "event": "*"},
        timeout=10,
    ).json()
    slug = requests.get(f"{api}/events", timeout=10).json()[0]["slug"]
    fired = requests.post(f"{api}/events/{slug}", json={}, timeout=10).json()
    return {
        "bin_id": bin_json["id"],
        "capture_url": bin_json["url"],
        "request_id": int(captured.headers["X-Hooklab-Request-Id"]),
        "webhook_id": str(webhook["id"]),
        "delivery_id": str(fired["deliveries"][0]["id"]),
        "slug": slug,
    }


def check_answer(response: requests.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    assert b"Traceback" not in response.content, what
    if response.status_code >= 400 and "json" in response.headers.get("Content-Type", ""):
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str), what


# --- the capture endpoint, over raw sockets ---------------------------------------------


def percent(byte: int) -> str:
    return f"%{byte:02X}"


path_piece = st.one_of(
    st.sampled_from(list(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/")),
    st.integers(0, 255).map(percent),
)
header_names = st.text(alphabet=TCHAR, min_size=1, max_size=20).filter(
    lambda n: n.lower() not in FRAMING
)
header_values = st.text(
    alphabet=st.sampled_from(
        [chr(c) for c in range(0x20, 0x7F)] + ["\t"] + [chr(c) for c in range(0xA0, 0x100)]
    ),
    max_size=60,
)
bodies = st.one_of(
    st.binary(max_size=2048),
    st.integers(1, 50_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.just(
        b'--x\r\nContent-Disposition: form-data; name="f"; filename="<img>"\r\n\r\nhi\r\n--x--'
    ),
    st.integers(0, 400_000).map(lambda n: bytes(range(256)) * (n // 256) + b"\x00" * (n % 256)),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
# Mostly a true Content-Length; sometimes short, long, or not a number at all.
length_errors = st.sampled_from(
    [0] * 24 + [-1, -7, 3, "abc", "-1", "1e3", " 12", "9" * 30, str(2**63), str(2**63 - 1)]
)


def raw_exchange(port: int, request: bytes) -> bytes | None:
    """Send one request on a fresh connection; everything answered until close (None: none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before all was sent
        parts = []
        try:
            while chunk := sock.recv(65536):
                parts.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(parts) or None


@settings(max_examples=EXPLORE or 150, **FUZZ_SETTINGS)
@given(
    method=st.one_of(
        st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "PURGE", "PROPFIND", "HEAD"]),
        st.text(alphabet=TCHAR, min_size=1, max_size=16),
    ),
    subpath=st.lists(path_piece, max_size=40).map("".join),
    query=st.lists(st.one_of(path_piece, st.just("?")), max_size=40).map("".join),
    headers=st.lists(
        st.tuples(header_names, header_values), max_size=12, unique_by=lambda h: h[0].lower()
    ),
    body=bodies,
    content_type=st.sampled_from(
        [
            None,
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain; charset=latin-1",
            "application/json; charset=utf-16",
        ]
    ),
    chunked=st.booleans(),
    length_error=length_errors,
)
def test_capture_never_fails_and_keeps_what_it_accepts(
    server, world, method, subpath, query, headers, body, content_type, chunked, length_error
):
    target = f"/b/{world['bin_id']}/{subpath}" + (f"?{query}" if query else "")
    lines = [f"{method} {target} HTTP/1.1", "Host: fuzz.test", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    expected_body = body
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 999]), body[i : i + 999])
                           for i in range(0, len(body), 999)) + b"0\r\n\r\n"  # fmt: skip
    elif isinstance(length_error, int):
        length = max(len(body) + length_error, 0)
        lines.append(f"Content-Length: {length}")
        expected_body = body[:length]
        payload = body
    else:
        lines.append(f"Content-Length: {length_error}")
        payload = body
        if length_error.strip().isdigit():  # " 12" is a length: whitespace around is allowed
            expected_body = body[: int(length_error)]
    request = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + payload
    answer = raw_exchange(server.port, request)
    if answer is None:
        # Only a body that never completes may go unanswered: the read deadline cut it off.
        assert not chunked and isinstance(length_error, int) and length_error > 0
        return
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status = int(head.split()[1])
    assert status < 500, answer[:500]
    assert b"Traceback" not in answer
    if not 200 <= status < 300:
        return
    request_id = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)[
        "X-Hooklab-Request-Id"
    ]
    base = f"{server.url}/api/bins/{world['bin_id']}/requests/{request_id}"
    full = requests.get(base, timeout=10).json()
    raw = requests.get(f"{base}/raw", timeout=10).content
    assert full["method"] == method
    assert full["path"] == target.split("?", 1)[0]
    assert full["query_string"] == (query if query else "")
    assert raw == expected_body
    assert full["body_size"] == len(expected_body)
    stored = {(name.lower(), value) for name, value in full["headers"]}
    for name, value in headers:
        assert (name.lower(), value.strip(" \t")) in stored, (name, value, full["headers"])


@pytest.mark.parametrize(
    "length",
    [" 12", "+12", "12, 12", "0x10", "1e3", "-1", "abc", "٣", "9" * 30, str(2**63), str(2**63 - 1)],
)
def test_odd_content_lengths_never_fail_the_server(server, world, length):
    target = f"/b/{world['bin_id']}/length"
    head = f"POST {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {length}"
    answer = raw_exchange(server.port, head.encode() + b"\r\n\r\n" + b"z" * 12)
    assert answer is not None
    status = int(answer.split(b" ", 2)[1])
    assert status < 500, answer[:300]
    assert b"Traceback" not in answer


# --- every /api route, with arbitrary JSON ------------------------------------------------

SAFE_URLS = ["http://127.0.0.1:9/refused", "https://127.0.0.1:9/x"]
FIELDS = [
    "name",
    "response",
    "status",
    "headers",
    "body",
    "delay_ms",
    "secret",
    "event",
    "active",
    "payload_format",
    "timeout_s",
    "payload",
    "enabled",
]
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)


def not_url_key(key: str) -> bool:
    return key != "url"


json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=12).filter(not_url_key), inner, max_size=5),
    ),
    max_leaves=20,
)


def not_an_http_url(value) -> bool:
    return not (isinstance(value, str) and value.strip().lower().startswith(("http", "//")))


field_objects = st.fixed_dictionaries(
    {},
    optional={
        **{field: json_values for field in FIELDS},
        "url": st.one_of(st.sampled_from(SAFE_URLS), json_values.filter(not_an_http_url)),
        "name": st.one_of(json_values, st.integers(0, 300_000).map(lambda n: "n" * n)),
    },
)
raw_bodies = st.one_of(
    st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 100_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.binary(max_size=200),
    st.just(b'{"name": "\xff\xfe"}'),
    st.just(b"null"),
)
bodies_for_api = st.one_of(
    field_objects.map(lambda obj: json.dumps(obj).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    raw_bodies,
    st.just(b""),
)
query_params = st.dictionaries(
    st.sampled_from(["after", "before", "limit", "timeout", "method", "path", "format", "status"]),
    st.one_of(
        st.text(max_size=20),
        st.integers(-(2**70), 2**70).map(str),
        st.sampled_from(["nan", "inf", "-1", "0", "1e308", "0x10", "٣"]),
    ),
    max_size=4,
)


def api_rules():
    from hooklab.app.factory import create_app
    from hooklab.shared.settings import Settings

    app = create_app(Settings({"db": ":memory:"}, environ={}))
    rules = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api"):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                rules.append((method, rule))
    assert len(rules) >= 20
    return rules


API_RULES = api_rules()


def argument_values(real: str, converter) -> st.SearchStrategy:
    """A route argument: the real object's id, or something that is not one."""
    if isinstance(converter, IntegerConverter):
        return st.one_of(st.just(real), st.integers(0, 2**80).map(str))
    garbage = st.text(min_size=1, max_size=30).map(lambda t: quote(t, safe=""))
    return st.one_of(st.just(real), garbage, st.sampled_from(["0", "-1", "9" * 40, "a" * 26]))


NASTY_BODIES = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    b'{"name": "' + b"n" * 400_000 + b'"}',  # under the server's 512 KiB body limit
    b'{"name": "\xff\xfe"}',
    b"\xef\xbb\xbf{}",
    b"null",
    b"[]",
    b'"a string"',
    b"1e999999",
    b'{"name": 1e999, "event": -0, "active": "yes", "timeout_s": 1e308}',
    b'{"response": {"status": 99999, "headers": [[1, 2]], "delay_ms": -1}}',
    b'{"headers": {"a": "b"}, "status": "200", "body": ["x"]}',
    b"{" + b'"k": 1, ' * 10_000 + b'"k": 2}',
    b"\x00" * 100,
]


def route_id(route) -> str:
    method, rule = route
    return f"{method} {rule.rule}"


def fill(rule, world: dict, draw=None) -> str:
    """A path for `rule`: real ids from `world`, or (with `draw`) fuzzed ones."""
    path = rule.rule
    for name, converter in rule._converters.items():
        value = str(world.get(name, "0"))
        if draw is not None:
            value = draw(argument_values(value, converter), label=name)
        path = path.replace(f"<{name}>", value).replace(f"<int:{name}>", value)
    return path


@pytest.mark.parametrize("route", API_RULES, ids=route_id)
def test_every_api_route_refuses_nasty_bodies_cleanly(server, world, route):
    method, rule = route
    path = fill(rule, world)
    with requests.Session() as session:
        for body in NASTY_BODIES:
            response = session.request(
                method,
                f"{server.url}{path}",
                data=body,
                params={"timeout": "0"},
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            check_answer(response, f"{method} {path} {body[:60]!r}")


@pytest.mark.parametrize("route", API_RULES, ids=route_id)
@settings(max_examples=EXPLORE or 12, **FUZZ_SETTINGS)
@given(data=st.data())
def test_every_api_route_answers_arbitrary_input_without_a_5xx(server, world, route, data):
    method, rule = route
    path = fill(rule, world, data.draw)
    params = data.draw(query_params, label="query")
    body = data.draw(bodies_for_api, label="body") if method != "GET" else b""
    # Mostly JSON: any other type on a body is refused (415) before the route reads it.
    content_type = data.draw(
        st.sampled_from(
            ["application/json"] * 4 + ["text/plain", "application/x-www-form-urlencoded"]
        )
    )
    response = requests.request(
        method,
        f"{server.url}{path}",
        params=params,
        data=body,
        headers={"Content-Type": content_type},
        timeout=30,
    )
    check_answer(response, f"{method} {path} {params} {body[:200]!r}")


def page_rules():
    from hooklab.app.factory import create_app
    from hooklab.shared.settings import Settings

    app = create_app(Settings({"db": ":memory:"}, environ={}))
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api", "/static", "/ws")) or rule.websocket:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, rule))
    return routes


PAGE_FORMS = [
    {},
    {"name": "<script>x</script>", "url": SAFE_URLS[0], "event": "*"},
    {"name": "n" * 100_000, "url": "javascript:alert(1)", "event": "\x00", "timeout_s": "1e999"},
    {"name": "", "url": "", "event": "", "active": "maybe", "payload_format": "??"},
    {"token": "x" * 10_000, "next": "//evil.example"},
]
ODD_IDS = ["0", "-1", "9" * 40, "%00", "a" * 26, "%F0%9F%98%80", "..%2F..%2Fetc"]


@pytest.mark.parametrize("route", page_rules(), ids=route_id)
def test_every_page_answers_odd_ids_and_forms_without_a_5xx(server, world, route):
    method, rule = route
    paths = {fill(rule, world)}
    for odd in ODD_IDS:
        path = rule.rule
        for name in rule._converters:
            path = path.replace(f"<{name}>", odd).replace(f"<int:{name}>", odd)
        paths.add(path)
    with requests.Session() as session:
        for path in sorted(paths):
            if method == "GET":
                check_answer(session.get(f"{server.url}{path}", timeout=30), f"GET {path}")
                continue
            for form in PAGE_FORMS:
                response = session.post(
                    f"{server.url}{path}",
                    data=form,
                    headers={"Origin": server.url},
                    allow_redirects=False,
                    timeout=30,
                )
                check_answer(response, f"POST {path} {str(form)[:100]}")
            raw = session.post(
                f"{server.url}{path}",
                data=b"\xff=\xfe&%%=%&" * 1000,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                allow_redirects=False,
                timeout=30,
            )
            check_answer(raw, f"POST {path} undecodable form")


def test_the_server_is_still_up_and_logged_no_traceback(server, world):
    # Runs after the fuzzers (file order): the same process still answers, and cleanly.
    assert requests.get(f"{server.url}/api/health", timeout=5).json()["ok"] is True
    assert requests.post(world["capture_url"], data=b"after", timeout=5).status_code == 200
    assert server.process.poll() is None
    log = server.log()
    assert "Traceback" not in log and "unexpected error" not in log, log[-5000:]


# --- explicit edge values: every parameter of every route, the same examples on every run -------
#
# Hypothesis above explores; these are the values that broke servers before (integer overflow
# past 2^63, floats past double, empty, NaN, very long, non-ASCII, NUL), tried one at a time on
# every URL argument of every route in the URL map, on every query parameter the routes read,
# and on every number field of the JSON bodies. In-process (Flask test client), so a 10,000
# character value reaches the app instead of stopping at gunicorn's request-line limit.

EDGE_VALUES = [
    0,
    -1,
    2**63 - 1,
    2**63,
    2**64,
    "1e309",
    "",
    "NaN",
    "x" * 10_000,
    "9" * 10_000,  # digits past int()'s 4,300-digit limit: a ValueError where isdigit() said yes
    "²",  # a digit to isdigit(), not to int()
    "ünïcødé-€-😀",
    "\x00",
]
QUERY_PARAMETERS = [
    "q",
    "page",
    "group",
    "prefix",
    "check",
    "dry_run",
    "event",
    "after",
    "before",
    "limit",
    "timeout",
    "method",
    "path",
    "format",
    "status",
    "created",
    "saved",
    "next",
]
REFUSED_PORT_URL = "http://127.0.0.1:9/refused"  # a test send fails at once, locally


@pytest.fixture(scope="module")
def edge_app(tmp_path_factory):
    from hooklab.app.factory import create_app
    from hooklab.shared.settings import Settings

    db = tmp_path_factory.mktemp("edges") / "edges.db"
    # wait_max_s=0: a long poll with a huge timeout is clamped to nothing, not to a minute.
    app = create_app(Settings({"db": str(db), "wait_max_s": 0}, environ={}))
    yield app
    app.extensions["hooklab.store"].close()


@pytest.fixture(scope="module")
def edge_world(edge_app) -> dict:
    client = edge_app.test_client()
    bin_json = client.post("/api/bins", json={"name": "edges"}).get_json()
    captured = client.post(f"/b/{bin_json['id']}", json={"seed": True})
    webhook = client.post(
        "/api/webhooks", json={"name": "edges", "url": REFUSED_PORT_URL, "event": "*"}
    ).get_json()
    slug = client.get("/api/events").get_json()[0]["slug"]
    fired = client.post(f"/api/events/{slug}", json={}).get_json()
    return {
        "bin_id": bin_json["id"],
        "request_id": captured.headers["X-Hooklab-Request-Id"],
        "webhook_id": str(webhook["id"]),
        "delivery_id": str(fired["deliveries"][0]["id"]),
        "slug": slug,
        "index": "0",
        "filename": "app.css",
    }


def all_routes():
    from hooklab.app.factory import create_app
    from hooklab.shared.settings import Settings

    app = create_app(Settings({"db": ":memory:"}, environ={}))
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, rule))
    return routes


ALL_ROUTES = all_routes()
ROUTE_ARGUMENTS = [
    (method, rule, name) for method, rule in ALL_ROUTES for name in sorted(rule.arguments)
]


def edge_id(value) -> str:
    text = str(value)
    return repr(text if len(text) <= 20 else f"{text[:5]}…({len(text)} chars)")


def fill_with(rule, world: dict, name: str | None = None, value: str = "") -> str:
    """A path for `rule`: real ids from `world`, and `value` (percent-encoded) for `name`."""
    values = {
        argument: quote(value, safe="") if argument == name else str(world.get(argument, "0"))
        for argument in rule.arguments
    }
    # Built by hand, not by url_for: the converters would refuse the very values tried here.
    path = rule.rule
    for argument, text in values.items():
        path = re.sub(rf"<(?:\w+:)?{argument}>", lambda _, text=text: text, path)
    return path


def send(client, method: str, path: str, **kwargs):
    if method in ("POST", "PUT", "PATCH", "DELETE") and "data" not in kwargs:
        kwargs["json"] = {}
    return client.open(path, method=method, **kwargs)


def check_local(response, what: str) -> None:
    """No 5xx, no traceback, and an /api error is JSON with a code and a message."""
    assert response.status_code < 500, f"{what}: {response.status_code} {response.data[:300]!r}"
    assert b"Traceback" not in response.data, what
    if response.status_code >= 400 and response.mimetype == "application/json":
        error = response.get_json()["error"]
        assert isinstance(error["code"], str) and error["code"], what
        assert isinstance(error["message"], str) and error["message"], what


def route_argument_id(item) -> str:
    method, rule, name = item
    return f"{method} {rule.rule} {name}"


@pytest.mark.parametrize("value", EDGE_VALUES, ids=edge_id)
@pytest.mark.parametrize("item", ROUTE_ARGUMENTS, ids=route_argument_id)
def test_every_url_argument_takes_edge_values_without_a_5xx(edge_app, edge_world, item, value):
    method, rule, name = item
    path = fill_with(rule, edge_world, name, str(value))
    response = send(edge_app.test_client(), method, path)
    check_local(response, f"{method} {path[:120]}")


QUERY_ROUTES = [(m, r) for m, r in ALL_ROUTES if m == "GET" and not r.rule.startswith("/static")]


@pytest.mark.parametrize("value", EDGE_VALUES, ids=edge_id)
@pytest.mark.parametrize("parameter", QUERY_PARAMETERS)
@pytest.mark.parametrize("route", QUERY_ROUTES, ids=route_id)
def test_every_query_parameter_takes_edge_values_without_a_5xx(
    edge_app, edge_world, route, parameter, value
):
    method, rule = route
    path = fill_with(rule, edge_world)
    response = edge_app.test_client().get(path, query_string={parameter: str(value)})
    check_local(response, f"GET {path} ?{parameter}={str(value)[:40]!r}")
    if response.status_code == 400 and rule.rule.startswith("/api/"):
        # Refused because of this parameter (the route answers otherwise without it): named.
        if edge_app.test_client().get(path).status_code != 400:
            assert response.get_json()["error"]["field"] == parameter


@pytest.mark.parametrize("value", EDGE_VALUES, ids=edge_id)
@pytest.mark.parametrize("group", ["", "billing", None])
def test_the_events_pages_take_edge_page_numbers(edge_app, value, group):
    # `page` is read only with a group of user events (found by this sweep: "²" was a 500).
    query = {"page": str(value)} if group is None else {"page": str(value), "group": group}
    response = edge_app.test_client().get("/webhooks", query_string=query)
    check_local(response, f"GET /webhooks {query}"[:120])


# A number given where the route reads a number must be refused naming it, not just "no 5xx".
NUMBER_QUERIES = [
    ("/api/bins/{bin_id}/requests", "after"),
    ("/api/bins/{bin_id}/requests", "before"),
    ("/api/bins/{bin_id}/requests", "limit"),
    ("/api/bins/{bin_id}/requests/wait", "after"),
    ("/api/webhooks/{webhook_id}/deliveries", "before"),
    ("/api/webhooks/{webhook_id}/deliveries", "limit"),
]
OUT_OF_RANGE = [-1, 2**63, 2**64, "1e309", "NaN", "x" * 10_000, "ünï", "\x00", "1.5"]


@pytest.mark.parametrize("value", OUT_OF_RANGE, ids=edge_id)
@pytest.mark.parametrize(("path", "parameter"), NUMBER_QUERIES)
def test_a_query_number_out_of_range_is_a_400_naming_it(
    edge_app, edge_world, path, parameter, value
):
    url = path.format(**edge_world)
    response = edge_app.test_client().get(url, query_string={parameter: str(value)})
    assert response.status_code == 400, response.data[:300]
    assert response.get_json()["error"]["field"] == parameter


@pytest.mark.parametrize(
    "value", ["-1", "NaN", "1e309", "inf", "1e300", "1_0", "١٢", "", "\x00", "x" * 10_000]
)
def test_a_bad_long_poll_timeout_is_a_400_and_a_huge_one_is_clamped(edge_app, edge_world, value):
    url = f"/api/bins/{edge_world['bin_id']}/requests/wait"
    after = {"after": str(2**63 - 1)}  # nothing is newer: a valid wait answers 204
    client = edge_app.test_client()
    response = client.get(url, query_string={**after, "timeout": value})
    if value == "":
        assert response.status_code == 204  # absent: the default, clamped to wait_max_s=0
    else:
        assert response.status_code == 400
        assert response.get_json()["error"]["field"] == "timeout"
    for huge in (str(2**63), str(2**64), "9" * 40):
        assert client.get(url, query_string={**after, "timeout": huge}).status_code == 204


# JSON number fields: each edge value (and the raw JSON literals 1e309, NaN, -Infinity, which
# Python's json reads as inf and nan) must be a 422 naming the field, or accepted when in range.
JSON_NUMBER_FIELDS = [
    ("POST", "/api/bins", "response.status", range(200, 600)),
    ("POST", "/api/bins", "response.delay_ms", range(0, 30_001)),
    ("PATCH", "/api/bins/{bin_id}", "response.status", range(200, 600)),
    ("PATCH", "/api/bins/{bin_id}", "response.delay_ms", range(0, 30_001)),
    ("POST", "/api/webhooks", "timeout_s", None),  # 0.1 to 60 seconds
    ("PATCH", "/api/webhooks/{webhook_id}", "timeout_s", None),
    ("PATCH", "/api/webhooks/{webhook_id}", "active", None),  # true or false only
    ("POST", "/api/probe", "timeout_s", None),  # no edge value is in range: nothing is sent
    ("POST", "/api/bins", "rules[0].percent", range(0, 101)),
    ("POST", "/api/bins", "rules[0].status", range(200, 600)),
    ("PATCH", "/api/bins/{bin_id}", "rules[0].percent", range(0, 101)),
    ("POST", "/api/bins", "forward.timeout_s", range(1, 121)),  # (0.1 to 120 seconds)
]
PROBE_SECRET = "whsec_" + "QUJD" * 8  # a well-formed secret (32 bytes, base64)
RAW_LITERALS = ["1e309", "-1e309", "NaN", "Infinity", "-Infinity", "9" * 5000]
# Whole numbers JSON reads as Python ints too large for a float (math.isfinite raised on them).
HUGE_INTEGERS = ["1" + "0" * 400, "-1" + "0" * 400]


def json_body_with(method: str, path: str, field: str, literal: str) -> bytes:
    """A JSON body setting `field` to `literal` (JSON text, so 1e309 and NaN go in raw)."""
    if field.startswith("response."):
        body = {"response": {field.split(".")[1]: "<here>"}}
    elif field.startswith("rules[0]."):
        body = {"rules": [{"name": "edge", "status": 500, field.split(".")[1]: "<here>"}]}
    elif field.startswith("forward."):
        body = {"forward": {"url": REFUSED_PORT_URL, field.split(".")[1]: "<here>"}}
    elif path == "/api/probe":
        body = {"url": REFUSED_PORT_URL, "secret": PROBE_SECRET, field: "<here>"}
    elif method == "POST":
        body = {"name": "edges", "url": REFUSED_PORT_URL, "event": "*", field: "<here>"}
    else:
        body = {field: "<here>"}
    return json.dumps(body).replace('"<here>"', literal).encode()


@pytest.mark.parametrize(
    "literal",
    [json.dumps(v) for v in EDGE_VALUES] + RAW_LITERALS + HUGE_INTEGERS,
    ids=lambda v: v[:20],
)
@pytest.mark.parametrize(("method", "path", "field", "valid"), JSON_NUMBER_FIELDS)
def test_every_json_number_field_is_range_checked(
    edge_app, edge_world, method, path, field, valid, literal
):
    body = json_body_with(method, path, field, literal)
    response = edge_app.test_client().open(
        path.format(**edge_world), method=method, data=body, content_type="application/json"
    )
    check_local(response, f"{method} {path} {body[:80]!r}")
    try:
        value = json.loads(literal)
    except ValueError:
        value = None
    in_range = (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (value in valid if valid is not None else field == "timeout_s" and 0.1 <= value <= 60)
    )
    if literal in RAW_LITERALS:
        # Python reads these, JSON has no such numbers: the body is refused as not JSON, so
        # they are never stored and handed on (shared/json_input.py).
        assert response.status_code == 400, response.data[:300]
        error = response.get_json()["error"]
        assert error["code"] == "invalid_json" and "sys." not in error["message"]
    elif in_range:
        assert response.status_code in (200, 201), response.data[:300]
    else:
        assert response.status_code == 422, response.data[:300]
        assert response.get_json()["error"].get("field", field) == field


@pytest.mark.parametrize("value", EDGE_VALUES, ids=edge_id)
@pytest.mark.parametrize("form_path", ["/webhooks/new", "/webhooks/{webhook_id}"])
def test_the_webhook_forms_check_their_timeout(edge_app, edge_world, form_path, value):
    form = {"name": "edges", "url": REFUSED_PORT_URL, "event": "*", "timeout_s": str(value)}
    response = edge_app.test_client().post(form_path.format(**edge_world), data=form)
    check_local(response, f"POST {form_path} timeout_s={str(value)[:20]!r}")
    assert response.status_code == 422
    assert "Timeout" in response.get_data(as_text=True)


@pytest.mark.parametrize("value", EDGE_VALUES, ids=edge_id)
def test_the_live_stream_refuses_a_bad_cursor_with_an_error_frame(server, world, value):
    import simple_websocket

    from hooklab.client.http import LiveSocket

    text = str(value)
    url = f"ws://127.0.0.1:{server.port}/ws/bins/{world['bin_id']}?after={quote(text, safe='')}"
    try:
        ws = LiveSocket.connect(url)
    except simple_websocket.ConnectionError as exc:
        # 10,000 characters pass gunicorn's request-line limit: 414, before the app.
        assert len(text) > 4000 and exc.status_code == 414
        return
    try:
        frame = ws.receive(timeout=5)
        if text == "" or (text.isascii() and text.isdigit() and int(text) <= 2**63 - 1):
            # A fine cursor: the seed request comes, or nothing newer than it.
            assert frame is None or json.loads(frame)["type"] == "request"
        else:
            assert frame is not None and json.loads(frame)["error"]["code"] == "bad_request"
    finally:
        with contextlib.suppress(simple_websocket.ConnectionClosed, OSError):
            ws.close()
