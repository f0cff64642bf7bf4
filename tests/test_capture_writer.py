"""The capture path's group commit: every acknowledged row is committed, eviction stays exact."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from hooklab.app.factory import open_store
from hooklab.bin_server import capture_writer
from hooklab.bin_server.bins import create_bin, delete_bin
from hooklab.bin_server.capture_writer import CaptureWriter, _Pending
from hooklab.bin_server.rules import Snapshot
from hooklab.shared.store import Store


@pytest.fixture
def store(tmp_path) -> Store:
    store = open_store(tmp_path / "hooklab.db")
    store.migrate()
    return store


def make_row(bin_id: str, marker: str) -> tuple:
    """A row of the capture INSERT, with `marker` as its path."""
    return (
        bin_id,
        1,
        "POST",
        marker,
        "",
        "",
        "[]",
        "HTTP/1.1",
        "127.0.0.1",
        None,
        b"{}",
        2,
        0,
        None,
    )


def stored_paths(path: str, bin_id: str) -> dict[int, str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT id, path FROM captured_requests WHERE bin_id = ?", (bin_id,)
        ).fetchall()
    return dict(rows)


def test_concurrent_writes_are_all_committed_before_the_answer(store):
    bins = [create_bin(store, {})["id"] for _ in range(2)]
    writer = CaptureWriter(store, keep_per_bin=10_000)
    answered: dict[int, tuple[str, str]] = {}
    missing: list[int] = []
    lock = threading.Lock()

    def capture(number: int) -> None:
        check = sqlite3.connect(store.path)
        for i in range(40):
            bin_id, marker = bins[i % 2], f"/t{number}/{i}"
            request_id = writer.write(make_row(bin_id, marker))
            # Answered means committed: another connection sees the row at once.
            found = check.execute(
                "SELECT path FROM captured_requests WHERE id = ?", (request_id,)
            ).fetchone()
            with lock:
                answered[request_id] = (bin_id, marker)
                if found != (marker,):
                    missing.append(request_id)
        check.close()

    threads = [threading.Thread(target=capture, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert missing == []
    assert len(answered) == 12 * 40  # every id distinct
    for bin_id in bins:
        expected = {rid: marker for rid, (b, marker) in answered.items() if b == bin_id}
        assert stored_paths(store.path, bin_id) == expected


def test_eviction_keeps_exactly_the_newest_per_bin_under_concurrency(store):
    bins = [create_bin(store, {})["id"] for _ in range(3)]
    writer = CaptureWriter(store, keep_per_bin=7)
    ids: dict[str, list[int]] = {bin_id: [] for bin_id in bins}
    lock = threading.Lock()

    def capture(number: int) -> None:
        for i in range(30):
            bin_id = bins[(number + i) % 3]
            request_id = writer.write(make_row(bin_id, f"/{number}/{i}"))
            with lock:
                ids[bin_id].append(request_id)

    threads = [threading.Thread(target=capture, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    for bin_id in bins:
        assert sorted(stored_paths(store.path, bin_id)) == sorted(ids[bin_id])[-7:]


def test_a_bad_row_fails_alone_and_its_batch_is_still_stored(store):
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=100)
    batch = [
        _Pending(make_row(bin_id, "/first")),
        _Pending(make_row("no-such-bin-aaaaaaaaaaaaaaa", "/orphan")),  # foreign key fails
        _Pending(make_row(bin_id, "/last")),
    ]
    writer._write_batch(batch)

    assert isinstance(batch[1].error, sqlite3.IntegrityError)
    assert batch[0].error is None and batch[2].error is None
    assert stored_paths(store.path, bin_id) == {batch[0].id: "/first", batch[2].id: "/last"}


def test_write_raises_the_error_of_its_own_row(store):
    writer = CaptureWriter(store, keep_per_bin=100)
    with pytest.raises(sqlite3.IntegrityError):
        writer.write(make_row("no-such-bin-aaaaaaaaaaaaaaa", "/orphan"))
    # The writer is free again for the next capture.
    bin_id = create_bin(store, {})["id"]
    request_id = writer.write(make_row(bin_id, "/after"))
    assert stored_paths(store.path, bin_id) == {request_id: "/after"}


def commits_and_checkpoints(writer: CaptureWriter) -> list[str]:
    """A list that the writer's commits and the checkpoints' two passes are appended to, in
    their order; the first pass runs at once in the leader's thread instead of its own."""
    events: list[str] = []
    transaction, copy, checkpoint = writer._transaction, writer._copy, writer._checkpoint
    writer._transaction = lambda batch: (events.append("commit"), transaction(batch))
    writer._start_copy = lambda: (events.append("copy"), copy())
    writer._checkpoint = lambda: (events.append("checkpoint"), checkpoint())
    return events


