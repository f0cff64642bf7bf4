"""The bin's tables, created and changed only by these migrations."""

import zlib

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("hooklab.bin")


@migrations()
def m001_bins_and_captured_requests(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE bins (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL,
            secret TEXT,
            response_status INTEGER NOT NULL DEFAULT 200,
            response_headers TEXT NOT NULL DEFAULT '[]',
            response_body TEXT,
            response_delay_ms INTEGER NOT NULL DEFAULT 0,
            cleared_at INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    # AUTOINCREMENT: ids are never reused, so they are a safe cursor for every `after`.
    db.execute(
        """
        CREATE TABLE captured_requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            bin_id TEXT NOT NULL REFERENCES bins(id) ON DELETE CASCADE,
            received_at INTEGER NOT NULL,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            subpath TEXT NOT NULL,
            query_string TEXT NOT NULL,
            headers TEXT NOT NULL,
            http_version TEXT NOT NULL,
            remote_addr TEXT,
            content_type TEXT,
            body BLOB NOT NULL,
            body_size INTEGER NOT NULL,
            truncated INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX captured_requests_bin_id ON captured_requests (bin_id, id)")


@migrations()
def m002_replays(db: Database) -> None:
    # Each replay of a captured request: where it went, what was changed, what came back.
    db.execute(
        """
        CREATE TABLE replays (
            id INTEGER PRIMARY KEY,
            request_id INTEGER NOT NULL REFERENCES captured_requests(id) ON DELETE CASCADE,
            at INTEGER NOT NULL,
            url TEXT NOT NULL,
            method TEXT NOT NULL,
            edited TEXT NOT NULL DEFAULT '[]',
            resigned INTEGER NOT NULL DEFAULT 0,
            status_code INTEGER,
            duration_ms INTEGER,
            error TEXT
        )
        """
    )
    db.execute("CREATE INDEX replays_request_id ON replays (request_id, id)")


SEARCH_COLUMNS = "bin_id, subpath, query, headers, body"
# The index is split by bin into this many tables: a word prefix is looked up in one table,
# which holds about 1/16 of the requests (bench/search.py: a prefix common to a million stored
# requests took 65 ms in one table).
SEARCH_SHARDS = 16
SEARCH_TABLES = tuple(f"captured_search_{n:02d}" for n in range(SEARCH_SHARDS))


def search_table(bin_id: str) -> str:
    """The index table that holds a bin's requests (one of SEARCH_TABLES, never user text)."""
    return SEARCH_TABLES[zlib.crc32(bin_id.encode("utf-8", "replace")) % SEARCH_SHARDS]


# The search index's tokenizer, as m003 created its tables (bin_server/search.py splits words
# the same way).
SEARCH_TOKENIZER = "unicode61 remove_diacritics 0"


@migrations()
def m003_request_search(db: Database) -> None:
    # The full-text index of what `q` searches, written by bin_server/search_index.py in the
    # background, never on the capture path (bench/search.py: indexing in a trigger cost 22 %
    # of capture throughput for 120-byte bodies, 62 % for 10 KB ones). It keeps its own copy
    # of the searched text, so a deleted request can leave the index without its row.
    for table in SEARCH_TABLES:
        db.execute(
            f"CREATE VIRTUAL TABLE {table} USING fts5({SEARCH_COLUMNS}, "
            "tokenize='unicode61 remove_diacritics 0')"
        )
    # How far the index has got: every captured request up to this id was indexed (ids grow).
    db.execute(
        "CREATE TABLE captured_search_state ("
        "id INTEGER PRIMARY KEY CHECK (id = 1), indexed_up_to INTEGER NOT NULL)"
    )
    db.execute("INSERT INTO captured_search_state (id, indexed_up_to) VALUES (1, 0)")
    # Indexed requests deleted since (evicted, cleared): the indexer takes them out of the
    # index. Only an id is written here, whichever connection or process deletes.
    db.execute("CREATE TABLE captured_search_gone (id INTEGER PRIMARY KEY, bin_id TEXT NOT NULL)")
    db.execute(
        "CREATE TRIGGER captured_requests_search_gone AFTER DELETE ON captured_requests "
        "WHEN old.id <= (SELECT indexed_up_to FROM captured_search_state WHERE id = 1) "
        "BEGIN INSERT OR IGNORE INTO captured_search_gone (id, bin_id) "
        "VALUES (old.id, old.bin_id); END"
    )


@migrations()
def m004_response_rules_and_forwarding(db: Database) -> None:
    # rules: the ordered rules as JSON; rules_state: their counts and how many draws of the
    # seeded sequence were used ({"counts": [...], "draws": n}, NULL: fresh), written in the
    # same transaction as the capture that changed it; rules_version moves on every change
    # or reset, so a process holding an older state in memory knows to drop it.
    db.execute("ALTER TABLE bins ADD COLUMN rules TEXT NOT NULL DEFAULT '[]'")
    db.execute("ALTER TABLE bins ADD COLUMN rules_seed INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE bins ADD COLUMN rules_version INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE bins ADD COLUMN rules_state TEXT")
    db.execute("ALTER TABLE bins ADD COLUMN forward TEXT")
    db.execute("ALTER TABLE captured_requests ADD COLUMN answered_by TEXT")
    db.execute("ALTER TABLE captured_requests ADD COLUMN forward TEXT")
    # Async forwards waiting to be sent: written with the capture, deleted once sent, so a
    # restart resends what was not. No foreign key: an evicted request is still sent (m005).
    db.execute(
        """
        CREATE TABLE pending_forwards (
            request_id INTEGER PRIMARY KEY,
            bin_id TEXT NOT NULL,
            forward TEXT NOT NULL,
            tries INTEGER NOT NULL DEFAULT 0,
            due_at INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX pending_forwards_due ON pending_forwards (due_at, request_id)")


@migrations()
def m005_forwards_outlive_eviction(db: Database) -> None:
    # A captured request evicted (or cleared) while its async forward waits is copied here, so
    # the forward still goes out: the app gets every request, whatever the bin keeps. The
    # columns stay NULL while the request is in the bin (the usual case: nothing copied).
    for column in ("method", "subpath", "query_string", "headers", "body", "truncated"):
        db.execute(f"ALTER TABLE pending_forwards ADD COLUMN {column}")  # noqa: S608
    db.execute(
        "CREATE TRIGGER captured_requests_keep_forward AFTER DELETE ON captured_requests "
        "WHEN EXISTS (SELECT 1 FROM pending_forwards WHERE request_id = old.id) "
        "BEGIN UPDATE pending_forwards SET method = old.method, subpath = old.subpath, "
        "query_string = old.query_string, headers = old.headers, body = old.body, "
        "truncated = old.truncated WHERE request_id = old.id; END"
    )


@migrations()
def m006_one_statement_captures(db: Database) -> None:
    # The capture path writes a batch of captured requests with one INSERT and nothing else
    # (bin_server/capture_writer.py): what used to be separate statements rides on the rows.
    # How many requests each bin keeps, kept right by every insert and delete, whoever makes
    # it: the capture writer's eviction trigger reads it instead of counting the bin's rows.
    # last_id: the newest row counted, so that trigger knows whether this row is counted yet
    # (the order in which triggers fire is not something SQLite promises).
    db.execute(
        "CREATE TABLE bin_request_counts ("
        "bin_id TEXT PRIMARY KEY, kept INTEGER NOT NULL, last_id INTEGER NOT NULL"
        ") WITHOUT ROWID"
    )
    db.execute(
        "INSERT INTO bin_request_counts (bin_id, kept, last_id) "
        "SELECT bin_id, count(*), max(id) FROM captured_requests GROUP BY bin_id"
    )
    db.execute(
        "CREATE TRIGGER captured_requests_count_in AFTER INSERT ON captured_requests "
        "BEGIN INSERT INTO bin_request_counts (bin_id, kept, last_id) "
        "VALUES (new.bin_id, 1, new.id) "
        "ON CONFLICT (bin_id) DO UPDATE SET kept = kept + 1, last_id = excluded.last_id; END"
    )
    db.execute(
        "CREATE TRIGGER captured_requests_count_out AFTER DELETE ON captured_requests "
        "BEGIN UPDATE bin_request_counts SET kept = kept - 1 WHERE bin_id = old.bin_id; END"
    )
    db.execute(
        "CREATE TRIGGER bins_count_gone AFTER DELETE ON bins "
        "BEGIN DELETE FROM bin_request_counts WHERE bin_id = old.id; END"
    )
    # rules_state: the bin's rule state after this capture ({"counts", "draws", "version",
    # "order"}), written on to the bin unless its rules changed or a newer state is there.
    db.execute("ALTER TABLE captured_requests ADD COLUMN rules_state TEXT")
    db.execute(
        "CREATE TRIGGER captured_requests_rules_state AFTER INSERT ON captured_requests "
        "WHEN new.rules_state IS NOT NULL BEGIN "
        "UPDATE bins SET rules_state = new.rules_state WHERE id = new.bin_id "
        "AND rules_version = json_extract(new.rules_state, '$.version') "
        "AND coalesce(json_extract(rules_state, '$.order'), -1) "
        "< json_extract(new.rules_state, '$.order'); END"
    )
    # forward_queued: the bin's forward setting when the request is to be forwarded async;
    # the queue entry is written with the row.
    db.execute("ALTER TABLE captured_requests ADD COLUMN forward_queued TEXT")
    db.execute(
        "CREATE TRIGGER captured_requests_queue_forward AFTER INSERT ON captured_requests "
        "WHEN new.forward_queued IS NOT NULL BEGIN "
        "INSERT OR REPLACE INTO pending_forwards (request_id, bin_id, forward, due_at) "
        "VALUES (new.id, new.bin_id, new.forward_queued, new.received_at); END"
    )


@migrations()
def m007_replays_sent_from(db: Database) -> None:
    # Who sent a replay: this server (the inspector, the API, an edited `hooklab replay`) or
    # the CLI from its own machine (an unedited `hooklab replay`, which reports it here).
    db.execute("ALTER TABLE replays ADD COLUMN sent_from TEXT NOT NULL DEFAULT 'server'")
