"""Group commit for the capture path: captures that arrive together share one transaction.

SQLite has one writer at a time, and every call into sqlite3 gives the GIL up and must win it
back; under load each of those hand-overs costs a capture up to a GIL switch interval while it
holds the write lock, so writing each capture alone (insert, evict, commit) serialises the
server on those waits. Here the first capture that finds no batch being written becomes the
leader: it takes every row waiting at that moment, inserts them with one multi-row statement,
evicts once per bin, commits, and only then wakes the others (one wake-up each). Each capture
is answered after the commit that holds its row, so an acknowledged capture is never lost; a
capture that arrives alone is written at once by its own thread, with no hand-off.

The writer has its own connection with automatic checkpoints off, so the fsync of a checkpoint
never stalls the batch everyone waits on: a leader runs a passive checkpoint on its thread's
own connection after it has handed the writer on. Profile and figures: docs/benchmarks.md.
"""

from __future__ import annotations

import sqlite3
import threading
from functools import cache

from hooklab.bin_server.rules import Snapshot
from hooklab.shared.clock import now_ms
from hooklab.shared.store import Store

COLUMNS = (
    "bin_id, received_at, method, path, subpath, query_string, headers, http_version, "
    "remote_addr, content_type, body, body_size, truncated, answered_by"
)
ROW_MARKS = "(" + ", ".join(["?"] * 14) + ")"
# A rule state written by an older capture than the rules now stored is not written at all.
SAVE_RULE_STATE = "UPDATE bins SET rules_state = ? WHERE id = ? AND rules_version = ?"
QUEUE_FORWARD = (
    "INSERT OR REPLACE INTO pending_forwards (request_id, bin_id, forward, due_at) "
    "VALUES (?, ?, ?, ?)"
)
COUNT_AND_VERSION = (
    "SELECT count(*), (SELECT data_version FROM pragma_data_version()) "
    "FROM captured_requests WHERE bin_id = ?"
)
EVICT_OLDEST = (
    "DELETE FROM captured_requests WHERE id IN ("
    "SELECT id FROM captured_requests WHERE bin_id = ? ORDER BY id LIMIT ?)"
)
# Deletes nothing when another connection has committed since the count was taken.
EVICT_OLDEST_IF_UNCHANGED = (
    EVICT_OLDEST + " AND (SELECT data_version FROM pragma_data_version()) = ?"  # noqa: S608
)
MAX_KNOWN_BINS = 100_000  # bins whose row count the writer remembers
MAX_BATCH = 64  # rows per statement: 14 parameters each, far below SQLite's limit
CHECKPOINT_EVERY = 200  # commits between two passive checkpoints (~1,000 WAL pages)


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
        # Rows per bin as of the writer's last commit, valid while no other connection has
        # committed since (PRAGMA data_version says): eviction then needs no count.
        self._counts: dict[str, int] = {}
        self._version: int | None = None
        self._checkpointing = False

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
            with self._mutex:
                successor = self._waiting.pop(0) if self._waiting else None
                self._busy = successor is not None
                checkpoint = self._commits >= CHECKPOINT_EVERY and not self._checkpointing
                if checkpoint:
                    self._commits, self._checkpointing = 0, True
            for pending in batch[1:]:
                pending.wake.release()
            if successor is not None:
                successor.wake.release()
        if checkpoint:
            self._checkpoint()

    def _checkpoint(self) -> None:
        # On this thread's own connection, outside the batch: captures go on meanwhile.
        try:
            self.store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            pass  # a later checkpoint (or any other connection's) will do it
        finally:
            self._checkpointing = False

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
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._conn = conn
        return self._conn

    def _evict(self, conn: sqlite3.Connection, batch: list[_Pending]) -> dict[str, int]:
        """Keep the newest N rows of each bin of the batch; returns their counts after.

        Runs inside the write transaction, so data_version cannot move until it ends. Every
        statement costs a GIL hand-over under load, so a full bin whose count is known takes
        one: the DELETE of its oldest rows, guarded by the version it was counted at.
        """
        if len(self._counts) > MAX_KNOWN_BINS:
            self._counts.clear()
        added: dict[str, int] = {}
        for pending in batch:
            added[pending.row[0]] = added.get(pending.row[0], 0) + 1
        counts: dict[str, int] = {}
        trusted: bool | None = None  # known counts still valid (None: not asked yet)
        for bin_id, new_rows in added.items():
            known = self._counts.get(bin_id) if trusted is not False else None
            if known is not None:
                excess = known + new_rows - self.keep_per_bin
                if excess > 0 and trusted is None:
                    cur = conn.execute(EVICT_OLDEST_IF_UNCHANGED, (bin_id, excess, self._version))
                    trusted = cur.rowcount == excess
                    if trusted:
                        counts[bin_id] = self.keep_per_bin
                        continue
                elif trusted is None:
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    trusted = version == self._version
                if trusted:
                    if excess > 0:
                        conn.execute(EVICT_OLDEST, (bin_id, excess))
                    counts[bin_id] = min(known + new_rows, self.keep_per_bin)
                    continue
            # Unknown, or another connection committed since: count (the new rows included).
            count, version = conn.execute(COUNT_AND_VERSION, (bin_id,)).fetchone()
            if trusted is None:
                trusted = version == self._version
            if version != self._version:
                self._counts.clear()
                self._version = version
            if count > self.keep_per_bin:
                conn.execute(EVICT_OLDEST, (bin_id, count - self.keep_per_bin))
                count = self.keep_per_bin
            counts[bin_id] = count
        return counts

    def _transaction(self, batch: list[_Pending]) -> None:
        conn = self._connection()
        values = [value for pending in batch for value in pending.row]
        try:
            # One transaction (commit on success, roll back on error), in this process's turn.
            with self.store.writing(), conn:
                last = conn.execute(insert_rows(len(batch)), values).lastrowid
                _write_extras(conn, batch, last)
                counts = self._evict(conn, batch)
        except BaseException:
            self._counts.clear()
            self._version = None
            raise
        self._counts.update(counts)
        self._commits += 1
        # One statement holding the write lock: AUTOINCREMENT hands out consecutive ids.
        for offset, pending in enumerate(batch, start=1 - len(batch)):
            pending.id = last + offset


def _write_extras(conn: sqlite3.Connection, batch: list[_Pending], last_id: int) -> None:
    """The rule states and queued forwards that ride along with a batch of captures."""
    newest: dict[str, Snapshot] = {}
    for offset, pending in enumerate(batch, start=1 - len(batch)):
        state = pending.rule_state
        if state is not None:
            known = newest.get(state.bin_id)
            if known is None or (known.version, known.order) < (state.version, state.order):
                newest[state.bin_id] = state
        if pending.forward is not None:
            conn.execute(
                QUEUE_FORWARD, (last_id + offset, pending.row[0], pending.forward, now_ms())
            )
    for state in newest.values():
        conn.execute(SAVE_RULE_STATE, (state.state_json, state.bin_id, state.version))
