"""Small helpers over this thread's sqlite3 connection: write transactions and rows as dicts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from hooklab.shared.store import Store


@contextmanager
def write_transaction(store: Store) -> Iterator[sqlite3.Connection]:
    """One transaction that takes the write lock up front (the store's BEGIN IMMEDIATE).

    Taking the lock first makes read-then-update sequences (claiming a delivery) atomic, and
    makes concurrent writers wait their turn instead of failing with "database is locked".
    """
    with store.atomic() as db:
        yield db.conn


def rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """All rows of a query as dicts."""
    cur = conn.execute(sql, params)
    names = [c[0] for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def row(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
    """The first row of a query as a dict, or None."""
    cur = conn.execute(sql, params)
    found = cur.fetchone()
    if found is None:
        return None
    return dict(zip([c[0] for c in cur.description], found, strict=True))
