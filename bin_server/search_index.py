"""The search index, kept in step in the background: never on the capture path.

Indexing a request means reading its whole body into the full-text index; doing it in the
capture's own transaction cost 22 % of capture throughput with 120-byte bodies and 62 % with
10 KB ones (bench/search.py). Here one thread per serving process indexes what was captured
once captures pause for a moment (or once enough waited), in batches, each batch one short
write transaction; it also takes deleted requests (evicted, cleared) out of the index. Until a
request is indexed, search.py matches it directly, so a search never misses one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask

from hooklab.bin_server.schema import search_table
from hooklab.bin_server.search import MAX_SEARCHED_BODY, indexed_up_to, searched_text
from hooklab.shared.context import get_notifier, get_settings, get_store
from hooklab.shared.store import Store, rows

log = logging.getLogger("hooklab")

BATCH = 100  # requests per write transaction: a short hold on the write lock ...
BATCH_TEXT = 512 * 1024  # ... and at most about this many characters of text in one
QUIET_S = 0.3  # index once no capture came for this long ...
MAX_WAIT_S = 10.0  # ... or once the oldest request not indexed waited this long ...
MAX_BEHIND = 20_000  # ... or once this many wait (a search reads at most a bin's worth directly)
YIELD_S = 0.05  # under a steady stream of captures, the pause between two batches
IDLE_CHECK_S = 5.0  # with nothing to do, look again this often (captures by other processes)
# Only the start of a body is read: no more is searched (search.MAX_SEARCHED_BODY characters,
# at most 4 bytes each).
INDEXED_COLUMNS = (
    "id, bin_id, subpath, query_string, headers, content_type, "
    f"substr(body, 1, {MAX_SEARCHED_BODY * 4}) AS body"
)


def index_batch(store: Store, limit: int = BATCH) -> int:
    """Index up to `limit` requests not indexed yet and drop deleted ones; returns how many."""
    conn = store.conn
    start = indexed_up_to(conn)
    # Read and prepare outside the write lock; captures go on meanwhile.
    found = rows(
        conn,
        f"SELECT {INDEXED_COLUMNS} FROM captured_requests WHERE id > ? ORDER BY id LIMIT ?",  # noqa: S608
        (start, limit),
    )
    values = {}
    text_size = 0
    for row in found:
        if values and text_size >= BATCH_TEXT:
            found = found[: len(values)]  # the rest in the next batch
            break
        texts = dict(searched_text(row))
        text_size += sum(len(text) for text in texts.values())
        values[row["id"]] = (
            row["id"],
            row["bin_id"],
            texts["path"],
            texts["query"],
            texts["headers"],
            texts["body"],
        )
    with store.write() as w:
        if indexed_up_to(w) != start:
            return 0  # another process indexed these meanwhile
        if values:
            # Requests deleted since they were read are not indexed: nothing would delete them.
            marks = ", ".join("?" * len(values))
            alive = {
                r[0]
                for r in w.execute(
                    f"SELECT id FROM captured_requests WHERE id IN ({marks})",  # noqa: S608
                    list(values),
                )
            }
            by_table: dict[str, list[tuple]] = {}
            for key, value in values.items():
                if key in alive:
                    by_table.setdefault(search_table(value[1]), []).append(value)
            for table, batch in by_table.items():  # table: one of a fixed list of names
                w.executemany(
                    f"INSERT INTO {table} (rowid, bin_id, subpath, query, headers, body) "  # noqa: S608
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    batch,
                )
            # Ids only grow, and a write transaction is alone: no id below this can come later.
            w.execute(
                "UPDATE captured_search_state SET indexed_up_to = ? WHERE id = 1",
                (found[-1]["id"],),
            )
        gone = w.execute("SELECT id, bin_id FROM captured_search_gone LIMIT ?", (limit,)).fetchall()
        by_table_gone: dict[str, list[int]] = {}
        for request_id, bin_id in gone:
            by_table_gone.setdefault(search_table(bin_id), []).append(request_id)
        for table, ids in by_table_gone.items():
            marks = ", ".join("?" * len(ids))
            w.execute(f"DELETE FROM {table} WHERE rowid IN ({marks})", ids)  # noqa: S608
        if gone:
            marks = ", ".join("?" * len(gone))
            w.execute(
                f"DELETE FROM captured_search_gone WHERE id IN ({marks})",  # noqa: S608
                [request_id for request_id, _ in gone],
            )
    return len(found) + len(gone)


def behind(store: Store) -> int:
    """How many requests (about) wait to be indexed or taken out of the index."""
    conn = store.conn
    newest = conn.execute("SELECT max(id) FROM captured_requests").fetchone()[0] or 0
    gone = conn.execute("SELECT count(*) FROM captured_search_gone").fetchone()[0]
    return max(0, newest - indexed_up_to(conn)) + gone


def catch_up(store: Store) -> None:
    """Index everything now (tests, benchmarks, `hooklab` tools)."""
    while index_batch(store):
        pass


def start_search_indexer(app: Flask) -> Callable[[], None] | None:
    """Start the thread that keeps the search index in step; returns its stop()."""
    if not get_settings(app).search_index:
        return None  # every search matches the requests directly
    store, notifier = get_store(app), get_notifier(app)
    stopped = threading.Event()

    def run() -> None:
        waiting_since: float | None = None
        lull = False  # no capture came during the last pause and the batch after it
        while not stopped.is_set():
            seen = notifier.version
            try:
                pending = behind(store)
                if not pending:
                    waiting_since, lull = None, False
                    notifier.wait(seen, IDLE_CHECK_S)
                    continue
                now = time.monotonic()
                waiting_since = waiting_since or now
                overdue = now - waiting_since >= MAX_WAIT_S or pending >= MAX_BEHIND
                if not overdue and not lull:
                    # A plain pause, not a wake-up per capture: under load this thread must
                    # cost the capture path nothing. Captures came meanwhile: wait for a lull.
                    if stopped.wait(QUIET_S) or notifier.version != seen:
                        continue
                indexed = index_batch(store)
                # Still no capture: the next batch goes at once, so a backlog is indexed at
                # full speed once captures stop (not one batch per pause); the first capture
                # to come waits for one batch's write at most, then the pauses are back.
                lull = indexed > 0 and notifier.version == seen
                if not indexed:
                    waiting_since = None
                elif overdue and not lull:
                    stopped.wait(YIELD_S)  # captures first, between batches
            except Exception:  # a locked database is a passing state: try again shortly
                log.exception("updating the search index failed")
                stopped.wait(1.0)
        store.close()

    thread = threading.Thread(target=run, name="hooklab-search-index", daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        notifier.changed()  # wake it
        thread.join(5)

    return stop
