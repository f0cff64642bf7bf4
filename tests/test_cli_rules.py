"""The compact `--rule` grammar, and `bin create|update` with rules and forwarding."""

from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner

from hooklab.cli.main import cli
from hooklab.cli.rules import RuleSyntaxError, parse_rule


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("first 3: 503", {"times": 3, "status": 503}),
        ("30%: 500", {"percent": 30, "status": 500}),
        ("12.5%: 500", {"percent": 12.5, "status": 500}),
        ("delay 1000-5000", {"delay_ms": 1000, "delay_ms_max": 5000}),
        ("delay 250", {"delay_ms": 250}),
        ("429 Retry-After=5", {"status": 429, "headers": [["Retry-After", "5"]]}),
        ("drop", {"drop": True}),
        ("first 1, 50%: drop", {"times": 1, "percent": 50, "drop": True}),
        (
            'POST /orders/*: 409 body=\'{"error": "conflict"}\'',
            {
                "match": {"method": "POST", "path": "/orders/*"},
                "status": 409,
                "body": '{"error": "conflict"}',
            },
        ),
        ("X-Note='a: b' 200", {"status": 200, "headers": [["X-Note", "a: b"]]}),
        ("410 body=gone", {"status": 410, "body": "gone"}),
    ],
)
def test_the_compact_grammar(text, rule):
    assert parse_rule(text) == {"name": text, **rule}


@pytest.mark.parametrize(
    "text", ["", "first 3:", "sometimes: 500", "delay soon", "503 'unclosed", "5000"]
)
def test_a_rule_that_does_not_parse_says_so(text):
    with pytest.raises(RuleSyntaxError):
        parse_rule(text)


def invoke(live_server, *args: str):
    return CliRunner().invoke(cli, [*args, "--server", live_server.url], catch_exceptions=False)


def test_bin_create_and_update_with_rules_and_forward(live_server):
    made = invoke(
        live_server, "bin", "create", "--rule", "first 3: 503", "--rule", "30%: 500",
        "--rules-seed", "9", "--forward", "http://127.0.0.1:9/app", "--forward-mode", "async",
        "--json",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    created = json.loads(made.output)
    assert [r["name"] for r in created["rules"]] == ["first 3: 503", "30%: 500"]
    assert created["rules"][0]["times"] == 3
    assert created["rules_seed"] == 9
    assert created["forward"] == {
        "url": "http://127.0.0.1:9/app",
        "mode": "async",
        "with_path": True,
        "timeout_s": 10.0,
    }
    shown = invoke(live_server, "bin", "show", created["id"])
    assert "first 3: 503  (answered 0)" in shown.output
    assert "http://127.0.0.1:9/app (async)" in shown.output

    changed = invoke(
        live_server, "bin", "update", created["id"], "--rule", "drop", "--forward-mode", "sync",
        "--json",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    body = json.loads(changed.output)
    assert body["rules"] == [{"name": "drop", "drop": True}]
    assert body["forward"]["mode"] == "sync" and body["forward"]["url"].endswith("/app")

    cleared = invoke(
        live_server, "bin", "update", created["id"], "--no-rules", "--no-forward", "--json"
    )
    body = json.loads(cleared.output)
    assert body["rules"] == [] and body["forward"] is None


def test_bad_rules_and_forwards_are_one_line(live_server):
    bad = invoke(live_server, "bin", "create", "--rule", "sometimes: 500")
    assert bad.exit_code == 2
    assert "sometimes" in bad.output and "Traceback" not in bad.output
    too_slow = invoke(live_server, "bin", "create", "--rule", "delay 99999")
    assert too_slow.exit_code == 1
    assert "rules[0].delay_ms" in too_slow.output
    not_http = invoke(live_server, "bin", "create", "--forward", "ftp://x/")
    assert not_http.exit_code == 1
    assert "forward.url" in not_http.output
    assert len(not_http.output.strip().splitlines()) == 1


def test_reset_rules_from_the_cli(live_server):
    import requests

    b = live_server.create_bin(rules=[{"times": 1, "status": 503}])
    assert requests.post(b["url"], timeout=5).status_code == 503
    assert requests.post(b["url"], timeout=5).status_code == 200
    reset = invoke(live_server, "bin", "update", b["id"], "--reset-rules", "--json")
    assert json.loads(reset.output)["rule_counts"] == [0]
    assert requests.post(b["url"], timeout=5).status_code == 503


def test_the_grammar_is_in_the_help():
    result = CliRunner().invoke(cli, ["bin", "create", "--help"])
    assert "CONDITIONS" in result.output and "first 3: 503" in result.output


def test_bin_requests_says_what_answered_each_request(live_server):
    # Testing a sender's retries from the terminal: which requests the rule failed.
    made = invoke(live_server, "bin", "create", "--rule", "first 3: 503", "--json")
    created = json.loads(made.output)
    codes = [
        requests.post(created["url"] + "/hook", data=str(n), timeout=5).status_code
        for n in range(4)
    ]
    assert codes == [503, 503, 503, 200]
    listed = invoke(live_server, "bin", "requests", created["id"])
    lines = listed.output.splitlines()
    assert lines[0].split()[-1] == "ANSWER"
    answers = [line.split("  ")[-1].strip() for line in lines[1:]]
    assert answers == [
        "200 · default",
        "503 · first 3: 503",
        "503 · first 3: 503",
        "503 · first 3: 503",
    ]
