"""A stop (SIGTERM: systemd, docker stop) while deliveries are in flight leaves nothing as a
kill -9 would: attempts under way finish and are recorded, deliveries claimed but not sent
yet are handed back (no claim to lapse, nothing sent twice), for `serve` and for `worker`."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import requests
import simple_websocket

from hooklab.app.slow_clients import ReadDeadlineThreads
from hooklab.client.http import LiveSocket
from tests.app_receiver import AppReceiver
from tests.served import HOOKLAB, start
from tests.waiting import wait_for

EVENTS = 40
ENV = {"HOOKLAB_RETRY_JITTER": "0"}


def left_behind(db) -> tuple[int, int]:
    """(deliveries still claimed, attempts never finished) in the database at `db`."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        claimed = conn.execute(
            "SELECT count(*) FROM deliveries WHERE claim_token IS NOT NULL"
        ).fetchone()[0]
        unfinished = conn.execute(
            "SELECT count(*) FROM attempts WHERE finished_at IS NULL"
        ).fetchone()[0]
    return claimed, unfinished


def waiting(served) -> int:
    """How many connections wait on the server now (long polls, live pages, delayed answers)."""
    return requests.get(f"{served.url}/api/health", timeout=5).json()["waiting"]["connections"]


def open_waiters(pool: ThreadPoolExecutor, served, bin_id: str):
    """A long poll (30 s) and a live page on a bin: (the poll's future, the live socket)."""
    poll = pool.submit(
        requests.get, f"{served.url}/api/bins/{bin_id}/requests/wait?timeout=30", timeout=40
    )
    return poll, LiveSocket.connect(f"{served.ws_url}/ws/bins/{bin_id}")


def close_code(live, within_s: float = 10) -> int:
    """The code `live` is closed with, its frames (a replay's, if any) read and skipped."""
    deadline = time.monotonic() + within_s
    with pytest.raises(simple_websocket.ConnectionClosed) as closed:
        while time.monotonic() < deadline:
            live.receive(timeout=1)
    return closed.value.reason


def fire_many(base: str, receiver_url: str) -> None:
    webhook = {"name": "Slow", "url": receiver_url, "event": "*", "timeout_s": 5}
    assert requests.post(f"{base}/api/webhooks", json=webhook, timeout=10).status_code == 201
    slug = requests.get(f"{base}/api/events", timeout=10).json()[0]["slug"]
    for n in range(EVENTS):
        response = requests.post(f"{base}/api/events/{slug}", json={"n": n}, timeout=10)
        assert response.status_code == 202


def test_sigterm_to_serve_finishes_or_hands_back_every_delivery(tmp_path):
    receiver = AppReceiver(sleep=1.0)  # each attempt takes a second: many are in flight
    db = tmp_path / "term.db"
    served = start(tmp_path, "--db", str(db), env=ENV)
    try:
        fire_many(served.url, receiver.url)
        wait_for(lambda: len(receiver.seen) >= 8, what="attempts in flight")
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(20) == 0
    finally:
        if served.process.poll() is None:
            served.kill()
        receiver.stop()
    assert left_behind(db) == (0, 0)


