"""Group commit for the capture path: captures that arrive together share one statement.

SQLite has one writer at a time, and a commit is the expensive part of a capture. The first
capture that finds no batch being written becomes the leader: it takes every row waiting at
that moment, inserts them with one multi-row INSERT in autocommit mode (the statement is its
own transaction, committed when it returns), and only then wakes the others (one wake-up
each). Each capture is answered after the commit that holds its row, so an acknowledged
capture is never lost; a capture that arrives alone is written at once by its own thread,
with no hand-off.

The rest of a capture's write runs inside that statement, in SQLite triggers, so it commits
with the row or not at all and the writer keeps no counts of its own (measured no faster than
separate statements in one transaction: docs/benchmarks.md):
- eviction: a TEMP trigger of the writer's connection deletes a bin's oldest rows past the
  limit, from the per-bin count that permanent triggers keep (bin_server/schema.py, m006);
- the bin's rule state and the async forward ride on the row (`rules_state`,
  `forward_queued`), and permanent triggers write them on to `bins` and `pending_forwards`.

Checkpoints: the writer's connection has automatic checkpoints off (they would run inside the
statement everyone of a batch waits on). Every CHECKPOINT_EVERY commits (sooner when big bodies
were written, CHECKPOINT_BYTES) a checkpoint runs in two passes:
- the first on a thread and connection of its own, beside the writer: it copies what the WAL
  holds as it starts, the bulk of the work (20-30 ms at 200 captures a second), while captures
  go on;
- once it is done, the next leader runs the second on the writer's connection, after answering
  its batch and before handing the writer on, so no capture of this process appends meanwhile:
  it copies only what came during the first (a few commits), catches up, and the next commit
  starts the WAL file over from its beginning. Should CHECKPOINT_EVERY commits more come
  before the first pass is done, the leader waits for it, so the WAL stays within about twice
  that.
A checkpoint that only ran beside the writer (as this module did once) never caught up under a
steady flood: the WAL grew by ~19 MB a second, and the kernel zeroed every fresh page of it
(14 % of the server's CPU). One that only ran in the leader (as it did until 1 December) made
the captures arriving meanwhile wait the whole 20-30 ms: at 200 a second, the captures' p99.
Profile and figures: docs/benchmarks.md.
"""

from __future__ import annotations

import sqlite3
import threading
from functools import cache

from hooklab.bin_server.rules import Snapshot
from hooklab.shared.store import Store

COLUMNS = (
    "bin_id, received_at, method, path, subpath, query_string, headers, http_version, "
    "remote_addr, content_type, body, body_size, truncated, answered_by, rules_state, "
    "forward_queued"
)
ROW_MARKS = "(" + ", ".join(["?"] * 16) + ")"
# The limit of this writer (max_requests_per_bin), for its eviction trigger.
LIMIT_TABLE = "CREATE TEMP TABLE IF NOT EXISTS capture_limit (keep INTEGER NOT NULL)"
# After each captured row: delete the bin's oldest rows past the limit. `kept` may or may not
# count the new row yet (last_id says), whichever trigger SQLite fires first.
EVICT_TRIGGER = """
CREATE TEMP TRIGGER IF NOT EXISTS capture_evict AFTER INSERT ON main.captured_requests
BEGIN
    DELETE FROM captured_requests WHERE id IN (
        SELECT id FROM main.captured_requests
        WHERE bin_id = new.bin_id AND id < new.id ORDER BY id
        LIMIT coalesce((
            SELECT max(0, c.kept + (c.last_id IS NOT new.id) - l.keep)
            FROM main.bin_request_counts c, temp.capture_limit l WHERE c.bin_id = new.bin_id
        ), 0)
    );
END
"""
MAX_BATCH = 64  # rows per statement: 16 parameters each, far below SQLite's limit
CHECKPOINT_EVERY = 200  # commits between two checkpoints (~2,000 WAL frames, ~8 MB) ...
CHECKPOINT_BYTES = 4 * 1024 * 1024  # ... or sooner, once this much body was written (big bodies)
BODY = COLUMNS.split(", ").index("body")


@cache
def insert_rows(count: int) -> str:
    """The INSERT of `count` rows in one statement (placeholders only, never values)."""
    marks = ", ".join([ROW_MARKS] * count)
    return f"INSERT INTO captured_requests ({COLUMNS}) VALUES {marks}"  # noqa: S608


class _Pending:
    """One row waiting to be written, and what became of it."""

    __slots__ = ("row", "id", "error", "done", "wake", "rule_state", "forward")

    def __init__(
        self, row: tuple, rule_state: Snapshot | None = None, forward: str | None = None
    ) -> None:
        self.row = row
        self.rule_state = rule_state
        self.forward = forward
        self.id: int | None = None
        self.error: BaseException | None = None
        self.done = False
        # Held from the start; released once, either when the row is committed (done) or to
        # hand this thread the next batch. One wake-up per capture, no thundering herd.
        self.wake = threading.Lock()
        self.wake.acquire()


