"""Schemas with regular expressions are checked in a helper process with a deadline.

`re` cannot be interrupted and holds the interpreter lock: checked in the server's process, a
catastrophic pattern against a hostile captured body would stall every request for minutes.
"""

from __future__ import annotations

import os
import resource
import threading
import time

import pytest
import requests

from hooklab.sender.pattern_checks import NotChecked, PatternChecks
from hooklab.sender.schemas import Checker

CATASTROPHIC = "^(a+)+$"  # 2**n ways to split n a's: `re` tries them all before failing
HOSTILE = "a" * 36 + "b"  # minutes of backtracking (22 a's take 0.6 s, x4 per two more)
SCHEMA = {
    "type": "object",
    "required": ["code"],
    "properties": {"code": {"type": "string", "pattern": CATASTROPHIC}, "n": {"type": "integer"}},
    "patternProperties": {"^x-": {"type": "integer"}},
}


@pytest.fixture
def helper():
    checks = PatternChecks(deadline_s=1.0)
    yield checks
    checks.stop()


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "aaa"},
        {"code": "aab"},
        {"code": "aaa", "x-count": "two", "x-ok": 2},
        {"n": "one"},
        {"code": "aaa", "extra": True},
    ],
)
def test_the_helper_answers_what_the_check_in_process_answers(helper, payload):
    checker = Checker.for_schema(SCHEMA)
    assert checker.with_patterns is not None
    assert helper.check(SCHEMA, payload) == checker.check_here(payload)


def test_schemas_without_patterns_are_checked_in_process():
    schema = {"type": "object", "properties": {"pattern": {"type": "string"}}}
    assert Checker.for_schema(schema).with_patterns is None  # a key named "pattern" is data


def test_past_the_deadline_the_helper_is_killed_and_the_next_check_starts_another(helper):
    started = time.monotonic()
    with pytest.raises(NotChecked, match="took longer than 1 s"):
        helper.check(SCHEMA, {"code": HOSTILE})
    assert time.monotonic() - started < 20  # the deadline, and a helper's start at most
    assert helper._helper is None  # killed, not left matching
    assert helper.check(SCHEMA, {"code": "aa"}) == {"valid": True, "problems": []}


def test_checks_work_when_the_server_has_over_1024_descriptors_open(helper):
    """select() cannot wait on a descriptor past 1024; a busy server has that many sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1300:
        pytest.skip(f"this machine allows {hard} open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1300), hard))
    pipes = [os.pipe() for _ in range(560)]
    try:
        assert helper.check(SCHEMA, {"code": "ab"})["valid"] is False
        assert helper._helper.stdout.fileno() > 1024
    finally:
        for pipe in pipes:
            os.close(pipe[0])
            os.close(pipe[1])
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_payload_too_deep_for_the_helper_is_a_recursion_error(helper):
    deep: dict = {}
    for _ in range(5000):
        deep = {"x-a": deep}
    with pytest.raises(RecursionError):
        helper.check(SCHEMA, deep)
    assert helper.check(SCHEMA, {"code": "a"}) == {"valid": True, "problems": []}


def test_a_catastrophic_pattern_does_not_stall_the_server(served):
    """`hooklab serve`: a captured request naming an event whose schema backtracks for
    minutes is reported as not checked, and the server answers other requests meanwhile."""
    base = served.url
    event = {
        "slug": "shop.coupon_used",
        "name": "Coupon Used",
        "payload": {"code": "aa"},
        "schema": SCHEMA,
    }
    assert requests.post(f"{base}/api/events", json=event, timeout=10).status_code == 201
    bin_id = requests.post(f"{base}/api/bins", json={}, timeout=10).json()["id"]
    captured = requests.post(
        f"{base}/b/{bin_id}",
        json={"code": HOSTILE},
        headers={"X-Hooklab-Event": "shop.coupon_used"},
        timeout=10,
    )
    request_id = captured.headers["X-Hooklab-Request-Id"]

    answer: dict = {}

    def check() -> None:
        url = f"{base}/api/bins/{bin_id}/requests/{request_id}/check"
        answer["response"] = requests.get(url, timeout=60)

    checking = threading.Thread(target=check)
    checking.start()
    answered_meanwhile = 0
    while checking.is_alive():
        health = requests.get(f"{base}/api/health", timeout=60)
        assert health.status_code == 200
        if checking.is_alive():
            answered_meanwhile += 1
    checking.join()

    response = answer["response"]
    assert response.status_code == 200
    result = response.json()
    assert result["valid"] is False
    assert result["problems"][0]["message"].startswith("not checked: the schema's patterns took")
    assert answered_meanwhile >= 1
    # The same event still checks a harmless payload.
    harmless = requests.post(
        f"{base}/api/events/shop.coupon_used/check", json={"code": "aaaa"}, timeout=10
    )
    assert harmless.json()["valid"] is True


def test_a_helper_that_cannot_start_is_a_clear_not_checked(monkeypatch):
    checks = PatternChecks(deadline_s=1.0)
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    with pytest.raises(NotChecked, match="did not start"):
        checks.check(SCHEMA, {"code": "a"})
    monkeypatch.undo()
    assert checks.check(SCHEMA, {"code": "a"}) == {"valid": True, "problems": []}
    checks.stop()
