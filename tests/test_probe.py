"""The receiver probe against real receivers on 127.0.0.1, through a real `hooklab serve`.

Each receiver gets exactly the report card it should: every check's outcome is asserted.
"""

from __future__ import annotations

import json

import pytest
import requests

from hooklab.sender.probe import NAMES, tamper
from hooklab.shared.signing import generate_secret
from tests import receivers
from tests.served import free_port, start

ALL = set(NAMES)
REFUSALS = {
    "wrong_signature",
    "missing_signature",
    "missing_id",
    "tampered_body",
    "stale_timestamp",
    "future_timestamp",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probe")
    served = start(tmp, "--db", str(tmp / "probe.db"))
    yield served
    served.stop()


def add_webhook(base: str, url: str, **fields) -> dict:
    body = {"name": "Receiver", "url": url, "event": "payment_received", **fields}
    response = requests.post(f"{base}/api/webhooks", json=body, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()


def probe(server, url: str, secret: str, **fields) -> dict:
    response = requests.post(
        f"{server.url}/api/probe", json={"url": url, "secret": secret, **fields}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()


def failed(report: dict) -> set[str]:
    return {c["name"] for c in report["checks"] if not c["ok"]}


def test_a_correct_receiver_passes_every_check(server):
    secret = generate_secret()
    with receivers.serve(receivers.correct(secret)) as receiver:
        report = probe(server, receiver.url, secret)
    assert [c["name"] for c in report["checks"]] == NAMES
    assert report["ok"] is True and failed(report) == set()
    by_name = {c["name"]: c for c in report["checks"]}
    for name in REFUSALS:
        assert by_name[name]["status_code"] == 400 and by_name[name]["error"] is None
    for name in ALL - REFUSALS - {"answer_time"}:
        assert by_name[name]["status_code"] == 204
    for check in report["checks"]:
        assert set(check) == {"name", "ok", "status_code", "duration_ms", "error", "expected"}
        assert isinstance(check["duration_ms"], int) and check["expected"]
    # 11 checks, repeated_id sends twice: 11 requests reached the receiver.
    assert len(receiver.received) == 11
    repeated = [r for r in receiver.received if r.headers["X-Hooklab-Probe"] == "repeated_id"]
    assert len(repeated) == 2 and repeated[0] == repeated[1]
    assert "de-duplication" in by_name["repeated_id"]["expected"]


def test_a_receiver_that_accepts_everything_fails_every_refusal(server):
    with receivers.serve(receivers.accepts_everything) as receiver:
        report = probe(server, receiver.url, generate_secret())
    assert report["ok"] is False
    assert failed(report) == REFUSALS
    for check in report["checks"]:
        if check["name"] in REFUSALS:
            assert check["status_code"] == 200
            assert "not a 4xx: it accepted what it should refuse" in check["error"]


def test_a_receiver_that_ignores_the_timestamp_fails_the_replay_checks(server):
    secret = generate_secret()
    with receivers.serve(receivers.signature_only(secret)) as receiver:
        report = probe(server, receiver.url, secret)
    assert failed(report) == {"stale_timestamp", "future_timestamp"}
    stale = next(c for c in report["checks"] if c["name"] == "stale_timestamp")
    assert stale["status_code"] == 200 and "10 minutes old" in stale["expected"]


def test_a_receiver_with_the_wrong_secret_refuses_what_it_should_accept(server):
    with receivers.serve(receivers.correct(generate_secret())) as receiver:
        report = probe(server, receiver.url, generate_secret())
    assert failed(report) == {"valid_signature", "rotated_signatures", "repeated_id", "extra_field"}
    repeated = next(c for c in report["checks"] if c["name"] == "repeated_id")
    assert repeated["error"] == "the first request: answered HTTP 400, not a 2xx"


def test_a_redirect_is_reported_as_what_it_is_and_not_followed(server):
    with receivers.serve(receivers.redirecting) as receiver:
        report = probe(server, receiver.url, generate_secret())
    # A 3xx is neither the 2xx nor the 4xx any check wants; it did answer in time.
    assert failed(report) == ALL - {"answer_time"}
    for check in report["checks"][:-1]:
        assert check["status_code"] == 302
    wrong = next(c for c in report["checks"] if c["name"] == "wrong_signature")
    assert "302" in wrong["error"] and "not followed" in wrong["error"]
    assert len(receiver.received) == 11  # nothing went to the Location


def test_a_receiver_that_is_down_fails_each_check_with_the_error(server):
    url = f"http://127.0.0.1:{free_port()}/hook"
    report = probe(server, url, generate_secret(), timeout_s=2)
    assert failed(report) == ALL
    for check in report["checks"]:
        assert check["status_code"] is None
        assert "connection refused" in check["error"]


def test_a_receiver_that_hangs_times_out_on_each_check_and_the_probe_goes_on(server):
    with receivers.serve(None) as receiver:
        report = probe(server, receiver.url, generate_secret(), timeout_s=0.3)
        assert len(receiver.received) == 11  # every check was still sent
    assert failed(report) == ALL
    for check in report["checks"]:
        assert check["status_code"] is None and "timeout" in check["error"]
    answer = next(c for c in report["checks"] if c["name"] == "answer_time")
    assert answer["error"].startswith("11 of 11 requests got no answer")


def test_probe_with_another_event(server):
    secret = generate_secret()
    with receivers.serve(receivers.correct(secret)) as receiver:
        report = probe(server, receiver.url, secret, event="site_published")
    assert report["ok"] and report["event"] == "site_published"
    assert {r.headers["X-Hooklab-Event"] for r in receiver.received} == {"site_published"}


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"url": "ftp://127.0.0.1/hook"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": None}, "url"),
        ({"secret": "s3cr3t"}, "secret"),
        ({"secret": "whsec_not*base64"}, "secret"),
        ({"secret": None}, "secret"),
        ({"event": "no_such_event"}, "event"),
        ({"event": 7}, "event"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 61}, "timeout_s"),
        ({"timeout_s": "1"}, "timeout_s"),
        ({"timeout_s": True}, "timeout_s"),
        ({"follow": True}, "follow"),
    ],
)
def test_bad_probe_input_is_a_422_naming_the_field(server, fields, field):
    body = {"url": "http://127.0.0.1:9/hook", "secret": generate_secret(), **fields}
    response = requests.post(f"{server.url}/api/probe", json=body, timeout=10)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_probing_a_webhook_uses_its_url_secret_event_and_format(server):
    secret = generate_secret()
    with receivers.serve(receivers.correct(secret)) as receiver:
        webhook = add_webhook(
            server.url,
            receiver.url,
            secret=secret,
            event="domain_created",
            payload_format="envelope",
        )
        response = requests.post(f"{server.url}/api/webhooks/{webhook['id']}/probe", timeout=60)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ok"] is True and [c["name"] for c in report["checks"]] == NAMES
    assert report["event"] == "domain_created"
    assert receiver.received[0].body.startswith(b'{"type":"domain_created"')


