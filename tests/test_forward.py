"""Forwarding to a live local app: sync (byte-exact both ways, 502/504), async, loops refused."""

from __future__ import annotations

import socket
import threading

import pytest
import requests
from click.testing import CliRunner

from hooklab.app.factory import open_store
from hooklab.bin_server.forward import (
    ASYNC_WORKERS,
    FLOOD_RATE,
    PACE_S,
    RATE_WINDOW_S,
    ForwardQueue,
)
from hooklab.cli.main import cli
from tests.app_receiver import AppReceiver, wait_for
from tests.conftest import make_settings, start_live_server
from tests.served import free_port


@pytest.fixture
def app_receiver():
    receiver = AppReceiver()
    yield receiver
    receiver.stop()


def captured(live_server, bin_id: str, request_id: str) -> dict:
    url = f"{live_server.url}/api/bins/{bin_id}/requests/{request_id}"
    return requests.get(url, timeout=5).json()


def test_sync_forward_is_byte_exact_both_ways(live_server, app_receiver):
    app_receiver.status = 201
    app_receiver.headers = [("X-App", "yes"), ("Set-Cookie", "a=1"), ("Content-Type", "x/y")]
    app_receiver.body = bytes(range(256))  # not UTF-8
    b = live_server.create_bin(forward={"url": app_receiver.url + "/app", "mode": "sync"})
    body = bytes(range(255, -1, -1)) * 3
    response = requests.put(
        b["url"] + "/hooks/stripe?x=1&y=%20",
        data=body,
        headers={"X-Custom": "v", "Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert response.status_code == 201
    assert response.content == bytes(range(256))
    assert response.headers["X-App"] == "yes"
    assert response.headers["Set-Cookie"] == "a=1"
    assert response.headers["Content-Type"] == "x/y"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["X-Content-Type-Options"] == "nosniff"

    [seen] = app_receiver.seen
    assert seen.method == "PUT"
    assert seen.path == "/app/hooks/stripe?x=1&y=%20"
    assert seen.body == body
    sent = dict(seen.headers)
    assert sent["X-Custom"] == "v"
    assert sent["Content-Type"] == "application/octet-stream"
    assert sent["X-Hooklab-Hops"] == "1"
    assert sent["Host"] == app_receiver.url.split("//")[1]
    assert "Connection" not in sent or sent["Connection"] == "keep-alive"

    record = captured(live_server, b["id"], response.headers["X-Hooklab-Request-Id"])
    forward = record["forward"]
    assert forward["url"] == app_receiver.url + "/app/hooks/stripe?x=1&y=%20"
    assert forward["status_code"] == 201
    assert forward["error"] is None
    assert forward["duration_ms"] >= 0
    assert ["X-App", "yes"] in forward["headers"]
    assert "body_base64" in forward and forward.get("body_text") is None
    assert record["answered_by"] == {"rule": None, "name": "forward", "status": 201}


def test_without_path_the_url_is_used_as_given(live_server, app_receiver):
    b = live_server.create_bin(forward={"url": app_receiver.url + "/in", "with_path": False})
    assert requests.post(b["url"] + "/deep/path?q=1", data=b"x", timeout=10).status_code == 200
    assert app_receiver.seen[0].path == "/in"


def test_app_down_is_502_and_too_slow_is_504(live_server, app_receiver):
    closed = free_port()
    down = live_server.create_bin(forward={"url": f"http://127.0.0.1:{closed}/"})
    response = requests.post(down["url"], data=b"x", timeout=10)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "app_unreachable"
    assert "refused" in response.json()["error"]["message"]
    assert response.headers["Content-Security-Policy"] == "sandbox"
    record = captured(live_server, down["id"], response.headers["X-Hooklab-Request-Id"])
    assert record["forward"]["status_code"] is None
    assert "refused" in record["forward"]["error"]
    assert record["answered_by"]["status"] == 502

    app_receiver.sleep = 2.0
    slow = live_server.create_bin(forward={"url": app_receiver.url, "timeout_s": 0.3})
    response = requests.post(slow["url"], data=b"x", timeout=10)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "app_timeout"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_rule_that_applies_answers_instead_of_the_app(live_server, app_receiver):
    b = live_server.create_bin(
        forward={"url": app_receiver.url}, rules=[{"times": 1, "status": 503}]
    )
    assert requests.post(b["url"], timeout=10).status_code == 503
    assert app_receiver.seen == []
    assert requests.post(b["url"], timeout=10).status_code == 200
    assert len(app_receiver.seen) == 1


def test_async_forward_answers_at_once_and_records_the_app_answer(live_server, app_receiver):
    app_receiver.status = 202
    app_receiver.body = b"queued"
    b = live_server.create_bin(
        forward={"url": app_receiver.url, "mode": "async"}, response={"status": 200}
    )
    response = requests.post(b["url"] + "/x", data=b'{"a":1}', timeout=10)
    assert response.status_code == 200
    rid = response.headers["X-Hooklab-Request-Id"]
    record = wait_for(
        lambda: (
            (captured(live_server, b["id"], rid).get("forward") or {}).get("status_code")
            and captured(live_server, b["id"], rid)
        ),
        what="the async forward",
    )
    assert record["forward"]["status_code"] == 202
    assert record["forward"]["body_text"] == "queued"
    assert record["answered_by"] == {"rule": None, "name": "default", "status": 200}
    assert app_receiver.seen[0].body == b'{"a":1}'
    assert app_receiver.seen[0].path == "/x"


@pytest.mark.parametrize(
    ("forward", "field"),
    [
        ({"url": "ftp://example.com/"}, "forward.url"),
        ({"url": ""}, "forward.url"),
        ({"url": "http://127.0.0.1:1/", "mode": "later"}, "forward.mode"),
        ({"url": "http://127.0.0.1:1/", "timeout_s": 0}, "forward.timeout_s"),
        ({"url": "http://127.0.0.1:1/", "timeout_s": 1000}, "forward.timeout_s"),
        ({"url": "http://127.0.0.1:1/", "with_path": "yes"}, "forward.with_path"),
        ({"url": "http://127.0.0.1:1/", "retries": 3}, "forward.retries"),
        ("http://127.0.0.1:1/", "forward"),
    ],
)
def test_a_bad_forward_is_a_422_naming_the_field(live_server, forward, field):
    response = requests.post(f"{live_server.url}/api/bins", json={"forward": forward}, timeout=5)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("nota url", "is not a URL: it holds spaces or control characters"),
        ("http://example.com/a\tb", "is not a URL: it holds spaces or control characters"),
        ("http://example.com/" + "a" * 2000, "is longer than 2000 characters"),
    ],
)
def test_a_forward_url_message_says_what_is_wrong(client, url, words):
    response = client.post("/api/bins", json={"forward": {"url": url}})
    assert response.status_code == 422
    assert response.json["error"]["field"] == "forward.url"
    assert words in response.json["error"]["message"]


