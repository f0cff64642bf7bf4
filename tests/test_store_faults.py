"""Store faults: a database that is locked, read-only, from an older schema, or not a database.

Each runs `hooklab serve` as users do. What must hold: a clear one-line message (never a
traceback), waiting where waiting helps, migration where needed, no crash loop, no corrupt file.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from hooklab.app.factory import open_store
from hooklab.bin_server.schema import migrations as bin_migrations
from hooklab.shared.store import BUSY_TIMEOUT_MS, WAL_SIZE_LIMIT
from tests.served import HOOKLAB, start

HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def hold_write_lock(db: Path, seconds: float) -> subprocess.Popen:
    """Another process that takes the database's write lock and keeps it for `seconds`."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db), str(seconds)], stdout=subprocess.PIPE
    )
    ready = holder.stdout.readline()
    holder.stdout.close()
    assert ready == b"locked\n"
    return holder


def serve_once(db: Path | str, timeout: float = 30, drop_root: bool = False):
    """Run `hooklab serve` on a database that should make it stop; returns the result."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")}
    return subprocess.run(
        [HOOKLAB, "serve", "--db", str(db), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        preexec_fn=_without_root_overrides if drop_root else None,
    )


def _without_root_overrides() -> None:
    # Root ignores file permissions; dropping these capabilities from the bounding set makes
    # the child (root or not) see read-only files as read-only. Runs in the child only.
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        libc.prctl(24, capability, 0, 0, 0)  # PR_CAPBSET_DROP; fails harmlessly when not root


def assert_one_clear_line(result, *words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    assert "unexpected" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, output
    for word in words:
        assert word in lines[0], output


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fresh_database(path: Path) -> Path:
    """A database with the whole schema, closed cleanly (no -wal or -shm left beside it)."""
    store = open_store(path)
    store.migrate()
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def new_bin(url: str) -> str:
    return requests.post(f"{url}/api/bins", json={"name": "faults"}, timeout=10).json()["id"]


# --- locked by another process ---------------------------------------------------------


def test_a_short_lock_is_waited_out(tmp_path):
    db = tmp_path / "locked.db"
    served = start(tmp_path, "--db", str(db))
    try:
        bin_id = new_bin(served.url)
        holder = hold_write_lock(db, 1.5)  # shorter than the busy timeout
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(
                    lambda n: (
                        requests.post(
                            f"{served.url}/b/{bin_id}", data=f"during lock {n}", timeout=30
                        ).status_code
                    ),
                    range(16),
                )
            )
        assert holder.wait(10) == 0
        assert codes == [200] * 16
        listed = requests.get(f"{served.url}/api/bins/{bin_id}", timeout=5).json()
        assert listed["request_count"] == 16
    finally:
        served.stop()
    assert "Traceback" not in served.log(), served.log()
    assert integrity(db) == "ok"


def test_a_long_lock_gets_503_with_retry_after_and_the_server_recovers(tmp_path):
    db = tmp_path / "locked.db"
    served = start(tmp_path, "--db", str(db))
    try:
        bin_id = new_bin(served.url)
        holder = hold_write_lock(db, BUSY_TIMEOUT_MS / 1000 + 2.5)
        with holder, ThreadPoolExecutor(4) as pool:
            capture = pool.submit(
                requests.post, f"{served.url}/b/{bin_id}", data=b"blocked", timeout=30
            )
            api_write = pool.submit(
                requests.post, f"{served.url}/api/bins", json={"name": "blocked"}, timeout=30
            )
            # Readers are not blocked by a writer (WAL): the API still reads meanwhile.
            time.sleep(0.5)
            read = requests.get(f"{served.url}/api/bins/{bin_id}", timeout=5)
            assert read.status_code == 200
            for response in (capture.result(), api_write.result()):
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "unavailable"
                assert "busy" in response.json()["error"]["message"]
                assert int(response.headers["Retry-After"]) >= 1
        assert holder.wait(15) == 0
        # Once the lock is gone, the same server answers again (no restart, no crash loop).
        after = requests.post(f"{served.url}/b/{bin_id}", data=b"after", timeout=10)
        assert after.status_code == 200
        assert served.process.poll() is None
        requests_kept = requests.get(f"{served.url}/api/bins/{bin_id}/requests", timeout=5)
        assert [r["body_size"] for r in requests_kept.json()] == [len(b"after")]
    finally:
        served.stop()
    assert "Traceback" not in served.log(), served.log()
    assert integrity(db) == "ok"


def test_start_waits_for_a_short_lock(tmp_path):
    db = fresh_database(tmp_path / "start.db")
    holder = hold_write_lock(db, 1.5)
    served = start(tmp_path, "--db", str(db))
    try:
        assert requests.get(f"{served.url}/api/health", timeout=5).status_code == 200
    finally:
        served.stop()
        holder.wait(10)


def test_start_under_a_lock_that_does_not_end_is_one_line_and_exit(tmp_path):
    db = fresh_database(tmp_path / "stuck.db")
    before = digest(db)
    holder = hold_write_lock(db, 60)
    try:
        result = serve_once(db, timeout=40)
    finally:
        holder.kill()
        holder.wait(10)
    assert_one_clear_line(result, str(db), "locked")
    assert digest(db) == before
    assert integrity(db) == "ok"


# --- read-only ----------------------------------------------------------------------------


def test_a_read_only_database_file_is_one_clear_line(tmp_path):
    db = fresh_database(tmp_path / "readonly.db")
    before = digest(db)
    db.chmod(0o444)
    result = serve_once(db, drop_root=True)
    assert_one_clear_line(result, str(db), "read-only")
    assert digest(db) == before


def test_a_database_in_a_read_only_folder_is_one_clear_line(tmp_path):
    folder = tmp_path / "locked-folder"
    folder.mkdir()
    db = fresh_database(folder / "in-folder.db")
    before = digest(db)
    folder.chmod(0o555)
    try:
        result = serve_once(db, drop_root=True)
        new = serve_once(folder / "new.db", drop_root=True)
    finally:
        folder.chmod(0o755)
    assert_one_clear_line(result, str(db), "read-only")
    assert_one_clear_line(new, str(folder / "new.db"))
    assert digest(db) == before
    assert not (folder / "new.db").exists()


# --- older schema -------------------------------------------------------------------------


def test_a_database_from_an_older_schema_is_migrated_on_start(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.close()
    old = open_store(db)
    # Only the very first migration, as the first release of Hooklab left the file.
    first = bin_migrations._migrations[0].name
    later = [m.name for m in bin_migrations._migrations[1:]]
    bin_migrations.apply(old.db, stop_before=later or None)
    applied = old.db.execute("SELECT name FROM _sqlite_migrations").fetchall()
    assert applied == [(first,)]
    old.conn.execute(
        "INSERT INTO bins (id, name, created_at) VALUES (?, ?, ?)",
        ["a" * 26, "from the old days", 1_700_000_000_000],
    )
    old.conn.execute(
        "INSERT INTO captured_requests (bin_id, received_at, method, path, subpath, "
        "query_string, headers, http_version, body, body_size) VALUES "
        "(?, ?, 'POST', ?, '', '', '[]', 'HTTP/1.1', ?, 3)",
        ["a" * 26, 1_700_000_000_001, "/b/" + "a" * 26, b"old"],
    )
    old.conn.commit()
    old.close()

    served = start(tmp_path, "--db", str(db))
    try:
        listed = requests.get(f"{served.url}/api/bins/{'a' * 26}/requests", timeout=5).json()
        assert len(listed) == 1
        raw = requests.get(
            f"{served.url}/api/bins/{'a' * 26}/requests/{listed[0]['id']}/raw", timeout=5
        )
        assert raw.content == b"old"
        # The rest of the schema is there and works: a webhook (a later migration's table).
        made = requests.post(
            f"{served.url}/api/webhooks",
            json={"name": "new", "url": f"{served.url}/b/{'a' * 26}", "event": "*"},
            timeout=5,
        )
        assert made.status_code == 201, made.text
    finally:
        served.stop()
    with sqlite3.connect(db) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM _sqlite_migrations")}
    expected = {m.name for s in open_store(":memory:").migrations for m in s._migrations}
    assert names == expected


def test_several_processes_migrating_a_new_file_at_once(tmp_path):
    db = tmp_path / "race.db"
    code = (
        "import sys; from hooklab.app.factory import open_store; open_store(sys.argv[1]).migrate()"
    )
    racers = [
        subprocess.Popen([sys.executable, "-c", code, str(db)], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [r.communicate(timeout=60)[1] for r in racers]
    assert [r.returncode for r in racers] == [0] * 4, errors
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall()
    assert (
        len(rows)
        == len(set(rows))
        == sum(len(s._migrations) for s in open_store(":memory:").migrations)
    )


# --- not a database -----------------------------------------------------------------------


def _truncated(path: Path) -> None:
    fresh_database(path)
    with open(path, "r+b") as f:
        f.truncate(1500)


def _garbage_pages(path: Path) -> None:
    fresh_database(path)
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(bytes(range(256)) * 96)


def _zeros(path: Path) -> None:
    path.write_bytes(b"\0" * 8192)


def _text(path: Path) -> None:
    path.write_text("this is not a database\n" * 100)


@pytest.mark.parametrize(
    "spoil", [_truncated, _garbage_pages, _zeros, _text], ids=lambda f: f.__name__.strip("_")
)
def test_a_file_that_is_not_a_usable_database_is_one_clear_line(tmp_path, spoil):
    db = tmp_path / "spoilt.db"
    spoil(db)
    before = digest(db)
    result = serve_once(db)
    assert_one_clear_line(result, str(db))
    assert digest(db) == before  # left as it was: nothing written into a broken file


def test_a_folder_or_a_missing_folder_is_one_clear_line(tmp_path):
    assert_one_clear_line(serve_once(tmp_path), str(tmp_path), "folder")
    missing = tmp_path / "no" / "such" / "place.db"
    assert_one_clear_line(serve_once(missing), str(missing), "folder")


def test_an_empty_file_is_a_new_database(tmp_path):
    db = tmp_path / "empty.db"
    db.touch()
    served = start(tmp_path, "--db", str(db))
    try:
        assert new_bin(served.url)
    finally:
        served.stop()
    assert integrity(db) == "ok"


def test_a_database_left_by_kill_9_opens_cleanly(tmp_path):
    db = tmp_path / "killed.db"
    served = start(tmp_path, "--db", str(db))
    bin_id = new_bin(served.url)
    for n in range(50):
        requests.post(f"{served.url}/b/{bin_id}", data=f"n{n}", timeout=5)
    served.kill()
    shutil.copy(db, tmp_path / "copy-of-main-file.db")  # the -wal holds the latest commits
    again = start(tmp_path, "--db", str(db))
    try:
        kept = requests.get(f"{again.url}/api/bins/{bin_id}", timeout=5).json()
        assert kept["request_count"] == 50
    finally:
        again.stop()
    assert integrity(db) == "ok"


def test_another_programs_database_is_left_alone(tmp_path):
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        conn.execute("INSERT INTO users (email) VALUES ('a@example.com')")
    before = digest(db)
    result = serve_once(db)
    assert_one_clear_line(result, str(db), "another program", "users")
    assert digest(db) == before  # no Hooklab table, not even WAL mode
    with sqlite3.connect(db) as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["users"]


def test_a_database_of_a_newer_hooklab_is_refused(tmp_path):
    db = tmp_path / "newer.db"
    store = open_store(db)
    store.migrate()
    store.conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
        "VALUES ('hooklab.sender', 'm099_future', '2027-01-01')"
    )
    store.conn.commit()
    store.close()
    result = serve_once(db)
    assert_one_clear_line(result, str(db), "newer Hooklab", "m099_future")


def test_the_wal_is_cut_back_after_a_burst(tmp_path):
    store = open_store(tmp_path / "wal.db")
    store.migrate()
    assert store.conn.execute("PRAGMA journal_size_limit").fetchone()[0] == WAL_SIZE_LIMIT
    store.close()
