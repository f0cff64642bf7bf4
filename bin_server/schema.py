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


# The escapes found in real paths and queries (space, quotes, separators, `@` of an email, the
# `/` and `:` of a URL). Each decodes to punctuation, a word break for the full-text tokenizer,
# so a space does to the words what decoding would. (SQLite's parser limits the nesting depth,
# so not every escape can be listed; other escapes stay as they arrived.)
_ESCAPED = " \"#%&'+,/:;=?@[]"


def _decoded(expr: str) -> str:
    """SQL for `expr` with its ASCII punctuation escapes (`%2c`, `+`) read as word breaks."""
    expr = f"replace(lower({expr}), '+', ' ')"
    for char in _ESCAPED:
        expr = f"replace({expr}, '%{ord(char):02x}', ' ')"
    return expr


# Bodies that are not text are not indexed: their bytes would only make noise words.
_BINARY_TYPES = (
    "image/%",
    "audio/%",
    "video/%",
    "font/%",
    "application/octet-stream%",
    "application/zip%",
    "application/gzip%",
    "application/pdf%",
)


def _search_values(row: str) -> str:
    """The SQL values of one captured request's search row (`row` is `new` or `old`)."""
    text_body = " AND ".join(
        f"lower(coalesce({row}.content_type, '')) NOT LIKE '{kind}'" for kind in _BINARY_TYPES
    )
    headers = (
        f"CASE WHEN json_valid({row}.headers) THEN (SELECT group_concat("  # noqa: S608
        f"json_extract(value, '$[1]'), ' ') FROM json_each({row}.headers)) END"
    )
    return (
        f"{row}.id, {row}.bin_id, {_decoded(f'{row}.subpath')}, "
        f"{_decoded(f'{row}.query_string')}, {headers}, "
        f"CASE WHEN {text_body} THEN CAST({row}.body AS TEXT) END"
    )


SEARCH_COLUMNS = "bin_id, subpath, query, headers, body"


@migrations()
def m003_request_search(db: Database) -> None:
    # Full-text index of what `q` searches (bench/search.py measured it against a plain scan).
    # Contentless: the text stays in captured_requests only; triggers written in SQL keep the
    # index in step with every writer, whichever connection or process it is.
    db.execute(
        f"CREATE VIRTUAL TABLE captured_search USING fts5({SEARCH_COLUMNS}, content='', "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    # Fixed SQL, built from this module's constants only (no value from outside).
    insert = f"INSERT INTO captured_search (rowid, {SEARCH_COLUMNS}) VALUES "  # noqa: S608
    delete = f"INSERT INTO captured_search (captured_search, rowid, {SEARCH_COLUMNS}) VALUES "  # noqa: S608
    db.execute(
        "CREATE TRIGGER captured_requests_search_insert AFTER INSERT ON captured_requests "
        f"BEGIN {insert}({_search_values('new')}); END"
    )
    db.execute(
        "CREATE TRIGGER captured_requests_search_delete AFTER DELETE ON captured_requests "
        f"BEGIN {delete}('delete', {_search_values('old')}); END"
    )
    db.execute(
        "CREATE TRIGGER captured_requests_search_update AFTER UPDATE OF "
        "bin_id, subpath, query_string, headers, content_type, body ON captured_requests "
        f"BEGIN {delete}('delete', {_search_values('old')}); "
        f"{insert}({_search_values('new')}); END"
    )
    db.execute(
        f"INSERT INTO captured_search (rowid, {SEARCH_COLUMNS}) "  # noqa: S608 (fixed SQL)
        f"SELECT {_search_values('captured_requests')} FROM captured_requests"
    )
