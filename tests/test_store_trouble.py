"""When the store cannot take a write: a full disk, a bin deleted by another server."""

from __future__ import annotations

import sqlite3

import pytest

from hooklab.app.factory import create_app
from hooklab.bin_server.capture import CaptureMiddleware
from tests.conftest import make_settings


def capture_path(app) -> CaptureMiddleware:
    wsgi = app.wsgi_app
    while not isinstance(wsgi, CaptureMiddleware):
        wsgi = getattr(wsgi, "app", None) or wsgi.next
    return wsgi


@pytest.fixture
def app(tmp_path):
    return create_app(make_settings(tmp_path))


def test_a_full_disk_is_a_clear_507_for_captures_and_the_api(app, caplog):
    # It was a 500 "internal_error" with a traceback for every capture.
    client = app.test_client()
    bin_id = client.post("/api/bins", json={}).get_json()["id"]
    assert client.post(f"/b/{bin_id}", data=b"first").status_code == 200
    # SQLite says "database or disk is full" once a connection's page count is reached.
    writer = capture_path(app).writer._connection()
    pages = writer.execute("PRAGMA page_count").fetchone()[0]
    writer.execute(f"PRAGMA max_page_count = {pages}")
    full = client.post(f"/b/{bin_id}", data=b"x" * 200_000)
    assert full.status_code == 507
    assert full.get_json()["error"]["code"] == "disk_full"
    assert "disk holding the database is full" in full.get_json()["error"]["message"]
    conn = app.extensions["hooklab.store"].conn
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    api = client.post("/api/bins", json={"name": "x" * 150, "response": {"body": "y" * 900_000}})
    assert api.status_code == 507, api.get_json()
    assert api.get_json()["error"]["code"] == "disk_full"
    assert "Traceback" not in caplog.text
    assert [r.exc_info for r in caplog.records if r.exc_info] == []
    # What was answered before is kept.
    assert len(client.get(f"/api/bins/{bin_id}/requests").get_json()) == 1


def test_a_capture_to_a_bin_another_server_just_deleted_is_a_404(app, tmp_path):
    # Two servers on one database: the bin cache still held the deleted bin, so the check
    # after the failed insert found it, and the capture was a 500.
    client = app.test_client()
    bin_id = client.post("/api/bins", json={}).get_json()["id"]
    assert client.post(f"/b/{bin_id}", data=b"1").status_code == 200  # now cached
    other = sqlite3.connect(app.config["HOOKLAB"].db)
    other.execute("PRAGMA foreign_keys = ON")
    other.execute("DELETE FROM bins WHERE id = ?", (bin_id,))
    other.commit()
    other.close()
    gone = client.post(f"/b/{bin_id}", data=b"2")
    assert gone.status_code == 404
    assert gone.get_json()["error"]["code"] == "bin_not_found"
