"""The SQLite store: one sqlite-utils Database per thread, WAL mode, schema by migrations."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils
from sqlite_utils.migrations import Migrations

import hooklab.shared
from hooklab.shared.notify import Notifier

BUSY_TIMEOUT_MS = 5000
MAX_ROW_ID = 2**63 - 1  # the largest integer SQLite holds; a larger one overflows sqlite3


class StoreError(RuntimeError):
    """The database file cannot be used; the message says why in a user's words."""


def is_busy(exc: BaseException) -> bool:
    """Whether a sqlite3 error means another connection held the lock past the busy timeout."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def is_full(exc: BaseException) -> bool:
    """Whether a sqlite3 error means the disk holding the database is full."""
    return isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc).lower()


DISK_FULL_MESSAGE = (
    "The disk holding the database is full: nothing more can be stored until space is freed "
    "(what was answered before is kept)."
)


WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes the WAL file keeps after a checkpoint


def refuse_a_foreign_database(conn: sqlite3.Connection, path: str) -> None:
    """StoreError when `path` holds another program's tables and none of Hooklab's: its
    migrations would add ~100 tables to someone else's database."""
    names = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    if names and "_sqlite_migrations" not in names:
        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        raise StoreError(
            f"{path} is a database of another program (tables: {shown}), not Hooklab's; "
            "Hooklab adds nothing to it. Give another --db."
        )


def refuse_a_newer_schema(db: sqlite_utils.Database, known: list[Migrations], path: str) -> None:
    """StoreError when the file was brought up to a schema this version does not know (a newer
    Hooklab used it): running on it could misread or break what the newer one wrote."""
    if "_sqlite_migrations" not in db.table_names():
        return
    ours = {m.name: {step.name for step in m._migrations} for m in known}
    for migration_set, name in db.execute("SELECT migration_set, name FROM _sqlite_migrations"):
        if migration_set in ours and name not in ours[migration_set]:
            raise StoreError(
                f"{path} was used by a newer Hooklab (its schema has {migration_set} {name}, "
                f"unknown to Hooklab {hooklab.shared.__version__}): run that version, "
                "or give another --db."
            )


def explain(path: str, exc: BaseException) -> str:
    """What a sqlite3 error on opening or migrating `path` means, in one line for a person."""
    text = str(exc)
    lowered = text.lower()
    where = Path(path)
    if is_busy(exc):
        why = (
            f"the database is locked by another program (waited {BUSY_TIMEOUT_MS / 1000:g} s); "
            "try again once it is done"
        )
    elif "readonly" in lowered or "read-only" in lowered:
        why = (
            "the file or its folder is read-only; Hooklab writes the database and the "
            "-wal and -shm files beside it"
        )
    elif "unable to open" in lowered and where.is_dir():
        why = "this is a folder, not a database file"
    elif "unable to open" in lowered and not where.parent.is_dir():
        why = f"the folder {where.parent} does not exist"
    elif "unable to open" in lowered:
        why = "the file cannot be opened or created here (is its folder writable?)"
    elif "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        why = f"this file is not a usable SQLite database ({text}); use another --db file"
    else:
        why = text
    return f"{path}: {why}"


T = TypeVar("T")


class _WriteTurn:
    """`Store.writing()`: a plain context manager, as the capture path takes it every commit."""

    __slots__ = ("lock",)

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock

    def __enter__(self) -> None:
        if not self.lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise sqlite3.OperationalError("database is locked (waited for this process's turn)")

    def __exit__(self, *exc_info: object) -> None:
        self.lock.release()