EVERY_THREE = ["commit"] * 3 + ["copy", "commit", "checkpoint"]


def test_checkpoints_copy_beside_the_writer_then_finish_on_its_connection(store, monkeypatch):
    monkeypatch.setattr(capture_writer, "CHECKPOINT_EVERY", 3)
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=100)
    events = commits_and_checkpoints(writer)
    statements: list[str] = []
    writer._connection().set_trace_callback(statements.append)
    for i in range(8):
        writer.write(make_row(bin_id, f"/{i}"))

    # Every 3 commits the first pass; the next leader runs the second, and the count starts
    # again with the WAL.
    assert events == EVERY_THREE * 2
    # The second passes on the writer's connection, the first ones on another.
    assert statements.count("PRAGMA wal_checkpoint(PASSIVE)") == 2
    assert writer._copy_conn is not None and writer._copy_conn is not writer._connection()
    # The writer's own connection never checkpoints by itself (inside a batch's statement).
    assert writer._connection().execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)


def held_first_pass(writer: CaptureWriter) -> tuple[threading.Event, threading.Event, list]:
    """Hold the writer's first passes until `gate` is set; `copied` once one is done; the
    list gets an item for each second pass."""
    gate, copied = threading.Event(), threading.Event()
    copy, checkpoint = writer._copy, writer._checkpoint

    def held_copy() -> None:
        assert gate.wait(10)
        copy()
        copied.set()

    second_passes: list[int] = []
    writer._copy = held_copy
    writer._checkpoint = lambda: (second_passes.append(1), checkpoint())
    return gate, copied, second_passes


def test_captures_do_not_wait_for_the_first_pass(store, monkeypatch):
    """The first pass copies beside the writer (the bulk of the work: it took 20-30 ms when
    captures waited for it, docs/benchmarks.md); captures go on meanwhile, and the second pass,
    once it is done, copies what came since, so the WAL starts over."""
    monkeypatch.setattr(capture_writer, "CHECKPOINT_EVERY", 30)
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=100)
    gate, copied, second_passes = held_first_pass(writer)
    for i in range(30):
        writer.write(make_row(bin_id, f"/{i}"))
    for i in range(29):  # the first pass is held: these are written all the same
        writer.write(make_row(bin_id, f"/during/{i}"))
    assert second_passes == [] and writer._copying
    gate.set()
    assert copied.wait(10)
    writer.write(make_row(bin_id, "/after"))
    assert second_passes == [1]
    # Everything was copied by the two passes: the next commit starts the WAL over.
    busy, frames, backfilled = (
        writer._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    )
    assert (busy, frames - backfilled) == (0, 0) and frames > 0
    assert len(stored_paths(store.path, bin_id)) == 60


