"""kill -9 in the middle of delivering 1,000 fired events, then a restart on the same database.

What must hold afterwards: every fired event reached the receiver at least once, a repeat
carries the same webhook-id as the first try, no delivery or attempt stays claimed forever,
and every capture answered 2xx before the kill is still there, byte for byte.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from tests.served import start

EVENTS = 1_000
# Short schedule and claim timeout, so that the restarted server picks up the deliveries the
# killed one had claimed within seconds (the default claim timeout is 2 minutes).
ENV = {
    "HOOKLAB_RETRY_SCHEDULE": "0.2,0.4,0.8,1.6",
    "HOOKLAB_RETRY_JITTER": "0",
    "HOOKLAB_CLAIM_TIMEOUT_S": "2",
}


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every webhook-id it is sent."""

    def __init__(self) -> None:
        self.delay_s = 0.05
        # Once `hold_after` deliveries have arrived, the next ones are held (their attempts stay
        # in flight) until `released`: the kill lands in the middle of the deliveries however
        # slowly this test's threads are scheduled. `reached` tells the test when.
        self.hold_after: int | None = None
        self.reached = threading.Event()
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.by_delivery: dict[str, list[str]] = defaultdict(list)
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(receiver.delay_s)
                with receiver.lock:
                    hold = (
                        receiver.hold_after is not None and receiver.received >= receiver.hold_after
                    )
                if hold:
                    receiver.released.wait(60)
                with receiver.lock:
                    receiver.received += 1
                    receiver.by_delivery[self.headers["X-Hooklab-Delivery"]].append(
                        self.headers["webhook-id"]
                    )
                    if receiver.hold_after is not None and receiver.received >= receiver.hold_after:
                        receiver.reached.set()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # connections cut by the kill reset here; that is the point of the test

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def message_ids(self) -> set[str]:
        with self.lock:
            return {i for ids in self.by_delivery.values() for i in ids}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def query(db, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def test_kill_9_during_delivery_loses_nothing(tmp_path):
    db = tmp_path / "crash.db"
    receiver = Receiver()
    served = start(tmp_path, "--db", str(db), env=ENV)
    restarted = None
    try:
        api = f"{served.url}/api"
        webhook = requests.post(
            f"{api}/webhooks",
            json={"name": "Crash", "url": receiver.url, "event": "*", "timeout_s": 5},
            timeout=10,
        ).json()
        slug = requests.get(f"{api}/events", timeout=10).json()[0]["slug"]
        bin_id = requests.post(f"{api}/bins", json={"name": "crash"}, timeout=10).json()["id"]

        # Captures keep arriving until the kill; those answered 2xx must survive it.
        captured: dict[int, str] = {}
        stop_capturing = threading.Event()

        def capture_until_killed() -> None:
            with requests.Session() as session:
                n = 0
                while not stop_capturing.is_set():
                    body = f"capture {n} ".encode() * (n % 50 + 1)
                    n += 1
                    try:
                        response = session.post(f"{served.url}/b/{bin_id}", data=body, timeout=5)
                    except requests.RequestException:
                        return  # the server is gone
                    if 200 <= response.status_code < 300:
                        request_id = int(response.headers["X-Hooklab-Request-Id"])
                        captured[request_id] = hashlib.sha256(body).hexdigest()

        def fire(n: int) -> int:
            response = requests.post(f"{api}/events/{slug}", json={"n": n}, timeout=30)
            assert response.status_code == 202, response.text
            return response.json()["event_id"]

        capturer = threading.Thread(target=capture_until_killed)
        capturer.start()
        receiver.hold_after = 100
        with ThreadPoolExecutor(8) as pool:
            event_ids = list(pool.map(fire, range(EVENTS)))
        assert len(set(event_ids)) == EVENTS

        # Kill once the deliveries are well under way, but far from done: 100 arrived, the
        # next ones held in flight by the receiver.
        assert receiver.reached.wait(60), "the first 100 deliveries did not arrive"
        served.kill()
        stop_capturing.set()
        capturer.join(10)
        at_kill = len(receiver.message_ids())
        assert 0 < at_kill < EVENTS, f"{at_kill} delivered when the kill came"
        claimed_at_kill = query(
            db, "SELECT count(*) FROM deliveries WHERE claim_token IS NOT NULL"
        )[0][0]

        receiver.hold_after = None
        receiver.released.set()  # the held requests were sent: they count as received
        receiver.delay_s = 0.002
        restarted = start(tmp_path, "--db", str(db), env=ENV)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            pending = query(db, "SELECT count(*) FROM deliveries WHERE status != 'succeeded'")
            if pending[0][0] == 0:
                break
            time.sleep(0.2)

        deliveries = query(
            db,
            "SELECT id, message_id, status, claim_token FROM deliveries WHERE webhook_id = ?",
            webhook["id"],
        )
        assert len(deliveries) == EVENTS
        not_done = [d for d in deliveries if d[2] != "succeeded" or d[3] is not None]
        assert not not_done, f"{len(not_done)} deliveries not finished, e.g. {not_done[:3]}"
        unfinished_attempts = query(db, "SELECT count(*) FROM attempts WHERE finished_at IS NULL")
        assert unfinished_attempts[0][0] == 0

        # Every event reached the receiver, and a repeat carried the same webhook-id.
        assert receiver.message_ids() == {d[1] for d in deliveries}
        message_of = {str(d[0]): d[1] for d in deliveries}
        for delivery_id, ids in receiver.by_delivery.items():
            assert set(ids) == {message_of[delivery_id]}, (delivery_id, ids)
        repeats = receiver.received - EVENTS

        # Every capture answered 2xx before the kill is there, byte for byte.
        assert captured, "no capture was answered before the kill"
        with requests.Session() as session:
            for request_id, digest in captured.items():
                raw = session.get(
                    f"{restarted.url}/api/bins/{bin_id}/requests/{request_id}/raw", timeout=10
                )
                assert raw.status_code == 200, (request_id, raw.text)
                assert hashlib.sha256(raw.content).hexdigest() == digest
        print(
            f"\ncrash: {EVENTS} events fired, {at_kill} delivered at the kill, "
            f"{claimed_at_kill} claimed at the kill, {repeats} repeated after the restart, "
            f"{len(captured)} captures kept"
        )
    finally:
        if restarted is not None:
            restarted.stop()
        served.stop()
        receiver.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert "Traceback" not in restarted.log(), restarted.log()