def test_probing_a_v1a_webhook_signs_with_its_signing_key(server):
    with receivers.serve(receivers.accepts_everything) as receiver:
        webhook = add_webhook(server.url, receiver.url, signature_scheme="v1a")
        public_key = webhook["public_key"]
    # The same checks, judged by a receiver that knows only the public key.
    with receivers.serve(receivers.signature_only(public_key)) as receiver:
        requests.patch(
            f"{server.url}/api/webhooks/{webhook['id']}", json={"url": receiver.url}, timeout=5
        ).raise_for_status()
        report = requests.post(
            f"{server.url}/api/webhooks/{webhook['id']}/probe", timeout=60
        ).json()
    assert failed(report) == {"stale_timestamp", "future_timestamp"}
    valid = next(r for r in receiver.received if r.headers["X-Hooklab-Probe"] == "valid_signature")
    assert valid.headers["webhook-signature"].startswith("v1a,")


def test_probing_a_missing_webhook_is_a_404(server):
    response = requests.post(f"{server.url}/api/webhooks/999999/probe", timeout=10)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [b'{"a":"xyz"}', b'{"\\u00ef\\n":"z"}', '{"é":"ü1"}'.encode(), b'{"n":[1,true,null]}'],
)
def test_tamper_changes_one_byte_and_keeps_json_where_it_can(body):
    tampered = tamper(body)
    assert len(tampered) == len(body) and tampered != body
    assert sum(a != b for a, b in zip(body, tampered, strict=True)) == 1
    json.loads(tampered)  # still JSON: a receiver must refuse it for its signature alone


def test_under_the_private_target_block_a_loopback_receiver_is_refused(tmp_path):
    from hooklab.app.factory import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, block_private_targets=True))
    response = app.test_client().post(
        "/api/probe", json={"url": "http://127.0.0.1:9/hook", "secret": generate_secret()}
    )
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["field"] == "url" and "loopback" in error["message"]


def test_a_webhook_probe_under_the_block_reports_blocked_on_each_check(tmp_path):
    # A webhook saved before the block was switched on: every check is refused before it
    # connects, and says so.
    from hooklab.app.factory import create_app
    from tests.conftest import make_settings

    open_app = create_app(make_settings(tmp_path))
    created = (
        open_app.test_client()
        .post(
            "/api/webhooks",
            json={"name": "Local", "url": "http://127.0.0.1:9/hook", "event": "payment_received"},
        )
        .get_json()
    )
    blocked = create_app(make_settings(tmp_path, block_private_targets=True))
    report = blocked.test_client().post(f"/api/webhooks/{created['id']}/probe").get_json()
    assert failed(report) == ALL
    for check in report["checks"][:-1]:
        assert "blocked target: 127.0.0.1 is a loopback address" in check["error"]
