"""Fuzzing with hypothesis: the capture endpoint and every /api route, against `hooklab serve`.

Never a 5xx, never a traceback in a response, the server keeps answering, and every capture
it accepts reads back exactly as it was sent. The /api routes are enumerated from the app's
URL map, so a route added later is fuzzed too. Bounded: a few hundred examples in all.

Safety: the only field that makes the server send traffic is a webhook's `url`; the fuzzer
only ever gives it local URLs (or values that are not http URLs), so nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
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
    content_type = data.draw(
        st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"])
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
