"""`hooklab webhook …` against a real server: waits, paging, enable/disable, --server, events."""

from __future__ import annotations

import functools
import json
import re
import time

import pytest
import requests
from click.testing import CliRunner

from hooklab.cli import common
from hooklab.cli.main import cli
from hooklab.client import http as http_client
from hooklab.client.http import Client
from hooklab.sender import deliveries as sender_deliveries
from hooklab.sender import webhooks as sender_webhooks
from hooklab.sender.attempt import DEADLINE_GRACE_S
from tests import receivers


@pytest.fixture
def run(live_server):
    """Invoke the CLI in-process against the live server; returns click's Result."""
    runner = CliRunner()

    def invoke(*args: str, env=None):
        environ = {"HOOKLAB_SERVER": live_server.url, "HOOKLAB_TOKEN": None, **(env or {})}
        return runner.invoke(cli, list(args), env=environ, catch_exceptions=False)

    return invoke


def add_webhook(live_server, **fields) -> dict:
    body = {"name": "Payments", "event": "payment_received", **fields}
    if "url" not in body:
        body["url"] = live_server.create_bin()["url"]
    response = requests.post(f"{live_server.url}/api/webhooks", json=body, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()


def slow(seconds: float) -> receivers.Judge:
    """A receiver that takes `seconds` to answer 200 (the case under test: a slow receiver)."""

    def judge(body: bytes, headers: dict[str, str]) -> int:
        time.sleep(seconds)
        return 200

    return judge


# ---- 1. the client waits as long as the server may take for an attempt ---------------------


def test_the_client_knows_the_servers_longest_webhook_timeout():
    assert http_client.MAX_WEBHOOK_TIMEOUT_S == sender_webhooks.MAX_TIMEOUT_S
    assert http_client.ATTEMPT_WAIT_S > sender_webhooks.MAX_TIMEOUT_S + DEADLINE_GRACE_S + 5


def test_test_and_redeliver_wait_longer_than_any_webhook_timeout(live_server):
    webhook = add_webhook(live_server)
    client = Client(live_server.url)
    waits = []
    send = client.session.request

    def spy(method, url, **kwargs):
        waits.append((url.rsplit("/", 1)[-1], kwargs["timeout"]))
        return send(method, url, **kwargs)

    client.session.request = spy
    assert client.test_webhook(webhook["id"])["ok"] is True
    delivery_id = client.deliveries(webhook["id"])[0]["id"]
    assert client.redeliver(delivery_id)["ok"] is True
    longest = sender_webhooks.MAX_TIMEOUT_S + DEADLINE_GRACE_S
    assert {name: wait for name, wait in waits if name in ("test", "redeliver")} == {
        "test": pytest.approx(http_client.ATTEMPT_WAIT_S),
        "redeliver": pytest.approx(http_client.ATTEMPT_WAIT_S),
    }
    assert all(wait > longest for name, wait in waits if name in ("test", "redeliver"))


def test_redeliver_to_a_receiver_slower_than_the_clients_timeout_prints_its_outcome(
    run, live_server, monkeypatch
):
    # The CLI's client gives up on an ordinary call after 0.5 s here; the receiver takes 1.5 s,
    # well inside the webhook's timeout: the CLI waits for the attempt and prints it.
    monkeypatch.setattr(common, "Client", functools.partial(Client, timeout=0.5))
    with receivers.serve(slow(1.5)) as receiver:
        webhook = add_webhook(live_server, url=receiver.url, timeout_s=5)
        tested = run("webhook", "test", str(webhook["id"]))
        assert tested.exit_code == 0, tested.output
        assert tested.stdout.startswith("✓ Test event delivered: 200 in ")
        [delivery] = json.loads(run("webhook", "deliveries", str(webhook["id"]), "--json").stdout)
        again = run("webhook", "redeliver", str(delivery["id"]))
    assert again.exit_code == 0, again.output
    assert re.fullmatch(rf"✓ Delivery {delivery['id']}, attempt 2: 200 in \d+ ms\n", again.stdout)


# ---- 2. the delivery log, page by page ------------------------------------------------------


def fire(live_server, n: int) -> list[int]:
    ids = []
    for _ in range(n):
        answer = requests.post(f"{live_server.url}/api/events/payment_received", timeout=5)
        ids.append(answer.json()["deliveries"][0]["id"])
    return ids


def table_ids(stdout: str) -> list[int]:
    return [int(line.split()[0]) for line in stdout.splitlines()[1:] if line[:1].isdigit()]


def test_deliveries_page_with_limit_and_before_and_say_what_is_left_out(run, live_server):
    webhook = add_webhook(live_server)
    ids = fire(live_server, 5)
    webhook_id = str(webhook["id"])

    first = run("webhook", "deliveries", webhook_id, "--limit", "2")
    assert first.exit_code == 0, first.output
    assert table_ids(first.stdout) == ids[:2:-1]
    assert first.stdout.splitlines()[-1] == (f"… 3 older deliveries not shown (--before {ids[3]})")
    second = run("webhook", "deliveries", webhook_id, "--limit", "2", "--before", str(ids[3]))
    assert table_ids(second.stdout) == ids[2:0:-1]
    assert second.stdout.splitlines()[-1] == f"… 1 older delivery not shown (--before {ids[1]})"
    last = run("webhook", "deliveries", webhook_id, "--before", str(ids[1]))
    assert table_ids(last.stdout) == ids[:1]
    assert "not shown" not in last.stdout
    everything = run("webhook", "deliveries", webhook_id)
    assert table_ids(everything.stdout) == ids[::-1] and "not shown" not in everything.stdout

    # --json stays a pure JSON array, whatever is left out.
    as_json = run("webhook", "deliveries", webhook_id, "--limit", "2", "--json")
    assert [d["id"] for d in json.loads(as_json.stdout)] == ids[:2:-1]
    assert "not shown" not in as_json.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "Invalid value for '--limit': must be at least 1, not 0"),
        (["--limit", "201"], "Invalid value for '--limit': must be at most 200, not 201"),
        (["--limit", "x"], "Invalid value for '--limit': must be a whole number from 1 to 200"),
        (["--before", "-1"], "Invalid value for '--before': must be at least 0, not -1"),
        (["--before", "abc"], "Invalid value for '--before': must be a whole number"),
    ],
)
def test_deliveries_refuse_a_bad_limit_or_cursor_in_one_line(run, args, message):
    result = run("webhook", "deliveries", "1", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1


def test_the_cli_limit_has_the_apis_bounds():
    from hooklab.cli.webhooks import MAX_DELIVERIES_LIMIT

    assert MAX_DELIVERIES_LIMIT == sender_deliveries.MAX_LIMIT


# ---- 3. enable and disable from the CLI -----------------------------------------------------


def test_disable_and_enable_a_webhook(run, live_server):
    webhook = add_webhook(live_server, name="Payments")
    webhook_id = str(webhook["id"])
    off = run("webhook", "disable", webhook_id)
    assert off.exit_code == 0, off.output
    assert off.stdout == f"Disabled webhook {webhook_id}: Payments\n"
    shown = run("webhook", "show", webhook_id).stdout
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in shown.splitlines())
    assert fields["Active"].startswith("no (Disabled by hand on ")
    assert fields["Enable it"] == f"hooklab webhook enable {webhook_id}"
    assert run("webhook", "disable", webhook_id).stdout == (
        f"Webhook {webhook_id} is already disabled: Payments\n"
    )

    on = run("webhook", "enable", webhook_id)
    assert on.exit_code == 0, on.output
    assert on.stdout == f"Enabled webhook {webhook_id}: Payments\n"
    read = requests.get(f"{live_server.url}/api/webhooks/{webhook_id}", timeout=5).json()
    assert read["active"] is True and read["disabled_reason"] is None
    assert "Enable it" not in run("webhook", "show", webhook_id).stdout
    assert run("webhook", "enable", webhook_id).stdout == (
        f"Webhook {webhook_id} is already enabled: Payments\n"
    )


