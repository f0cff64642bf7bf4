"""The API bugs an outside review found, each held to its fix (one section per finding)."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
import requests
from click.testing import CliRunner

from hooklab.cli.main import cli
from tests.receivers import accepts_everything, serve

JSON = {"Content-Type": "application/json"}


def add_webhook(client, url: str = "http://127.0.0.1:9/hooks") -> dict:
    body = {"name": "Payments", "url": url, "event": "payment_received"}
    response = client.post("/api/webhooks", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def error_of(response) -> dict:
    return response.get_json()["error"]


# ---- 1. a configured answer's status is a final one (200-599) --------------------------------


@pytest.mark.parametrize("status", [100, 101, 103, 199])
def test_a_bin_may_not_answer_with_a_1xx_status(client, status):
    response = client.post("/api/bins", json={"response": {"status": status}})
    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "response.status"
    assert "from 200 to 599" in error["message"] and "1xx" in error["message"]
    assert client.get("/api/bins").get_json() == []  # nothing was created


@pytest.mark.parametrize("status", [100, 199])
def test_a_rule_may_not_answer_with_a_1xx_status(client, status):
    created = client.post("/api/bins", json={}).get_json()
    rules = [{"status": 503}, {"match": {"method": "POST"}, "status": status}]
    response = client.patch(f"/api/bins/{created['id']}", json={"rules": rules})
    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "rules[1].status"
    assert "from 200 to 599" in error["message"] and "1xx" in error["message"]
    assert client.get(f"/api/bins/{created['id']}").get_json()["rules"] == []


def test_statuses_200_and_599_are_still_taken(client):
    rules = [{"status": 200}, {"status": 599}]
    response = client.post("/api/bins", json={"response": {"status": 200}, "rules": rules})
    assert response.status_code == 201, response.get_json()
    assert [rule["status"] for rule in response.get_json()["rules"]] == [200, 599]


@pytest.mark.parametrize(
    "args",
    [
        ("--status", "101"),
        ("--rule", "first 2: 100"),
    ],
    ids=["status", "rule"],
)
def test_the_cli_says_the_same_refusal(live_server, args):
    bin_ = live_server.create_bin()
    environ = {"HOOKLAB_SERVER": live_server.url, "HOOKLAB_TOKEN": None}
    result = CliRunner().invoke(cli, ["bin", "update", bin_["id"], *args], env=environ)
    assert result.exit_code == 1, result.output
    assert "from 200 to 599" in result.stderr and "1xx" in result.stderr
    assert "Traceback" not in result.output


# ---- 2. a replay keeps the captured method's spelling ----------------------------------------


def send_raw_request(url: str, method: str) -> None:
    """`METHOD /path HTTP/1.1` as given (requests and http.client would not send `get`)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(
            f"{method} {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        while sock.recv(65536):
            pass


def newest(live_server, bin_id: str) -> dict:
    """The bin's newest captured request in full (its `replays` too)."""
    listed = requests.get(f"{live_server.url}/api/bins/{bin_id}/requests?limit=1", timeout=5)
    rid = listed.json()[0]["id"]
    return requests.get(f"{live_server.url}/api/bins/{bin_id}/requests/{rid}", timeout=5).json()


@pytest.mark.parametrize("method", ["get", "PuRgE", "post", "GET"])
def test_a_replay_sends_the_method_as_it_was_captured(live_server, method):
    source = live_server.create_bin()
    target = live_server.create_bin(response={"status": 201})
    send_raw_request(source["url"], method)
    captured = newest(live_server, source["id"])
    assert captured["method"] == method
    url = f"{live_server.url}/api/bins/{source['id']}/requests/{captured['id']}/replay"
    answer = requests.post(url, json={"url": target["url"]}, timeout=15).json()
    assert (answer["status_code"], answer["error"]) == (201, None)
    assert newest(live_server, target["id"])["method"] == method  # on the wire as captured
    [history] = newest(live_server, source["id"])["replays"]
    assert (history["method"], history["edited"]) == (method, [])


def test_a_replay_with_an_edited_method_sends_it_as_given(live_server):
    source = live_server.create_bin()
    target = live_server.create_bin()
    send_raw_request(source["url"], "POST")
    captured = newest(live_server, source["id"])
    url = f"{live_server.url}/api/bins/{source['id']}/requests/{captured['id']}/replay"
    answer = requests.post(url, json={"url": target["url"], "method": "patch"}, timeout=15)
    assert answer.json()["status_code"] == 200
    assert newest(live_server, target["id"])["method"] == "patch"
    [history] = newest(live_server, source["id"])["replays"]
    assert (history["method"], history["edited"]) == ("patch", ["method"])


# ---- 3. a long poll's timeout is ASCII digits ------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "١٢",  # Arabic-Indic digits
        "１２",  # fullwidth digits
        "1_0",
        "1e1",
        "\u00a05",  # a no-break space before it
        "5\u3000",  # an ideographic space after it
        "inf",
        ".5",
        "5.",
        "1.2.3",
    ],
)
def test_a_long_poll_timeout_that_is_not_plain_ascii_digits_is_a_400(client, value):
    created = client.post("/api/bins", json={}).get_json()
    url = f"/api/bins/{created['id']}/requests/wait"
    response = client.get(url, query_string={"timeout": value, "after": str(2**63 - 1)})
    assert response.status_code == 400, response.data
    error = error_of(response)
    assert error["field"] == "timeout"
    assert error["message"].startswith("timeout must be a number of seconds from 0")