def test_a_first_pass_that_falls_behind_is_waited_for(store, monkeypatch):
    """As many commits again before the first pass is done: the leader waits for it, then
    runs the second pass, so the WAL never holds more than about twice CHECKPOINT_EVERY."""
    monkeypatch.setattr(capture_writer, "CHECKPOINT_EVERY", 3)
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=100)
    gate, copied, second_passes = held_first_pass(writer)
    for i in range(5):  # 3 start the first pass, 2 come during it
        writer.write(make_row(bin_id, f"/{i}"))
    sixth = threading.Thread(target=writer.write, args=(make_row(bin_id, "/6"),))
    sixth.start()
    sixth.join(0.3)
    # Its row is committed, but its leader waits for the first pass before handing on.
    assert sixth.is_alive() and len(stored_paths(store.path, bin_id)) == 6
    assert second_passes == []
    gate.set()
    sixth.join(10)
    assert not sixth.is_alive() and copied.is_set() and second_passes == [1]


def test_the_wal_stays_small_under_a_steady_stream_of_captures(store, monkeypatch):
    # A checkpoint beside the writer never caught up while captures kept coming: the WAL
    # grew without end (13 MB here), and the kernel zeroed every fresh page of it.
    monkeypatch.setattr(capture_writer, "CHECKPOINT_EVERY", 20)
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=100)

    def capture_many(thread: int) -> None:
        for i in range(250):
            writer.write(make_row(bin_id, f"/{thread}/{i}"))

    threads = [threading.Thread(target=capture_many, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(stored_paths(store.path, bin_id)) == 100
    wal = Path(f"{store.path}-wal")
    assert wal.stat().st_size < 2_000_000  # ~0.8 MB: started over after each checkpoint


def test_big_bodies_bring_the_checkpoint_sooner(store, monkeypatch):
    # 200 commits of 1 MB bodies would leave 200 MB for one checkpoint to copy.
    monkeypatch.setattr(capture_writer, "CHECKPOINT_BYTES", 3000)
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=100)
    events = commits_and_checkpoints(writer)
    for i in range(8):
        row = list(make_row(bin_id, f"/{i}"))
        row[capture_writer.BODY] = b"x" * 1000
        writer.write(tuple(row))

    assert events == EVERY_THREE * 2


def test_a_failed_checkpoint_still_hands_the_writer_on(store, monkeypatch):
    monkeypatch.setattr(capture_writer, "CHECKPOINT_EVERY", 1)
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=100)
    failing = writer._connection()

    class Refusing:
        def execute(self, sql, *args):
            if sql.startswith("PRAGMA wal_checkpoint"):
                raise sqlite3.OperationalError("database table is locked")
            return failing.execute(sql, *args)

    monkeypatch.setattr(writer, "_connection", lambda: Refusing())
    first = writer.write(make_row(bin_id, "/1"))
    second = writer.write(make_row(bin_id, "/2"))

    assert stored_paths(store.path, bin_id) == {first: "/1", second: "/2"}
    assert writer._busy is False


def test_a_locked_store_fails_the_whole_batch_at_once(store):
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=100)
    writer._connection().execute("PRAGMA busy_timeout = 50")
    tries = []
    transaction = writer._transaction
    writer._transaction = lambda batch: (tries.append(len(batch)), transaction(batch))
    holder = sqlite3.connect(store.path)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        batch = [_Pending(make_row(bin_id, f"/{i}")) for i in range(3)]
        writer._write_batch(batch)
    finally:
        holder.rollback()
        holder.close()

    assert tries == [3]  # not retried row by row
    assert all(isinstance(p.error, sqlite3.OperationalError) for p in batch)
    assert stored_paths(store.path, bin_id) == {}


