"""The pytest fixture's fixes from an outside review: each test failed on the code before its fix.

Most run a small generated project in a pytest subprocess, as a user's CI would.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

HOSTILE = "\x1b[31m\x9b31m\u202etxt.exe"
RAW = ("\x1b", "\x9b", "\u202e")


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m pytest -q` in `folder`, with this interpreter, without this run's settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "HOOKLAB_")) and k != "PYTHONPATH"
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def write_project(folder: Path, settings: dict | None = None, tests: str | None = None) -> None:
    """A project of one test that uses the fixture, with `hooklab_settings` when given."""
    if settings is not None:
        (folder / "conftest.py").write_text(
            "import pytest\n\n\n"
            '@pytest.fixture(scope="session")\n'
            "def hooklab_settings():\n"
            f"    return {settings!r}\n"
        )
    (folder / "test_it.py").write_text(
        tests or "def test_it(hooklab):\n    hooklab.create_bin(name='one')\n"
    )


# -- 1. every delivery, not the newest 50 -----------------------------------------------------


def test_deliveries_and_wait_for_deliveries_see_more_than_one_page(hooklab):
    webhook = hooklab.add_webhook(hooklab.create_bin(), event="payment_received")
    for _ in range(60):
        hooklab.fire("payment_received")
    found = hooklab.wait_for_deliveries(webhook, count=60, timeout=30)
    assert len(found) == 60
    ids = [d["id"] for d in hooklab.deliveries(webhook)]
    assert len(ids) == 60 and ids == sorted(ids, reverse=True)  # newest first, each once
    assert [d["id"] for d in hooklab.client.deliveries(webhook["id"], limit=55)] == ids[:55]
    with pytest.raises(AssertionError, match=r"does not have 61 succeeded deliveries .* has 60:"):
        hooklab.wait_for_deliveries(webhook, count=61, timeout=0.2)


# -- 2. --hooklab-keep under pytest-xdist -----------------------------------------------------

KEPT_UNDER_XDIST = """
import os

import requests

WORKER = os.environ["PYTEST_XDIST_WORKER"]


def test_one(hooklab):
    made = hooklab.create_bin(name=f"{WORKER}-one")
    requests.post(made.url, data=WORKER, timeout=5)
    made.wait_for()


def test_two(hooklab):
    made = hooklab.create_bin(name=f"{WORKER}-two")
    requests.post(made.url, data=WORKER, timeout=5)
    made.wait_for()
"""


def test_hooklab_keep_under_xdist_keeps_one_database_per_worker_and_names_each(tmp_path):
    write_project(tmp_path, tests=KEPT_UNDER_XDIST)
    # --dist each: both workers run both tests, so each has a server (and a database).
    done = run_pytest(tmp_path, "-n", "2", "--dist", "each", "--hooklab-keep", "-p", "xdist")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / ".pytest_cache" / "d" / "hooklab"
    for worker in ("gw0", "gw1"):
        db = folder / f"hooklab-{worker}.db"
        assert f"hooklab: kept; to look at it: hooklab serve --db {db}" in done.stdout
        with sqlite3.connect(db) as conn:
            names = sorted(row[0] for row in conn.execute("SELECT name FROM bins"))
            captured = conn.execute("SELECT count(*) FROM captured_requests").fetchone()[0]
        assert names == [f"{worker}-one", f"{worker}-two"]  # its own, none deleted by another
        assert captured == 2
    assert not (folder / "hooklab.db").exists()


# -- 3. hostile text in a failed wait_for -----------------------------------------------------


def test_a_failed_wait_for_shows_captured_text_escaped(hooklab):
    made = hooklab.create_bin()
    requests.post(made.url, json={"note": HOSTILE}, timeout=5)
    requests.post(made.url, data=HOSTILE.encode(), timeout=5)
    with pytest.raises(AssertionError) as failure:
        made.wait_for(json={"note": "other"}, timeout=0)
    message = str(failure.value)
    assert not any(char in message for char in RAW), repr(message)
    assert '{"note": "\\u001b[31m\\u009b31m\\u202etxt.exe"}' in message
    assert "'\\x1b[31m\\x9b31m\\u202etxt.exe'" in message  # the text body, as repr shows it


# -- 6. a token no HTTP header can carry ------------------------------------------------------


def test_a_hooklab_token_no_header_can_carry_is_a_usage_error(tmp_path):
    write_project(tmp_path)
    done = run_pytest(tmp_path, "--hooklab-url", "http://127.0.0.1:9", "--hooklab-token", "ł")
    assert done.returncode == 4, done.stdout + done.stderr  # pytest's usage error
    assert done.stderr.strip() == (
        "ERROR: --hooklab-token: the access token has 'ł' (U+0142) in it, which an HTTP header "
        "cannot carry (Latin-1 characters only)"
    )


def test_a_settings_token_no_header_can_carry_is_one_clear_line(tmp_path):
    write_project(tmp_path, {"token": "jeton-ł"})
    done = run_pytest(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "hooklab_settings: the access token has 'ł' (U+0142) in it, which an HTTP header "
        "cannot carry (Latin-1 characters only)"
    ) in done.stdout
    assert "UnicodeEncodeError" not in done.stdout and "Traceback" not in done.stdout


# -- 9. --hooklab-url that is not a server's root URL -----------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8411?x=1", "has a query (?…)"),
        ("http://127.0.0.1:8411#frag", "has a fragment (#…)"),
        ("http://%zz", "names no valid host ('%zz')"),
        ("http://127.0.0.1:8411/api", "has a path ('/api'): give the server's root URL"),
    ],
)
def test_a_hooklab_url_that_is_not_a_root_url_fails_in_one_line(tmp_path, url, why):
    write_project(tmp_path)
    done = run_pytest(tmp_path, "--hooklab-url", url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"--hooklab-url: the Hooklab server URL {url!r} {why}" in done.stdout, done.stdout
    assert "Traceback" not in done.stdout


# -- 12. hooklab_settings the server cannot start with ----------------------------------------


def test_a_settings_database_that_cannot_be_made_is_one_line_as_serve_says_it(tmp_path):
    write_project(tmp_path, {"db": "/proc/hooklab-review.db"})
    done = run_pytest(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "hooklab_settings: /proc/hooklab-review.db: the file cannot be opened or created here "
        "(is its folder writable?)"
    ) in done.stdout
    assert "Traceback" not in done.stdout and "ServerFailed" not in done.stdout, done.stdout


def test_a_settings_port_in_use_is_one_line_as_serve_says_it(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        write_project(tmp_path, {"port": port})
        done = run_pytest(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"hooklab_settings: cannot listen on 127.0.0.1:{port}: the address is in use "
        '(is `hooklab serve` already running? pick another "port")'
    ) in done.stdout
    assert "OSError" not in done.stdout and "Errno" not in done.stdout, done.stdout