@pytest.mark.parametrize("value", ["0", "0.0", " 0 ", "0.25", "00"])
def test_a_plain_long_poll_timeout_is_taken(client, value):
    created = client.post("/api/bins", json={}).get_json()
    url = f"/api/bins/{created['id']}/requests/wait"
    response = client.get(url, query_string={"timeout": value, "after": str(2**63 - 1)})
    assert response.status_code == 204  # a quarter-second wait at most, then nothing new


@pytest.mark.parametrize("value", ["١", "\u00a05", "5\u3000"])
def test_a_query_whole_number_is_ascii_too(client, value):
    created = client.post("/api/bins", json={}).get_json()
    response = client.get(f"/api/bins/{created['id']}/requests", query_string={"limit": value})
    assert response.status_code == 400
    assert error_of(response)["field"] == "limit"


# ---- 4. a webhook's probe checks its fields --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timeout_s": -1}, "timeout_s"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 61}, "timeout_s"),
        ({"timeout_s": "5"}, "timeout_s"),
        ({"timeout_s": True}, "timeout_s"),
        ({"event": 5}, "event"),
        ({"bogus": 1}, "bogus"),
        ({"url": "http://127.0.0.1:9/"}, "url"),  # the webhook's own URL is probed
        ({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "secret"),
    ],
)
def test_a_webhook_probe_refuses_a_bad_or_unknown_field(client, body, field):
    webhook = add_webhook(client)
    response = client.post(f"/api/webhooks/{webhook['id']}/probe", json=body)
    assert response.status_code == 422, response.get_json()
    assert error_of(response)["field"] == field


def test_a_webhook_probe_refuses_a_body_that_is_not_an_object(client):
    webhook = add_webhook(client)
    for body, code in [(b"{", "invalid_json"), (b"[]", "not_an_object")]:
        response = client.post(f"/api/webhooks/{webhook['id']}/probe", data=body, headers=JSON)
        assert (response.status_code, error_of(response)["code"]) == (400, code)