def test_a_forward_to_a_capture_url_of_this_server_is_refused(live_server):
    b = live_server.create_bin()
    port = live_server.url.rsplit(":", 1)[1]
    for url in (b["url"], f"http://localhost:{port}/b/{b['id']}/x"):
        response = requests.patch(
            f"{live_server.url}/api/bins/{b['id']}", json={"forward": {"url": url}}, timeout=5
        )
        assert response.status_code == 422, url
        assert response.json()["error"]["field"] == "forward.url"
    shown = requests.get(f"{live_server.url}/api/bins/{b['id']}", timeout=5).json()
    assert shown["forward"] is None


def test_the_hop_header_stops_a_loop_between_servers(live_server, app_receiver):
    b = live_server.create_bin(forward={"url": app_receiver.url})
    response = requests.post(b["url"], headers={"X-Hooklab-Hops": "5"}, timeout=10)
    assert response.status_code == 508
    assert response.json()["error"]["code"] == "loop_detected"
    assert app_receiver.seen == []
    # One hop fewer still goes through, and the app sees the count go up.
    assert requests.post(b["url"], headers={"X-Hooklab-Hops": "4"}, timeout=10).ok
    assert dict(app_receiver.seen[0].headers)["X-Hooklab-Hops"] == "5"


def test_private_targets_are_refused_when_the_block_is_on(tmp_path):
    from hooklab.app.factory import create_app
    from tests.conftest import make_settings

    client = create_app(make_settings(tmp_path, block_private_targets=True)).test_client()
    response = client.post("/api/bins", json={"forward": {"url": "http://127.0.0.1:9/"}})
    assert response.status_code == 422
    assert response.json["error"]["field"] == "forward.url"
    assert "loopback" in response.json["error"]["message"]


