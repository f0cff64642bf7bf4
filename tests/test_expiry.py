"""Bins never expire unless a TTL is set; then idle bins (and what they captured) are deleted."""

from __future__ import annotations

import time

import requests

from hooklab.app.factory import create_app
from hooklab.bin_server import bins
from hooklab.bin_server.expiry import expire_idle_bins, start_expiry
from tests.conftest import make_settings, start_live_server


def test_only_bins_idle_past_the_ttl_are_deleted(app):
    store = app.extensions["hooklab.store"]
    idle = bins.create_bin(store, {"name": "idle"})
    busy = bins.create_bin(store, {"name": "busy"})
    client = app.test_client()
    client.post(f"/b/{idle['id']}", data="old")
    later = bins.get_bin_row(store, idle["id"])["created_at"] + 60_000
    # busy captured something "now" (60 s after both were created); idle did not.
    store.conn.execute(
        "UPDATE captured_requests SET received_at = ? WHERE bin_id = ?",
        (later - 50_000, idle["id"]),
    )
    store.conn.commit()
    client.post(f"/b/{busy['id']}", data="recent")
    store.conn.execute(
        "UPDATE captured_requests SET received_at = ? WHERE bin_id = ?", (later, busy["id"])
    )
    store.conn.commit()

    assert expire_idle_bins(store, ttl_s=30, now=later) == [idle["id"]]
    assert bins.get_bin_row(store, idle["id"]) is None
    assert bins.get_bin_row(store, busy["id"]) is not None
    left = store.conn.execute("SELECT count(*) FROM captured_requests").fetchone()[0]
    assert left == 1
    assert client.post(f"/b/{idle['id']}").status_code == 404


def test_no_ttl_means_no_expiry_thread(app):
    assert app.config["HOOKLAB"].bin_ttl_s == 0
    assert start_expiry(app) is None


def test_expiry_thread_deletes_idle_bins_in_a_running_server(tmp_path):
    app = create_app(make_settings(tmp_path, bin_ttl_s=1))
    store = app.extensions["hooklab.store"]
    doomed = bins.create_bin(store, {"name": "doomed"})
    live = start_live_server(app.config["HOOKLAB"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and bins.get_bin_row(store, doomed["id"]):
            time.sleep(0.1)
        assert bins.get_bin_row(store, doomed["id"]) is None
        assert requests.post(f"{live.url}/b/{doomed['id']}", timeout=5).status_code == 404
    finally:
        live.stop()
