"""Search a bin's captured requests: `q` (words, prefixes, "phrases"), `method` and `path`.

`q` searches the subpath and the query (percent-decoded), header values and text bodies, by
words and word prefixes, in any case; a quoted phrase matches its words in order. Requests
the background indexer (search_index.py) has reached are found through the full-text index
(`captured_search_NN`, split by bin); the newest ones it has not reached yet are read and
matched here, by the same rules, so a search never misses a request. bench/search.py measured
both ways against a plain scan: see docs/benchmarks.md.

Whatever a person types is a valid `q`: words are taken out of it and each goes to the index
quoted, so no full-text syntax gets through, and none can cause an error. A `q` with no words
at all ("€", "✓", "->") is looked for as typed, in any case, by reading the bin's requests
(the index holds only words); beside words, symbols are left out.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sqlite3
import unicodedata
from collections.abc import Callable
from functools import cache
from itertools import chain
from urllib.parse import unquote, unquote_plus

from hooklab.bin_server import captured
from hooklab.bin_server.schema import SEARCH_TOKENIZER, search_table
from hooklab.shared.store import rows

# A quoted phrase (its closing quote may be missing) or a run of anything but spaces.
TERM = re.compile(r'"([^"]*)"?|(\S+)')
SEARCHED_COLUMNS = "{subpath query headers body}"
SNIPPET_CONTEXT = 40  # characters shown either side of a match
BATCH = 200  # rows read at a time when matching here
# Of a body, the first this many characters are searched (here and in the index alike): a
# 10 MiB body indexed whole held the write lock for seconds, and captures waited behind it.
MAX_SEARCHED_BODY = 256 * 1024
# A summary, and as much of the body as is searched (at most 4 bytes a character).
SEARCH_COLUMNS = f"{captured.SUMMARY_COLUMNS}, substr(body, 1, {MAX_SEARCHED_BODY * 4}) AS body"
# Bodies of these types are not searched: their bytes would only make noise words.
BINARY_TYPES = ("image/", "audio/", "video/", "font/", "application/octet-stream",
                "application/zip", "application/gzip", "application/pdf")  # fmt: skip

Term = tuple[list[str], bool]  # the words of a term, and whether the last is a prefix


@cache
def _kept_marks() -> str:
    r"""The combining marks the index's tokenizer keeps inside a word, as a regex class body.

    A word is letters and digits (`[^\W_]`) and, as FTS5's unicode61 has it, 809 combining
    marks: the combining accents (`cafe` + U+0301, text in NFD, is one word) and marks of
    scripts newer than its Unicode 6.1 tables; it splits words at the others (Devanagari's
    vowel signs, Arabic's vowel marks), as `[\W_]` does. Python's `\w` has no marks, so a word
    with a kept mark was two words here and one in the index: found before indexing and not
    after, or the other way round. Which marks are kept is asked of SQLite itself, once, on
    the first search (~0.1 s).
    """
    marks = [
        chr(code)
        for code in chain(range(0x300, 0x30000), range(0xE0100, 0xE01F0))
        if unicodedata.category(chr(code)).startswith("M")
    ]
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize='{SEARCH_TOKENIZER}')")
        conn.executemany("INSERT INTO t (x) VALUES (?)", [(f"a{mark}a",) for mark in marks])
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'row')")
        found = conn.execute("SELECT term FROM v").fetchall()
        kept = sorted(ord(term[1]) for (term,) in found if len(term) == 3)
    finally:
        conn.close()
    spans: list[list[int]] = []
    for code in kept:  # runs of consecutive marks as ranges: a shorter class
        if spans and spans[-1][1] == code - 1:
            spans[-1][1] = code
        else:
            spans.append([code, code])
    return "".join(f"\\U{a:08x}-\\U{b:08x}" if a < b else f"\\U{a:08x}" for a, b in spans)


@cache
def word_patterns() -> tuple[str, str]:
    """Regex pieces for one word character and one separator character, as the index splits."""
    marks = _kept_marks()
    if not marks:
        return r"[^\W_]", r"[\W_]"
    return rf"(?:[^\W_]|[{marks}])", rf"(?:(?![{marks}])[\W_])"


@cache
def _word() -> re.Pattern:
    return re.compile(word_patterns()[0] + "+")


@cache
def _word_char() -> re.Pattern:
    return re.compile(word_patterns()[0])


def terms(q: str) -> list[Term]:
    """The words of each term of `q`, and whether the last word may be a prefix (not quoted)."""
    found = []
    for phrase, bare in TERM.findall(q or ""):
        words = _word().findall(phrase if phrase else bare)
        if words:
            found.append((words, not phrase))
    return found


def literal_terms(q: str) -> list[str]:
    """The terms of a `q`, lower-cased, for a `q` that holds no words ("€", "✓", "->").

    Such a `q` has nothing the index knows: its terms are looked for as they are typed.
    """
    return [(phrase or bare).lower() for phrase, bare in TERM.findall(q or "") if phrase or bare]


def fts_query(bin_id: str, found: list[Term]) -> str:
    """The MATCH expression for the terms of a `q` within one bin."""
    parts = ['"' + " ".join(words) + '"' + ("*" if prefix else "") for words, prefix in found]
    quoted_bin = '"' + bin_id.replace('"', '""') + '"'
    return f"bin_id : {quoted_bin} AND {SEARCHED_COLUMNS} : ({' AND '.join(parts)})"


def searched_text(row: dict) -> list[tuple[str, str]]:
    """What `q` searches in one stored request, as (where, text) pairs."""
    parts = [
        ("path", unquote(row.get("subpath") or "")),
        ("query", unquote_plus(row.get("query_string") or "")),
    ]
    try:
        headers = json.loads(row.get("headers") or "[]")
        parts.append(("headers", "\n".join(str(value) for _, value in headers)))
    except (ValueError, TypeError):
        parts.append(("headers", ""))
    body = row.get("body") or b""
    content_type = (row.get("content_type") or "").lower()
    text = ""
    if body and not content_type.startswith(BINARY_TYPES):
        # A body that is not UTF-8 is searched for the text it holds, never an error.
        text = bytes(body[: MAX_SEARCHED_BODY * 4]).decode("utf-8", "replace")
        text = text[:MAX_SEARCHED_BODY]
    parts.append(("body", text))
    return parts


class Matcher:
    """The rules of `q` applied to text here, as the index applies them."""

    def __init__(self, found: list[Term]) -> None:
        self.terms = []
        word, separator = word_patterns()
        for words, prefix in found:
            lowered = [w.lower() for w in words]
            rest = "".join(separator + "+" + re.escape(w) for w in lowered[1:])
            end = "" if prefix else f"(?!{word})"
            follow = re.compile(rest + end) if rest or end else None
            self.terms.append((lowered[0], follow))

    def find(self, text: str, term_index: int = 0, lowered: str | None = None) -> tuple[int, int]:
        """Where a term starts and ends in `text` (at a word start), or (-1, -1)."""
        first, follow = self.terms[term_index]
        lowered = text.lower() if lowered is None else lowered
        position = lowered.find(first)
        while position != -1:
            if position == 0 or not _word_char().match(lowered, position - 1):
                end = position + len(first)
                if follow is None:
                    return position, end
                hit = follow.match(lowered, end)
                if hit:
                    return position, hit.end()
            position = lowered.find(first, position + 1)
        return -1, -1

    def matches(self, row: dict) -> bool:
        """Whether every term shows in one of the request's searched parts."""
        texts = [text.lower() for _, text in searched_text(row)]
        return all(
            any(self.find(text, index, text)[0] != -1 for text in texts)
            for index in range(len(self.terms))
        )


class LiteralMatcher(Matcher):
    """A `q` of symbols only: each term is looked for as typed, in any case, anywhere."""

    def __init__(self, literals: list[str]) -> None:
        self.terms = literals

    def find(self, text: str, term_index: int = 0, lowered: str | None = None) -> tuple[int, int]:
        """Where a term starts and ends in `text`, or (-1, -1)."""
        literal = self.terms[term_index]
        lowered = text.lower() if lowered is None else lowered
        position = lowered.find(literal)
        return (position, position + len(literal)) if position != -1 else (-1, -1)


def path_filter(pattern: str) -> Callable[[str], bool]:
    """A `path` glob on the subpath, as a rule's `match.path` (`*` spans `/`; `?`, `[...]`).

    The bin's own URL has the subpath "/"; a subpath matches as sent or percent-decoded.
    """
    if not pattern.startswith(("/", "*")):
        pattern = "/" + pattern
    regex = re.compile(fnmatch.translate(pattern))

    def matches(subpath: str) -> bool:
        path = subpath or "/"
        return bool(regex.match(path) or regex.match(unquote(path, errors="replace")))

    return matches


def indexed_up_to(conn: sqlite3.Connection) -> int:
    """Every captured request up to this id is in the full-text index."""
    found = conn.execute("SELECT indexed_up_to FROM captured_search_state WHERE id = 1").fetchone()
    return found[0] if found else 0


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
    found_terms = terms(q)
    if not found_terms:
        literals = literal_terms(q)
        if not literals:
            return _newest(conn, bin_id, method, path_filter, after, before, limit)
        # No words, so nothing the index holds: every request of the bin is read and matched.
        found = _newest(
            conn, bin_id, method, path_filter, after, before, limit,
            keep=LiteralMatcher(literals).matches, columns=SEARCH_COLUMNS,
        )  # fmt: skip
        return _summaries(found)
    upto = indexed_up_to(conn)
    # The newest requests, not indexed yet: matched here.
    matcher = Matcher(found_terms)
    found = _newest(
        conn,
        bin_id,
        method,
        path_filter,
        max(after, upto),
        before,
        limit,
        keep=matcher.matches,
        columns=SEARCH_COLUMNS,
    )
    if len(found) < limit and after < upto:
        table = search_table(bin_id)  # one of a fixed list of names
        match = (
            f"id IN (SELECT rowid FROM {table} WHERE {table} MATCH ?)",  # noqa: S608
            fts_query(bin_id, found_terms),
        )
        found += _newest(
            conn, bin_id, method, path_filter, after, min(before, upto + 1), limit - len(found),
            where=match,
        )  # fmt: skip
    return _summaries(found)


def _summaries(found: list[dict]) -> list[dict]:
    for row in found:  # summaries: the columns only FULL_COLUMNS has go
        row.pop("body", None)
        row.pop("forward", None)
    return found


def _newest(
    conn: sqlite3.Connection,
    bin_id: str,
    method: str,
    path_filter: Callable[[str], bool] | None,
    after: int,
    before: int,
    limit: int,
    keep: Callable[[dict], bool] | None = None,
    columns: str = captured.SUMMARY_COLUMNS,
    where: tuple[str, str] | None = None,
) -> list[dict]:
    """Rows of the bin between the ids, newest first, that pass the filters, at most `limit`."""
    clauses, params = ["bin_id = ?", "id > ?", "id < ?"], [bin_id, after]
    if method:
        clauses.append("method = ? COLLATE NOCASE")
    if where is not None:
        clauses.append(where[0])
    sql = (
        f"SELECT {columns} FROM captured_requests "  # noqa: S608 (fixed SQL)
        f"WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?"
    )
    filtered = path_filter is not None or keep is not None
    page_size = max(limit, BATCH) if filtered else limit
    found: list[dict] = []
    upper = before
    while len(found) < limit:
        extra = [method] if method else []
        if where is not None:
            extra.append(where[1])
        batch = rows(conn, sql, [*params, upper, *extra, page_size])
        for row in batch:
            if path_filter is not None and not path_filter(row["subpath"]):
                continue
            if keep is not None and not keep(row):
                continue
            found.append(row)
        if len(batch) < page_size:
            break
        upper = batch[-1]["id"]
    return found[:limit]


def snippet(row: dict, q: str) -> dict | None:
    """Where the first term of `q` shows in a request: `{in, before, text, after}`, or None."""
    found = terms(q)
    literals = [] if found else literal_terms(q)
    if not found and not literals:
        return None
    matcher = Matcher(found[:1]) if found else LiteralMatcher(literals[:1])
    for where, text in searched_text(row):
        start, end = matcher.find(text)
        if start == -1:
            continue
        while end < len(text) and unicodedata.category(text[end]).startswith("M"):
            end += 1  # a word's last letter with its marks (नमस्ते, not नमस्त)
        # Lower-casing can change a text's length (rarely): show the original where it holds.
        if len(text.lower()) != len(text):
            return {"in": where, "before": "", "text": text[:80], "after": ""}
        before = text[max(0, start - SNIPPET_CONTEXT) : start]
        after = text[end : end + SNIPPET_CONTEXT]
        return {
            "in": where,
            "before": ("…" if start > SNIPPET_CONTEXT else "") + before,
            "text": text[start:end],
            "after": after + ("…" if end + SNIPPET_CONTEXT < len(text) else ""),
        }
    return None
