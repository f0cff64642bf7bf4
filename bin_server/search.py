"""Search a bin's captured requests: `q` (words, prefixes, "phrases"), `method` and `path`.

`q` runs on a full-text index (`captured_search`, kept in step by triggers: bin_server/schema.py)
over the subpath, the query (its common escapes decoded), header values and text bodies.
bench/search.py measured it against a plain scan: see docs/benchmarks.md. Whatever a person
types is a valid `q`: every word goes to the index quoted, so no full-text syntax gets through.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from urllib.parse import unquote, unquote_plus

from hooklab.bin_server import captured
from hooklab.shared.store import rows

# A quoted phrase (its closing quote may be missing) or a run of anything but spaces.
TERM = re.compile(r'"([^"]*)"?|(\S+)')
# A letter or digit: what the index's tokenizer keeps as part of a word.
WORD = re.compile(r"[^\W_]+")
SEARCHED_COLUMNS = "{subpath query headers body}"
SNIPPET_CONTEXT = 40  # characters shown either side of a match
BATCH = 200  # rows read at a time while a `path` filter is applied in Python


def terms(q: str) -> list[tuple[list[str], bool]]:
    """The words of each term of `q`, and whether the last word may be a prefix (not quoted)."""
    found = []
    for phrase, bare in TERM.findall(q or ""):
        words = WORD.findall(phrase if phrase else bare)
        if words:
            found.append((words, not phrase))
    return found


def fts_query(bin_id: str, q: str) -> str | None:
    """The MATCH expression for `q` within one bin, or None when `q` has no words."""
    parts = []
    for words, prefix in terms(q):
        parts.append('"' + " ".join(words) + '"' + ("*" if prefix else ""))
    if not parts:
        return None
    quoted_bin = '"' + bin_id.replace('"', '""') + '"'
    return f"bin_id : {quoted_bin} AND {SEARCHED_COLUMNS} : ({' AND '.join(parts)})"


def find(
    conn: sqlite3.Connection,
    bin_id: str,
    *,
    q: str = "",
    method: str = "",
    path_filter: Callable[[str], bool] | None = None,
    after: int = 0,
    before: int,
    limit: int,
) -> list[dict]:
    """Summary rows of the bin's requests that match, newest first, at most `limit`."""
    where = ["bin_id = ?", "id > ?", "id < ?"]
    params: list = [bin_id, after]
    if method:
        where.append("method = ? COLLATE NOCASE")
    match = fts_query(bin_id, q) if q else None
    if match is not None:
        where.append("id IN (SELECT rowid FROM captured_search WHERE captured_search MATCH ?)")
    sql = (
        f"SELECT {captured.SUMMARY_COLUMNS} FROM captured_requests "  # noqa: S608 (fixed SQL)
        f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
    )

    def page(upper: int, count: int) -> list[dict]:
        params_now = [*params, upper]
        if method:
            params_now.append(method)
        if match is not None:
            params_now.append(match)
        return rows(conn, sql, [*params_now, count])

    if path_filter is None:
        return page(before, limit)
    found: list[dict] = []
    upper = before
    while len(found) < limit:
        batch = page(upper, max(limit, BATCH))
        found.extend(r for r in batch if path_filter(r["subpath"]))
        if len(batch) < max(limit, BATCH):
            break
        upper = batch[-1]["id"]
    return found[:limit]


def searched_text(row: dict) -> list[tuple[str, str]]:
    """What `q` searches in one stored request, as (where, text) pairs."""
    parts = [
        ("path", unquote(row.get("subpath") or "")),
        ("query", unquote_plus(row.get("query_string") or "")),
    ]
    try:
        headers = json.loads(row.get("headers") or "[]")
        parts.append(("headers", "\n".join(f"{name}: {value}" for name, value in headers)))
    except (ValueError, TypeError):
        pass
    text = captured.body_text(row.get("body") or b"")
    if text:
        parts.append(("body", text))
    return parts


def snippet(row: dict, q: str) -> dict | None:
    """Where the first term of `q` shows in a request: `{in, before, text, after}`, or None."""
    found = terms(q)
    if not found:
        return None
    words, prefix = found[0]
    pattern = r"(?<![^\W_])" + r"[\W_]+".join(map(re.escape, words))
    if not prefix:
        pattern += r"(?![^\W_])"
    regex = re.compile(pattern, re.IGNORECASE)
    for where, text in searched_text(row):
        hit = regex.search(text)
        if hit is None:
            continue
        start, end = hit.span()
        before = text[max(0, start - SNIPPET_CONTEXT) : start]
        after = text[end : end + SNIPPET_CONTEXT]
        return {
            "in": where,
            "before": ("…" if start > SNIPPET_CONTEXT else "") + before,
            "text": hit.group(0),
            "after": after + ("…" if end + SNIPPET_CONTEXT < len(text) else ""),
        }
    return None
