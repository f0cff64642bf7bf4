"""A stop (SIGTERM: systemd, docker stop) while deliveries are in flight leaves nothing as a
kill -9 would: attempts under way finish and are recorded, deliveries claimed but not sent
yet are handed back (no claim to lapse, nothing sent twice), for `serve` and for `worker`."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess

import requests

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