def test_eviction_stays_exact_when_another_connection_changes_the_bin(store):
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=5)
    for i in range(5):
        writer.write(make_row(bin_id, f"/mine/{i}"))
    other = sqlite3.connect(store.path)  # another process capturing into the same bin
    with other:
        for i in range(3):
            row = (*make_row(bin_id, f"/other/{i}"), None, None)  # no rule state, no forward
            other.execute(capture_writer.insert_rows(1), row)
    newest = writer.write(make_row(bin_id, "/mine/last"))
    # The newest five by id: the writer's fifth, the other connection's three, its last.
    assert stored_paths(store.path, bin_id) == {
        newest - 4: "/mine/4",
        newest - 3: "/other/0",
        newest - 2: "/other/1",
        newest - 1: "/other/2",
        newest: "/mine/last",
    }

    with other:  # the bin cleared elsewhere: the writer must not evict from its old count
        other.execute("DELETE FROM captured_requests WHERE bin_id = ?", (bin_id,))
    other.close()
    first = writer.write(make_row(bin_id, "/after/0"))
    second = writer.write(make_row(bin_id, "/after/1"))
    assert stored_paths(store.path, bin_id) == {first: "/after/0", second: "/after/1"}


def test_a_batch_is_one_statement_with_eviction_inside_it(store):
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=3)
    writer.write(make_row(bin_id, "/first"))  # the connection and its trigger are set up
    calls: list[str] = []

    class Counted:  # the writer's connection, counting what Python asks of it
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def execute(self, sql: str, *args):
            calls.append(sql)
            return self.conn.execute(sql, *args)

        def __getattr__(self, name: str):
            return getattr(self.conn, name)

    writer._conn = Counted(writer._conn)
    for i in range(6):
        writer.write(make_row(bin_id, f"/{i}"))

    # Six INSERTs and nothing else (no BEGIN, COMMIT, count or DELETE): eviction runs inside
    # each of them, in the trigger.
    assert len(calls) == 6 and all(c.startswith("INSERT INTO captured_requests") for c in calls)
    assert sorted(stored_paths(store.path, bin_id).values()) == ["/3", "/4", "/5"]
    kept = store.conn.execute(
        "SELECT kept FROM bin_request_counts WHERE bin_id = ?", (bin_id,)
    ).fetchone()[0]
    assert kept == 3


def test_a_stale_rule_state_never_overwrites_a_newer_one(store):
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=100)

    def state(version: int, order: int) -> Snapshot:
        return Snapshot(bin_id, version, order, (order,), 0)

    def stored() -> dict:
        found = store.conn.execute("SELECT rules_state FROM bins WHERE id = ?", (bin_id,))
        return json.loads(found.fetchone()[0])

    writer.write(make_row(bin_id, "/a"), state(0, 2))
    assert stored()["order"] == 2
    writer.write(make_row(bin_id, "/b"), state(0, 1))  # chosen earlier, written later
    assert stored()["order"] == 2
    writer.write(make_row(bin_id, "/c"), state(0, 3))
    assert stored()["order"] == 3
    writer.write(make_row(bin_id, "/d"), state(7, 9))  # rules changed since: not this bin's
    assert stored() == {"counts": [3], "draws": 0, "version": 0, "order": 3}


def test_an_async_forward_is_queued_with_its_row(store):
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=100)
    forward = json.dumps({"url": "http://127.0.0.1:9/", "mode": "async"})
    plain = writer.write(make_row(bin_id, "/plain"))
    queued = writer.write(make_row(bin_id, "/queued"), forward=forward)
    rows = store.conn.execute("SELECT request_id, bin_id, forward FROM pending_forwards").fetchall()
    assert [tuple(r) for r in rows] == [(queued, bin_id, forward)]
    assert plain != queued


def test_counts_follow_deletes_made_anywhere(store):
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, keep_per_bin=100)
    for i in range(4):
        writer.write(make_row(bin_id, f"/{i}"))

    def kept():
        found = store.conn.execute(
            "SELECT kept FROM bin_request_counts WHERE bin_id = ?", (bin_id,)
        )
        return (found.fetchone() or [None])[0]

    assert kept() == 4
    with store.write() as conn:
        conn.execute("DELETE FROM captured_requests WHERE path = '/0'")
    assert kept() == 3
    delete_bin(store, bin_id)
    assert kept() is None  # gone with the bin