class CaptureWriter:
    """Writes captured requests (rows of COLUMNS, bin id first) in shared commits."""

    def __init__(self, store: Store, keep_per_bin: int) -> None:
        self.store = store
        self.keep_per_bin = keep_per_bin
        self._mutex = threading.Lock()
        self._waiting: list[_Pending] = []
        self._busy = False  # a leader is writing a batch
        self._conn: sqlite3.Connection | None = None  # used by the current leader only
        self._commits = 0  # since the last checkpoint
        self._body_bytes = 0  # since the last checkpoint
        self._copying = False  # a checkpoint's first pass runs beside the writer
        self._copied = False  # it is done: the next leader runs the second pass
        self._copy_conn: sqlite3.Connection | None = None  # the first pass's, one at a time
        self._copy_thread: threading.Thread | None = None

    def write(
        self, row: tuple, rule_state: Snapshot | None = None, forward: str | None = None
    ) -> int:
        """Store one captured request; returns its id once the row is committed.

        In the same transaction: the bin's rule state as this capture left it, and the
        request's async forward (its settings as JSON), queued to be sent.
        """
        item = _Pending(row, rule_state, forward)
        with self._mutex:
            follower = self._busy
            if follower:
                self._waiting.append(item)
            self._busy = True
        if follower:
            item.wake.acquire()  # sleeps until committed, or until made the next leader
        if not item.done:
            self._lead(item)
        if item.error is not None:
            raise item.error
        return item.id

    def _lead(self, item: _Pending) -> None:
        with self._mutex:
            batch = [item, *self._waiting[: MAX_BATCH - 1]]
            del self._waiting[: MAX_BATCH - 1]
        try:
            self._write_batch(batch)
        finally:
            for pending in batch:
                if pending.id is None and pending.error is None:
                    pending.error = RuntimeError("the captured request was not stored")
                pending.done = True
            for pending in batch[1:]:
                pending.wake.release()  # answered: their rows are committed
            try:
                self._after_batch()
            finally:
                with self._mutex:
                    successor = self._waiting.pop(0) if self._waiting else None
                    self._busy = successor is not None
                if successor is not None:
                    successor.wake.release()

    def _after_batch(self) -> None:
        """A checkpoint in two passes, so that captures rarely wait for one (module doc)."""
        due = self._commits >= CHECKPOINT_EVERY or self._body_bytes >= CHECKPOINT_BYTES
        if due and self._copying:
            # As many commits again since the first pass began: it fell behind. Captures wait
            # for it, as they did for every checkpoint once, so the WAL stays within twice
            # its usual size.
            self._copy_thread.join()
        if self._copied:
            self._copied = False
            self._commits = self._body_bytes = 0
            self._checkpoint()  # still the writer: nothing appends while it copies the rest
        elif due:
            self._commits = self._body_bytes = 0
            self._copying = True
            self._start_copy()

    def _start_copy(self) -> None:
        self._copy_thread = threading.Thread(
            target=self._copy, name="hooklab-checkpoint", daemon=True
        )
        self._copy_thread.start()

    def _copy(self) -> None:
        """The first pass, beside the writer: copies what the WAL holds as it starts."""
        try:
            if self._copy_conn is None:
                self._copy_conn = self.store.connect(check_same_thread=False)
            self._copy_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            pass  # the second pass (or a later checkpoint) copies it
        finally:
            self._copied = True
            self._copying = False

    def _checkpoint(self) -> None:
        try:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            pass  # a later checkpoint (or any other connection's) will do it

    def _write_batch(self, batch: list[_Pending]) -> None:
        try:
            self._transaction(batch)
        except Exception as exc:
            if len(batch) == 1 or not isinstance(exc, sqlite3.IntegrityError):
                # A busy or broken store fails the whole batch at once (each row retried
                # alone would wait out the busy timeout again).
                for pending in batch:
                    pending.error = exc
                return
            # One bad row (its bin deleted a moment ago) must not fail the others: retry alone.
            for pending in batch:
                try:
                    self._transaction([pending])
                except Exception as alone:
                    pending.error = alone

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # Handed from leader to leader, never used by two threads at once.
            conn = self.store.connect(check_same_thread=False)
            conn.isolation_level = None  # autocommit: each INSERT is its own transaction
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(LIMIT_TABLE)
            conn.execute("DELETE FROM temp.capture_limit")
            conn.execute("INSERT INTO temp.capture_limit (keep) VALUES (?)", (self.keep_per_bin,))
            conn.execute(EVICT_TRIGGER)
            self._conn = conn
        return self._conn

    def _transaction(self, batch: list[_Pending]) -> None:
        conn = self._connection()
        # Only a bin's newest rule state of the batch is carried (the others would be
        # overwritten by it within the same statement).
        newest: dict[str, Snapshot] = {}
        for pending in batch:
            state = pending.rule_state
            if state is not None:
                known = newest.get(state.bin_id)
                if known is None or (known.version, known.order) < (state.version, state.order):
                    newest[state.bin_id] = state
        values = []
        body_bytes = 0
        for pending in batch:
            row = pending.row
            values.extend(row)
            body_bytes += len(row[BODY])
            state = pending.rule_state
            values.append(
                state.state_json if state is not None and newest[state.bin_id] is state else None
            )
            values.append(pending.forward)
        # One statement holding the write lock, in this process's turn: AUTOINCREMENT hands
        # out consecutive ids, and the statement commits (with its triggers' writes) or not.
        with self.store.writing():
            last = conn.execute(insert_rows(len(batch)), values).lastrowid
        self._commits += 1
        self._body_bytes += body_bytes
        for offset, pending in enumerate(batch, start=1 - len(batch)):
            pending.id = last + offset