class Store:
    """The database file, opened once per thread (a connection belongs to its thread).

    An app owns one Store, and what must live as long as the app (its write lock, its
    notifiers, caches and live feeds: `attached`) hangs off it, never off a module, so two apps
    in one process share nothing. Each half hands in its own migrations (`app/` wires them).
    """

    def __init__(self, path: str | Path, migrations: Sequence[Migrations] = ()) -> None:
        self.path = str(path)
        self.migrations = list(migrations)
        self._local = threading.local()
        self.write_lock = threading.Lock()
        self._turn = _WriteTurn(self.write_lock)
        self._attached: dict[str, Any] = {}
        # Re-entrant: what `make()` builds may itself be attached things (a queue that keeps
        # a notifier), made under the same guard by the same thread.
        self._attached_guard = threading.RLock()
        self._checked_ours = False  # the file is not another program's (first connection)

    def attached(self, key: str, make: Callable[[], T]) -> T:
        """The object kept under `key` for as long as this store, made by `make()` on first use."""
        found = self._attached.get(key)
        if found is None:
            with self._attached_guard:
                found = self._attached.get(key)
                if found is None:
                    found = self._attached[key] = make()
        return found

    def notifier(self, topic: str) -> Notifier:
        """The notifier of `topic` ("captures", "deliveries") for the writers of this store."""
        return self.attached("notifier:" + topic, Notifier)

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's Database, opened on first use."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._open()
            self._local.db = db
        return db

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's raw sqlite3 connection, for the hot paths."""
        return self.db.conn

    def connect(self, check_same_thread: bool = True) -> sqlite3.Connection:
        """A new connection with the store's settings, owned (and closed) by the caller."""
        return self._open(check_same_thread).conn

    def _open(self, check_same_thread: bool = True) -> sqlite_utils.Database:
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=check_same_thread
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not self._checked_ours:
                # Before anything is changed in it (WAL mode is kept in the file).
                refuse_a_foreign_database(conn, self.path)
                self._checked_ours = True
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal" and self.path != ":memory:":
                raise StoreError(f"{self.path}: could not switch the database to WAL mode")
            # WAL + NORMAL: a committed transaction survives a process crash (kill -9);
            # only a power loss may lose the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            # A burst of big bodies grows the WAL; once checkpointed it is cut back to this
            # (SQLite otherwise keeps the file at its largest size for good).
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(explain(self.path, exc)) from None
        return sqlite_utils.Database(conn)

    def migrate(self) -> None:
        """Bring the schema up to date and check the file can be written; StoreError if not.

        Safe to call from several processes at once: the write lock is taken first, so one
        migrates while the others wait (up to the busy timeout), then find nothing to do.
        """
        try:
            with self.atomic() as db:
                refuse_a_newer_schema(db, self.migrations, self.path)
                for migrations in self.migrations:
                    migrations.apply(db)
                # SQLite opens a file it may not write read-only and says nothing until the
                # first write; find out now, not at the first capture. (Deletes nothing.)
                db.execute("DELETE FROM _sqlite_migrations WHERE 0")
        except sqlite3.DatabaseError as exc:
            raise StoreError(explain(self.path, exc)) from None

    @contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction on this thread's connection, taking the write lock up front.

        sqlite-utils' own atomic() starts a deferred transaction; one that reads first (as
        `table.insert` does) and then writes fails at once with "database is locked" when another
        connection committed in between, without waiting for the busy timeout. BEGIN IMMEDIATE
        makes it wait its turn instead. Nested calls become savepoints.
        """
        db = self.db
        if db.conn.in_transaction:
            with db.atomic():
                yield db
            return
        with self.writing():
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.conn.in_transaction:
                    db.conn.rollback()
                raise
            else:
                db.conn.commit()

    def writing(self) -> _WriteTurn:
        """Hold this process's turn to write the file (around a write transaction): `with`.

        A thread that finds SQLite's write lock taken sleeps in the busy handler, in steps of
        up to 100 ms, even when the lock is freed a moment later; 16 delivery workers lost a
        fifth of their time there (docs/benchmarks.md). Writers of this process queue here
        instead and wake the moment the one before them is done. Waiting longer than the busy
        timeout is "database is locked", as SQLite would say.
        """
        return self._turn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """`atomic()` handing over the raw connection, for the hot paths written in SQL."""
        with self.atomic() as db:
            yield db.conn

    def close(self) -> None:
        """Close this thread's connection (other threads keep theirs)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """All rows of a query as dicts."""
    cur = conn.execute(sql, params)
    names = [c[0] for c in cur.description]
    return [dict(zip(names, found, strict=True)) for found in cur.fetchall()]


def row(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
    """The first row of a query as a dict, or None."""
    cur = conn.execute(sql, params)
    found = cur.fetchone()
    if found is None:
        return None
    return dict(zip([c[0] for c in cur.description], found, strict=True))


def row_id(value: object) -> int | None:
    """`value` as a row id SQLite can hold (1 to 2^63-1), or None: no row can have it.

    Text (an id from a URL path) is plain ASCII digits only, as an id in a query string
    (shared/params.py: at most 30 digits, leading zeros allowed); int() alone would also take
    "+1", " 1", "1_0" or other scripts' digits ("١", "１"), giving one row many addresses.
    """
    if isinstance(value, str):
        if len(value) > 30 or not (value.isascii() and value.isdigit()):
            return None
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        return None
    return number if 0 < number <= MAX_ROW_ID else None