def test_a_webhook_probe_takes_a_timeout_and_an_event(live_server):
    with serve(accepts_everything) as receiver:
        webhook = live_server.add_webhook(
            name="Receiver", url=receiver.url, event="payment_received"
        )
        url = f"{live_server.url}/api/webhooks/{webhook['id']}/probe"
        asked = {"timeout_s": 2.5, "event": "site_published"}
        report = requests.post(url, json=asked, timeout=60).json()
        assert (report["timeout_s"], report["event"]) == (2.5, "site_published")
        answer_time = next(c for c in report["checks"] if c["name"] == "answer_time")
        assert "(2.5 s)" in answer_time["expected"]
        default = requests.post(url, timeout=60).json()  # no body: as before
        assert default["timeout_s"] == webhook["timeout_s"]
        assert default["event"] == "payment_received"


# ---- 5. rotate, regenerate-secret and redeliver refuse a body they cannot take ---------------


@pytest.mark.parametrize("action", ["rotate", "regenerate-secret"])
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{", 400, "invalid_json"),
        (b"[]", 400, "not_an_object"),
        (b"null", 400, "not_an_object"),
        (b'{"grace_s": -1}', 422, "invalid"),
    ],
)
def test_a_secret_change_with_a_bad_body_changes_nothing(client, action, body, status, code):
    webhook = add_webhook(client)
    url = f"/api/webhooks/{webhook['id']}/{action}"
    response = client.post(url, data=body, headers=JSON)
    assert response.status_code == status, response.get_json()
    assert error_of(response)["code"] == code
    if code == "invalid":
        assert error_of(response)["field"] == "grace_s"
    after = client.get(f"/api/webhooks/{webhook['id']}").get_json()
    assert after["secret"] == webhook["secret"]
    assert after["previous_secret_expires_at"] is None


@pytest.mark.parametrize("action", ["rotate", "regenerate-secret"])
@pytest.mark.parametrize("body", [None, b"", b"{}", b"  "])
def test_a_secret_change_without_a_body_works_as_before(client, action, body):
    webhook = add_webhook(client)
    url = f"/api/webhooks/{webhook['id']}/{action}"
    if body is None:
        response = client.post(url)
    else:
        response = client.post(url, data=body, headers=JSON)
    assert response.status_code == 200, response.get_json()
    after = client.get(f"/api/webhooks/{webhook['id']}").get_json()
    assert after["secret"] != webhook["secret"]


def test_a_redelivery_with_a_bad_body_sends_nothing(live_server):
    with serve(accepts_everything) as receiver:
        webhook = live_server.add_webhook(
            name="Receiver", url=receiver.url, event="payment_received"
        )
        test = requests.post(f"{live_server.url}/api/webhooks/{webhook['id']}/test", timeout=30)
        delivery_id = test.json()["delivery_id"]
        sent = len(receiver.received)
        url = f"{live_server.url}/api/deliveries/{delivery_id}/redeliver"
        for body, status, code in [
            (b"{", 400, "invalid_json"),
            (b"[1]", 400, "not_an_object"),
            (b'{"force": true}', 422, "invalid"),
        ]:
            response = requests.post(url, data=body, headers=JSON, timeout=30)
            assert response.status_code == status, response.text
            assert response.json()["error"]["code"] == code
        assert len(receiver.received) == sent
        attempts = requests.get(f"{live_server.url}/api/deliveries/{delivery_id}", timeout=5)
        assert len(attempts.json()["attempts"]) == 1
        response = requests.post(url, timeout=30)  # no body: one more attempt, as before
        assert response.status_code == 200 and response.json()["ok"] is True
        assert len(receiver.received) == sent + 1


# ---- 6. `null` is a payload (not an object), not "the example" -------------------------------


@pytest.mark.parametrize("body", [b"null", b" null ", b"[]", b"5"])
def test_firing_a_payload_that_is_not_an_object_is_a_422(client, body):
    response = client.post("/api/events/payment_received", data=body, headers=JSON)
    assert response.status_code == 422
    assert error_of(response) == {
        "code": "invalid",
        "message": "The payload must be a JSON object.",
        "field": "payload",
    }


@pytest.mark.parametrize("body", [None, b"", b"  \n"])
def test_firing_with_no_body_sends_the_example(client, body):
    if body is None:
        response = client.post("/api/events/payment_received")
    else:
        response = client.post("/api/events/payment_received", data=body, headers=JSON)
    assert response.status_code == 202, response.get_json()


