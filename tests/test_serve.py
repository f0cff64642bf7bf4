"""`hooklab serve` as a user runs it: gunicorn, one process, many threads, websockets included."""

from __future__ import annotations

import gc
import json
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import requests
import simple_websocket

from hooklab.app.factory import open_store
from hooklab.bin_server.bins import create_bin
from tests.served import start


def make_bin(tmp_path) -> str:
    """A bin written straight into the served database (tmp_path/served.db)."""
    return create_bin(open_store(tmp_path / "served.db"), {"name": "served"})["id"]


def test_serve_answers_and_prints_where(served):
    assert requests.get(f"{served.url}/api/health", timeout=5).json()["ok"] is True
    assert f"Hooklab on {served.url}/" in served.log()


def test_capture_and_live_stream_under_gunicorn(served, tmp_path):
    bin_id = make_bin(tmp_path)
    port = served.url.rsplit(":", 1)[1]
    ws = simple_websocket.Client.connect(f"ws://127.0.0.1:{port}/ws/bins/{bin_id}")
    try:
        response = requests.post(f"{served.url}/b/{bin_id}/x", data=b"\x00\x01", timeout=5)
        assert response.status_code == 200
        frame = json.loads(ws.receive(timeout=5))
        assert frame["request"]["subpath"] == "/x"
        assert frame["request"]["body_size"] == 2
    finally:
        with suppress(simple_websocket.ConnectionClosed, OSError):
            ws.close()


def test_many_open_websockets_do_not_starve_capture(served, tmp_path):
    """Every open websocket holds a server thread; the default thread count leaves room."""
    bin_id = make_bin(tmp_path)
    port = served.url.rsplit(":", 1)[1]
    sockets = [
        simple_websocket.Client.connect(f"ws://127.0.0.1:{port}/ws/bins/{bin_id}")
        for _ in range(20)
    ]
    try:
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(
                    lambda n: requests.post(f"{served.url}/b/{bin_id}", data=str(n), timeout=10),
                    range(40),
                )
            )
        assert [r.status_code for r in codes] == [200] * 40
        for ws in sockets:
            ids = {json.loads(ws.receive(timeout=10))["request"]["id"] for _ in range(40)}
            assert len(ids) == 40
    finally:
        for ws in sockets:
            with suppress(simple_websocket.ConnectionClosed, OSError):
                ws.close()


def test_sigterm_stops_the_server_cleanly(served):
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(10) == 0


def test_unusable_database_is_one_clear_line(tmp_path):
    hooklab = str(Path(sys.executable).with_name("hooklab"))
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("this is not a database " * 100)
    result = subprocess.run(
        [hooklab, "serve", "--db", str(not_a_db), "--port", "1"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert str(not_a_db) in result.stderr


def test_a_second_serve_on_the_same_database_is_warned(tmp_path):
    # Two servers on one database keep separate rule counts and both deliver: a mistake more
    # often than not (a forgotten server on another port), so the second one says so.
    db = tmp_path / "shared.db"
    for folder in ("one", "two", "three"):
        (tmp_path / folder).mkdir()
    first = start(tmp_path / "one", "--db", str(db))
    try:
        second = start(tmp_path / "two", "--db", str(db))
        try:
            assert requests.get(f"{second.url}/api/health", timeout=5).ok  # it still serves
            assert f"another `hooklab serve` is using {db}" in second.log()
        finally:
            second.stop()
        assert "another `hooklab serve`" not in first.log()
    finally:
        first.stop()
    third = start(tmp_path / "three", "--db", str(db))  # the first one is gone: no warning
    try:
        assert "another `hooklab serve`" not in third.log()
    finally:
        third.stop()


def test_the_serving_process_leaves_its_start_out_of_garbage_collections(tmp_path, monkeypatch):
    """Right after the start, the serving process freezes what the start made (app/server.py):
    a full collection then walks only what came later, not the ~50,000 objects of the imports
    (40-70 ms in which no thread runs: they showed in the fixture's benchmark)."""
    from hooklab.app import server
    from hooklab.shared.settings import Settings

    seen = {}

    def gunicorn(load, config, post_worker_init, worker_exit):  # what gunicorn's worker calls
        load()
        assert gc.get_freeze_count() == 0
        post_worker_init(None)
        seen["frozen"] = gc.get_freeze_count()
        worker_exit(None, None)

    monkeypatch.setattr(server, "run_gunicorn", gunicorn)
    try:
        server.serve(Settings({"db": str(tmp_path / "frozen.db"), "port": 1}))
    finally:
        gc.unfreeze()
    assert seen["frozen"] > 10_000