def test_sigterm_to_the_worker_finishes_or_hands_back_every_delivery(tmp_path):
    receiver = AppReceiver(sleep=1.0)
    db = tmp_path / "worker.db"
    served = start(tmp_path, "--db", str(db), "--delivery-workers", "0", env=ENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")} | ENV
    worker = subprocess.Popen(
        [HOOKLAB, "worker", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert "Hooklab delivery workers" in worker.stdout.readline()
        fire_many(served.url, receiver.url)
        wait_for(lambda: len(receiver.seen) >= 8, what="attempts in flight")
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=20)
        assert worker.returncode == 0, err
        assert "Traceback" not in err
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
        served.kill()
        receiver.stop()
    assert left_behind(db) == (0, 0)


def test_sigterm_answers_what_waits_before_the_server_ends(tmp_path):
    # A delayed answer (8 s), a long poll (30 s) and a live page outlast gunicorn's graceful
    # time: the stop ends their waits, so each gets its answer instead of a dropped connection
    # (the live page a close "going away", 1001, after which the inspector tries again).
    served = start(tmp_path, "--db", str(tmp_path / "waits.db"))
    try:
        delayed = requests.post(
            f"{served.url}/api/bins", json={"response": {"status": 201, "delay_ms": 8000}},
            timeout=10,
        ).json()  # fmt: skip
        polled = requests.post(f"{served.url}/api/bins", json={}, timeout=10).json()
        with ThreadPoolExecutor(2) as pool:
            answer = pool.submit(requests.post, delayed["url"], data=b"kept", timeout=30)
            poll, live = open_waiters(pool, served, polled["id"])
            wait_for(lambda: waiting(served) == 3, what="all three waiting")
            started = time.monotonic()
            served.process.send_signal(signal.SIGTERM)
            assert answer.result().status_code == 201
            assert poll.result().status_code == 204
            assert close_code(live) == 1001
            assert time.monotonic() - started < 5  # not the 8 s and 30 s they asked for
        assert served.process.wait(20) == 0
    finally:
        if served.process.poll() is None:
            served.kill()
    with sqlite3.connect(tmp_path / "waits.db") as conn:
        assert conn.execute("SELECT body FROM captured_requests").fetchall() == [(b"kept",)]


def test_a_quick_stop_that_lands_inside_the_thread_pools_submit_does_not_hang():
    """Ctrl-C (SIGINT) reaches the serving process as its main thread hands a connection to the
    thread pool, e.g. because a client closed its connection just then. gthread's handler shut
    the pool down inside the signal handler, waiting for the lock `submit` held underneath it:
    the process hung until killed 10 s later, and the kill skipped handing back deliveries."""
    pool = ThreadPoolExecutor(1)
    worker = SimpleNamespace(
        tpool=pool, alive=True, on_stop=None, cfg=SimpleNamespace(worker_int=lambda w: None)
    )
    exits = []

    def signal_inside_submit() -> None:
        with pool._shutdown_lock:  # what `submit` holds while it queues the work
            try:
                ReadDeadlineThreads.handle_quit(worker, signal.SIGINT, None)
            except SystemExit as stop:
                exits.append(stop.code)

    handler = threading.Thread(target=signal_inside_submit, daemon=True)
    handler.start()
    handler.join(10)
    assert exits == [0], "the quick stop's handler waited for the pool's lock"
    assert worker.alive is False
    pool.shutdown()


def test_the_second_quick_stop_signal_does_not_cut_the_first_ones_exit_short():
    """Ctrl-C reaches the serving process twice: SIGINT from the terminal, then gunicorn's
    SIGQUIT. The second must not raise SystemExit again inside the first one's clean-up."""
    worker = SimpleNamespace(
        alive=True, on_stop=None, cfg=SimpleNamespace(worker_int=lambda w: None)
    )
    with pytest.raises(SystemExit):
        ReadDeadlineThreads.handle_quit(worker, signal.SIGINT, None)
    assert ReadDeadlineThreads.handle_quit(worker, signal.SIGQUIT, None) is None


def test_ctrl_c_with_a_live_page_and_a_long_poll_open_ends_at_once(tmp_path):
    # Ctrl-C reaches the whole process group. An open live page (or `bin tail`) held a pool
    # thread in its websocket loop, and the serving process waited for it until gunicorn
    # killed it 10 s later, skipping the hand-back of claimed deliveries.
    served = start(tmp_path, "--db", str(tmp_path / "ctrl-c.db"))
    try:
        bin_row = requests.post(f"{served.url}/api/bins", json={}, timeout=10).json()
        with ThreadPoolExecutor(1) as pool:
            poll, live = open_waiters(pool, served, bin_row["id"])
            wait_for(lambda: waiting(served) == 2, what="both waiting")
            served.signal(signal.SIGINT)
            assert poll.result().status_code == 204
            assert close_code(live) == 1001
        # Well before gunicorn's kill at 10 s: the serving process ended by itself.
        assert served.process.wait(8) == 0
    finally:
        if served.process.poll() is None:
            served.kill()
    assert "Traceback" not in served.log()