# ---- 7. Server and Date are the server's own ------------------------------------------------


@pytest.mark.parametrize("name", ["Server", "date", "Keep-Alive", "Upgrade", "Trailers"])
def test_a_configured_answer_may_not_set_a_header_gunicorn_drops(client, name):
    response = client.post("/api/bins", json={"response": {"headers": {name: "x"}}})
    assert response.status_code == 422
    assert error_of(response)["field"] == "response.headers"
    assert error_of(response)["message"] == f"{name} is set by the server."
    rules = [{"status": 200, "headers": [[name, "x"]]}]
    response = client.post("/api/bins", json={"rules": rules})
    assert response.status_code == 422
    assert error_of(response)["field"] == "rules[0].headers"


def test_a_configured_header_reaches_the_client(live_server):
    bin_ = live_server.create_bin(response={"headers": {"X-Served-By": "hooklab-test"}})
    assert requests.get(bin_["url"], timeout=5).headers["X-Served-By"] == "hooklab-test"


# ---- 8. one reading of a JSON body, the same codes on every route ---------------------------

ROUTES = [
    ("POST", "/api/bins"),
    ("POST", "/api/webhooks"),
    ("PATCH", "/api/webhooks/{webhook_id}"),
    ("POST", "/api/webhooks/{webhook_id}/test"),
    ("POST", "/api/webhooks/{webhook_id}/probe"),
    ("POST", "/api/probe"),
    ("POST", "/api/events"),
    ("PATCH", "/api/events/{slug}"),
    ("POST", "/api/events/import"),
]


@pytest.fixture
def world(client) -> dict:
    webhook = add_webhook(client)
    event = {"slug": "my.event", "name": "Mine", "description": "d", "payload": {"a": 1}}
    assert client.post("/api/events", json=event).status_code == 201
    return {"webhook_id": webhook["id"], "slug": "my.event"}


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"null", "not_an_object"),
        (b"[1, 2]", "not_an_object"),
        (b'"text"', "not_an_object"),
    ],
)
def test_a_body_that_is_no_json_object_gets_the_same_code_everywhere(
    client, world, method, path, body, code
):
    response = client.open(path.format(**world), method=method, data=body, headers=JSON)
    assert response.status_code == 400, response.get_json()
    assert error_of(response)["code"] == code


@pytest.mark.parametrize("path", ["/api/events/payment_received", "/api/events/x/check"])
def test_a_payload_that_is_not_json_is_invalid_json_too(client, path):
    response = client.post(path, data=b"{", headers=JSON)
    assert (response.status_code, error_of(response)["code"]) == (400, "invalid_json")


@pytest.mark.parametrize(
    "path", ["/api/bins", "/api/webhooks", "/api/events/payment_received", "/api/probe"]
)
def test_a_number_with_too_many_digits_is_said_plainly(client, path):
    body = b'{"name": ' + b"7" * 5000 + b"}"
    response = client.post(path, data=body, headers=JSON)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_json"
    assert "more than 4,300 digits" in error["message"]
    assert "sys." not in error["message"]


# ---- 9. a malformed Host is quoted as sent --------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8311:8311", "127.0.0.1:08311", "user@127.0.0.1:8311", "a\x01b"]
)
def test_a_malformed_host_is_quoted_as_sent(client, host):
    response = client.get("/api/bins", headers={"Host": host})
    assert response.status_code == 403
    message = error_of(response)["message"]
    assert repr(host) in message and "not a valid host name" in message
    assert "''" not in message and "--allow-host  " not in message


def test_a_long_malformed_host_is_cut(client):
    host = "bad@" + "x" * 5000
    message = error_of(client.get("/api/bins", headers={"Host": host}))["message"]
    assert "bad@xxxx" in message and len(message) < 400