def test_nothing_listening_port_is_really_closed():
    # Guard for the 502 test: free_port() hands out a port nothing listens on.
    port = free_port()
    with socket.socket() as sock, pytest.raises(OSError):
        sock.connect(("127.0.0.1", port))


def test_acceptance_the_sender_retries_through_fail_the_first_3(live_server):
    """Hooklab's own sender aimed at a bin with "Fail the first 3 (503)": three failed
    attempts, then a fourth that succeeds; the bin shows the same four answers."""
    base = live_server.url
    b = live_server.create_bin(rules=[{"name": "Fail the first 3", "times": 3, "status": 503}])
    webhook = requests.post(
        f"{base}/api/webhooks",
        json={"name": "to the bin", "url": b["url"], "event": "payment_received"},
        timeout=5,
    ).json()
    fired = requests.post(f"{base}/api/events/payment_received", json=None, timeout=5).json()
    [delivery] = [d for d in fired["deliveries"] if d["webhook_id"] == webhook["id"]]

    def done():
        found = requests.get(f"{base}/api/deliveries/{delivery['id']}", timeout=5).json()
        return found if found["status"] == "succeeded" else None

    finished = wait_for(done, what="the delivery to succeed")
    attempts = finished["attempts"]
    assert [a["status_code"] for a in attempts] == [503, 503, 503, 200]
    assert [a["ok"] for a in attempts] == [False, False, False, True]
    captured_list = requests.get(f"{base}/api/bins/{b['id']}/requests", timeout=5).json()
    assert [r["answered_by"]["status"] for r in reversed(captured_list)] == [503, 503, 503, 200]
    assert [r["answered_by"]["name"] for r in reversed(captured_list)] == [
        "Fail the first 3",
        "Fail the first 3",
        "Fail the first 3",
        "default",
    ]
    shown = requests.get(f"{base}/api/bins/{b['id']}", timeout=5).json()
    assert shown["rule_counts"] == [3]


def test_async_forwards_of_evicted_and_cleared_requests_still_reach_the_app(tmp_path):
    # The bin keeps 2 requests; the app holds the first forward while 6 more arrive, so 5 of
    # the 7 are evicted (or cleared) before their forward goes: every one still reaches the app.
    hold = threading.Event()
    app = AppReceiver(hold=hold)
    live = start_live_server(make_settings(tmp_path, max_requests_per_bin=2))
    try:
        b = live.create_bin(forward={"url": app.url, "mode": "async"})
        bodies = [f"event-{i}".encode() for i in range(7)]
        assert requests.post(b["url"], data=bodies[0], timeout=5).status_code == 200
        wait_for(lambda: app.seen, what="the first forward to reach the app (and wait)")
        for body in bodies[1:]:
            assert requests.post(b["url"], data=body, timeout=5).status_code == 200
        kept = requests.get(f"{live.url}/api/bins/{b['id']}/requests", timeout=5).json()
        assert len(kept) == 2
        requests.post(f"{live.url}/api/bins/{b['id']}/clear", timeout=5)
        hold.set()
        wait_for(lambda: len(app.seen) == 7, timeout=20, what="all 7 forwards")
        assert sorted(s.body for s in app.seen) == sorted(bodies)
        store = open_store(live.db)
        wait_for(
            lambda: store.conn.execute("SELECT count(*) FROM pending_forwards").fetchone()[0] == 0,
            what="the queue to empty",
        )
    finally:
        hold.set()
        live.kill()
        app.stop()


