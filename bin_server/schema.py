"""The bin's tables, created and changed only by these migrations."""

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