def test_a_foreign_host_still_says_how_to_allow_it(client):
    response = client.get("/api/bins", headers={"Host": "evil.example:8311"})
    assert response.status_code == 403
    assert "--allow-host evil.example" in error_of(response)["message"]


def test_a_host_error_is_json(live_server):
    # Through gunicorn too: the raw header reaches the message as sent.
    port = urlsplit(live_server.url).port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"GET /api/bins HTTP/1.1\r\nHost: 127.0.0.1:{port}:{port}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403")
    assert f"'127.0.0.1:{port}:{port}'" in json.loads(body)["error"]["message"]


# ---- found on the way: a receiver's Retry-After read as ASCII digits only --------------------


@pytest.mark.parametrize("value", ["²", "١٢", "１２"])
def test_a_retry_after_of_other_digits_is_no_number_and_no_crash(value):
    from hooklab.sender.attempt import parse_retry_after

    assert parse_retry_after(value) is None  # `²` raised ValueError out of the attempt
    assert parse_retry_after("12") == 12.0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [(b"{", 400, "invalid_json"), (b"[]", 400, "not_an_object"), (b'{"times": 0}', 422, "invalid")],
)
def test_a_rules_reset_with_a_bad_body_resets_nothing(client, body, status, code):
    created = client.post("/api/bins", json={"rules": [{"times": 2, "status": 503}]}).get_json()
    url = created["url"].replace("http://localhost", "")
    assert client.post(url).status_code == 503  # one of the rule's two answers used
    reset = f"/api/bins/{created['id']}/rules/reset"
    response = client.post(reset, data=body, headers=JSON)
    assert response.status_code == status, response.get_json()
    assert error_of(response)["code"] == code
    assert client.post(url).status_code == 503  # the second: the count was kept
    assert client.post(url).status_code == 200
    assert client.post(reset).status_code == 200  # no body: as before
    assert client.post(url).status_code == 503


def test_the_request_list_refuses_a_parameter_it_does_not_take(client):
    created = client.post("/api/bins", json={}).get_json()
    for name in ("offset", "page", "sort"):
        response = client.get(f"/api/bins/{created['id']}/requests?{name}=5")
        assert response.status_code == 400
        assert error_of(response)["field"] == name
        assert (
            "this route takes after, before, limit, q, method, path"
            in error_of(response)["message"]
        )


def test_a_full_page_of_requests_links_to_the_next_older_page(client):
    created = client.post("/api/bins", json={}).get_json()
    url = created["url"].replace("http://localhost", "")
    ids = [int(client.post(url, data=b"x").headers["X-Hooklab-Request-Id"]) for _ in range(10)]
    base = f"/api/bins/{created['id']}/requests"
    # after= and limit=: the newest three after ids[1]; the Link walks down to the rest.
    seen: list[int] = []
    page = client.get(f"{base}?after={ids[1]}&limit=3")
    while True:
        seen += [r["id"] for r in page.get_json()]
        link = page.headers.get("Link")
        if link is None:
            break
        assert link.endswith('>; rel="next"')
        page = client.get(link[1 : link.index(">")])
        assert page.status_code == 200
    assert seen == sorted(ids[2:], reverse=True)
    assert "Link" not in client.get(f"{base}?limit=50").headers


def test_a_response_of_null_puts_the_default_answer_back(client):
    # It changed nothing, where null clears secret, rules and forward.
    configured = {"status": 418, "headers": [["X-A", "1"]], "body": "teapot", "delay_ms": 5}
    created = client.post("/api/bins", json={"response": configured}).get_json()
    url = created["url"].replace("http://localhost", "")
    assert client.post(url).status_code == 418
    changed = client.patch(f"/api/bins/{created['id']}", json={"response": None})
    assert changed.status_code == 200
    assert changed.get_json()["response"] == {
        "status": 200, "headers": [], "body": None, "delay_ms": 0
    }  # fmt: skip
    answer = client.post(url)
    assert answer.status_code == 200 and "X-A" not in answer.headers