def test_deleting_a_bin_drops_its_queued_forwards(tmp_path):
    hold = threading.Event()
    app = AppReceiver(hold=hold)
    live = start_live_server(make_settings(tmp_path))
    try:
        b = live.create_bin(forward={"url": app.url, "mode": "async"})
        for i in range(3):
            requests.post(b["url"], data=f"x{i}".encode(), timeout=5)
        # Every sender holds one forward at the app (x0, x1); x2 waits in the queue.
        assert ASYNC_WORKERS == 2
        wait_for(lambda: len(app.seen) == 2, what="each sender to hold a forward")
        assert requests.delete(f"{live.url}/api/bins/{b['id']}", timeout=5).status_code == 204
        store = open_store(live.db)
        # The queue holds nothing of the bin any more: the one waiting is never sent.
        assert store.conn.execute("SELECT count(*) FROM pending_forwards").fetchone()[0] == 0
        hold.set()
        # A later forward of another bin comes after anything still queued (oldest first).
        other = live.create_bin(forward={"url": app.url, "mode": "async"})
        requests.post(other["url"], data=b"later", timeout=5)
        wait_for(lambda: b"later" in {s.body for s in app.seen}, what="the later forward")
        assert sorted(s.body for s in app.seen if s.body != b"later") == [b"x0", b"x1"]
    finally:
        hold.set()
        live.kill()
        app.stop()


def test_forward_senders_give_way_to_a_flood_of_captures(tmp_path):
    store = open_store(str(tmp_path / "pace.db"))
    store.migrate()
    queue = ForwardQueue(store, make_settings(tmp_path))
    captures = store.notifier("captures")
    queue._sample = (queue._sample[0] - RATE_WINDOW_S, captures.version)
    assert not queue.flooded()  # nothing captured over the last window
    queue._sample = (queue._sample[0] - RATE_WINDOW_S, captures.version)
    for _ in range(int(FLOOD_RATE * RATE_WINDOW_S * 4)):
        captures.changed()
    assert queue.flooded()
    # Under a flood the senders take turns, one batch per PACE_S between all of them.
    queue._next_turn = 0.0
    queue._wait_turn()
    first = queue._next_turn
    queue._stop.set()  # the second turn is booked without waiting it out
    queue._wait_turn()
    assert queue._next_turn == pytest.approx(first + PACE_S)


def test_the_cli_shows_what_the_app_answered(live_server, app_receiver):
    app_receiver.status = 202
    app_receiver.body = b"queued \x1b[31m"  # the app's answer is shown escaped, like the request
    b = live_server.create_bin(forward={"url": app_receiver.url, "mode": "sync"})
    requests.post(b["url"], data=b'{"a": 1}', timeout=10)
    down = live_server.create_bin(
        forward={"url": f"http://127.0.0.1:{free_port()}/", "mode": "sync"}
    )
    requests.post(down["url"], data=b"x", timeout=10)
    env = {"HOOKLAB_SERVER": live_server.url, "HOOKLAB_TOKEN": None}

    shown = CliRunner().invoke(cli, ["bin", "request", b["id"], "latest"], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"Forwarded to {app_receiver.url}: your app answered 202 in " in shown.stdout
    assert "queued \\x1b[31m" in shown.stdout and "\x1b" not in shown.stdout
    failed = CliRunner().invoke(cli, ["bin", "request", down["id"], "latest"], env=env)
    assert "Forwarded to http://127.0.0.1:" in failed.stdout and ": failed: " in failed.stdout
