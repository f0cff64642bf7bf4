"""app/launcher.py: how tests, the fixture and the demo start the server of `hooklab serve`."""

from __future__ import annotations

import os
import subprocess
import sys

import requests

from hooklab.app.launcher import start_server
from tests.waiting import wait_for

START_AND_HANG = (
    "from hooklab.app.launcher import start_server; import sys, time; "
    "server = start_server(folder=sys.argv[1]); print(server.process.pid, flush=True); "
    "time.sleep(120)"
)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_child_is_gunicorn_with_the_given_settings():
    server = start_server(retry_schedule="0.5,2", allow_host="hooks.test")
    try:
        assert f"Hooklab on {server.url}/" in server.log()
        shown = requests.get(f"{server.url}/api/settings", timeout=5).json()["settings"]
        assert shown["retry_schedule"]["value"] == [0.5, 2.0]
        assert shown["allow_host"]["value"] == ["hooks.test"]
        assert shown["port"]["value"] == server.port
        health = requests.get(f"{server.url}/api/health", timeout=5)
        assert health.headers["Server"] == "gunicorn"  # what `hooklab serve` runs, not Werkzeug
    finally:
        server.stop()
    assert server.process.returncode is not None
    assert not server.folder.exists()  # the temporary folder and database went with it


def test_a_server_does_not_outlive_the_process_that_started_it(tmp_path):
    # A test run killed half-way (CI's time limit, Ctrl-C twice) leaves no server behind.
    parent = subprocess.Popen(
        [sys.executable, "-c", START_AND_HANG, str(tmp_path)], stdout=subprocess.PIPE
    )
    child = int(parent.stdout.readline())
    parent.stdout.close()
    assert not gone(child)
    parent.kill()
    parent.wait(10)
    wait_for(lambda: gone(child), timeout=15, what="the orphaned server to stop")
