"""Every rule kind against the real `hooklab serve` (gunicorn), the safety headers of every
capture answer, the cap on waiting answers, and async forwards across a kill -9."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import simple_websocket

from hooklab.app.factory import open_store
from tests.app_receiver import AppReceiver, wait_for
from tests.conftest import SHORT_RETRIES
from tests.served import start

SAFETY = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}


def make_bin(server, **fields) -> dict:
    response = requests.post(f"{server.url}/api/bins", json=fields, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()


def listed(server, bin_id: str) -> list[dict]:
    url = f"{server.url}/api/bins/{bin_id}/requests?limit=1000"
    return requests.get(url, timeout=5).json()


def assert_safe(response: requests.Response) -> None:
    for name, value in SAFETY.items():
        assert response.headers.get(name) == value, (response.status_code, name)


def test_status_headers_body_times_and_percent(served):
    b = make_bin(
        served,
        rules_seed=1,
        rules=[
            {"name": "fail", "times": 3, "status": 503},
            {"match": {"method": "GET"}, "status": 410, "body": "gone"},
            {"percent": 50, "status": 500, "headers": {"X-Flaky": "1"}},
        ],
    )
    statuses = [requests.post(b["url"], data=b"x", timeout=5).status_code for _ in range(3)]
    assert statuses == [503, 503, 503]
    gone = requests.get(b["url"] + "/any", timeout=5)
    assert (gone.status_code, gone.text) == (410, "gone")
    assert_safe(gone)
    flaky = [requests.post(b["url"], timeout=5) for _ in range(40)]
    answered = [r.status_code for r in flaky]
    assert set(answered) == {200, 500}
    assert all(r.headers.get("X-Flaky") == "1" for r in flaky if r.status_code == 500)
    # The same seed after a reset gives the same answers.
    requests.post(f"{served.url}/api/bins/{b['id']}/rules/reset", timeout=5)
    for _ in range(3):
        requests.post(b["url"], timeout=5)
    requests.get(b["url"], timeout=5)
    again = [requests.post(b["url"], timeout=5).status_code for _ in range(40)]
    assert again == answered
    shown = requests.get(f"{served.url}/api/bins/{b['id']}", timeout=5).json()
    assert shown["rule_counts"] == [3, 1, answered.count(500)]


def test_a_delay_is_at_least_what_is_configured(served):
    b = make_bin(served, rules=[{"delay_ms": 400}, {"delay_ms": 200, "delay_ms_max": 300}])
    started = time.monotonic()
    assert requests.post(b["url"], timeout=10).status_code == 200
    assert time.monotonic() - started >= 0.4
    b2 = make_bin(served, rules=[{"delay_ms": 200, "delay_ms_max": 300}])
    started = time.monotonic()
    assert requests.post(b2["url"], timeout=10).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_drop_closes_the_connection_with_no_answer(served):
    b = make_bin(served, rules=[{"name": "hang up", "drop": True, "times": 1}])
    host, port = "127.0.0.1", served.port
    path = b["url"].split(str(port), 1)[1]
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(
            f"POST {path}/x HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 2\r\n\r\nhi".encode()
        )
        assert sock.recv(65536) == b""  # closed, not a byte of an answer
    assert requests.post(b["url"], timeout=5).status_code == 200  # spent after one
    answered = [r["answered_by"] for r in reversed(listed(served, b["id"]))]
    assert answered == [
        {"rule": 0, "name": "hang up", "status": None},
        {"rule": None, "name": "default", "status": 200},
    ]
    # The server shrugged it off: no error in its log.
    assert "Traceback" not in served.log() and "Error" not in served.log()


def test_drop_with_requests_is_a_connection_error(served):
    b = make_bin(served, rules=[{"drop": True}])
    with pytest.raises(requests.ConnectionError):
        requests.post(b["url"], data=b"x", timeout=5)
    assert requests.get(f"{served.url}/api/health", timeout=5).ok


def test_every_capture_answer_carries_the_safety_headers(served):
    b = make_bin(
        served,
        response={
            "status": 200,
            "body": "<script>alert(1)</script>",
            "headers": {"Content-Type": "text/html", "Content-Security-Policy": "default-src *"},
        },
    )
    ok = requests.get(b["url"], timeout=5)
    assert_safe(ok)
    assert ok.headers["Content-Security-Policy"] == "sandbox"  # the bin's own is replaced
    assert_safe(requests.get(f"{served.url}/b/{'a' * 26}", timeout=5))  # 404
    assert_safe(requests.get(f"{served.url}/b/nope", timeout=5))  # 404, not a bin id
    big = requests.post(b["url"], data=b"x" * (10 * 1024 * 1024 + 1), timeout=30)
    assert big.status_code == 413
    assert_safe(big)
    bad = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    with bad:
        path = b["url"].split(str(served.port), 1)[1]
        bad.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".encode()
        )
        answer = bad.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 400")
    assert "Content-Security-Policy: sandbox" in answer


def test_waiting_answers_are_capped_and_the_server_keeps_answering(tmp_path):
    server = start(tmp_path, "--db", str(tmp_path / "cap.db"), "--threads", "64", env=SHORT_RETRIES)
    try:
        b = make_bin(server, response={"delay_ms": 6000})
        results: list[requests.Response] = []
        lock = threading.Lock()

        def capture(i: int) -> None:
            response = requests.post(b["url"], data=str(i).encode(), timeout=30)
            with lock:
                results.append(response)

        pool = ThreadPoolExecutor(200)
        futures = [pool.submit(capture, i) for i in range(200)]
        # Every capture is stored before it waits: all 200 show up while 32 still wait.
        wait_for(lambda: len(listed(server, b["id"])) == 200, what="200 captures stored")
        assert requests.get(f"{server.url}/api/health", timeout=5).ok
        assert requests.get(f"{server.url}/api/bins/{b['id']}", timeout=5).ok
        assert requests.get(f"{server.url}/", timeout=5).ok
        ws = simple_websocket.Client.connect(f"ws://127.0.0.1:{server.port}/ws/bins/{b['id']}")
        try:
            frame = json.loads(ws.receive(timeout=5))
            assert frame["type"] == "request"
        finally:
            ws.close()
        # All of that happened while the delayed answers were still waiting.
        waiting = sum(not f.done() for f in futures)
        assert waiting >= 32
        for future in futures:
            future.result()
        pool.shutdown()
        statuses = sorted(r.status_code for r in results)
        assert statuses.count(200) == 32
        assert statuses.count(503) == 168
        busy = [r for r in results if r.status_code == 503]
        assert all(r.headers["Retry-After"] == "1" for r in busy)
        assert all(r.json()["error"]["code"] == "too_many_waiting" for r in busy)
        assert_safe(busy[0])
        flags = [r["answered_by"] for r in listed(server, b["id"])]
        assert sum(1 for a in flags if a.get("capped")) == 168
        assert all(a["status"] == 503 for a in flags if a.get("capped"))
    finally:
        server.stop()


def test_async_forwards_survive_a_kill_9(tmp_path):
    hold = threading.Event()
    app = AppReceiver(hold=hold)
    db = str(tmp_path / "forward.db")
    server = start(tmp_path, "--db", db, env=SHORT_RETRIES)
    try:
        b = make_bin(server, forward={"url": app.url + "/hooks", "mode": "async", "timeout_s": 60})
        bodies = [f"event-{i}".encode() for i in range(20)]
        for body in bodies:
            assert requests.post(b["url"], data=body, timeout=5).status_code == 200
        # The app holds the first forwards unanswered: they are in flight when the server dies.
        wait_for(lambda: app.seen, what="the first forward to reach the app")
        server.kill()
        store = open_store(db)
        pending = store.conn.execute("SELECT count(*) FROM pending_forwards").fetchone()[0]
        assert pending == 20  # none was answered, so none was taken off the queue
        hold.set()
        server = start(tmp_path, "--db", db, env=SHORT_RETRIES)

        def all_forwarded():
            found = listed(server, b["id"])
            done = [r for r in found if r.get("answered_by")]
            ids = [r["id"] for r in done]
            records = [
                requests.get(f"{server.url}/api/bins/{b['id']}/requests/{i}", timeout=5).json()
                for i in ids
            ]
            return all((r["forward"] or {}).get("status_code") == 200 for r in records) and records

        records = wait_for(all_forwarded, timeout=30, what="every forward after the restart")
        assert len(records) == 20
        assert {s.body for s in app.seen} == set(bodies)  # every one reached the app
        assert store.conn.execute("SELECT count(*) FROM pending_forwards").fetchone()[0] == 0
    finally:
        server.stop()
        hold.set()
        app.stop()