@pytest.mark.parametrize("command", ["enable", "disable"])
def test_enable_or_disable_a_missing_webhook_is_one_line(run, command):
    result = run("webhook", command, "999")
    assert result.exit_code == 1
    assert result.stderr == "Error: No webhook with id '999'.\n"
    bad = run("webhook", command, "x")
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1


# ---- 4. an event that webhooks use ----------------------------------------------------------


def test_events_rm_refuses_an_event_in_use_and_says_which_webhooks(run, live_server):
    event = {"slug": "shop.order_paid", "name": "Order Paid", "payload": {"order_id": 1}}
    assert requests.post(f"{live_server.url}/api/events", json=event, timeout=5).ok
    webhook = add_webhook(live_server, name="Orders", event="shop.order_paid")
    refused = run("events", "rm", "shop.order_paid")
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"Error: Event 'shop.order_paid' is used by 1 webhook: {webhook['id']} (Orders). "
        "Point it at another event, or delete it, first.\n"
    )
    assert run("webhook", "rm", str(webhook["id"])).exit_code == 0
    removed = run("events", "rm", "shop.order_paid")
    assert removed.exit_code == 0, removed.output
    assert removed.stdout == "Deleted event shop.order_paid\n"
    builtin = run("events", "rm", "payment_received")
    assert builtin.exit_code == 1 and "built-in events are read-only" in builtin.stderr


# ---- 6. a malformed --server ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "why"),
    [
        ("http://[::1", "'http://[::1' is not a valid URL: its host has an unclosed ["),
        ("http://127.0.0.1:99999", "'http://127.0.0.1:99999' has no valid port (1 to 65535)"),
        ("http://127.0.0.1:port", "'http://127.0.0.1:port' has no valid port (1 to 65535)"),
        ("localhost:8000", "'localhost:8000' is not an http:// or https:// URL"),
        ("http://", "'http://' names no host"),
    ],
)
def test_a_malformed_server_is_a_usage_error_naming_it(server, why):
    for args, env in [
        (["--server", server, "webhook", "list"], {"HOOKLAB_SERVER": None}),
        (["webhook", "list"], {"HOOKLAB_SERVER": server}),
    ]:
        result = CliRunner().invoke(cli, args, env={"HOOKLAB_TOKEN": None, **env})
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"Error: --server (or HOOKLAB_SERVER): {why}; give one like http://127.0.0.1:8000\n"
        )
