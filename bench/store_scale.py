"""Store scale: 1,000,000 captured requests across 1,000 bins, against an empty store.

The full store is filled directly with SQL (one INSERT ... SELECT, bins taking turns as real
traffic would) and indexed for search (as a store filled through the capture path is), then:
- capture throughput (wrk, as in bench/capture.py) into one of those full bins (so every
  capture also evicts), side by side with an empty store: the two servers started together,
  wrk going from one to the next in short runs, each server's search indexer caught up after
  its run; judged on the median of the rounds' ratios;
- the list API (`GET /api/bins/<id>/requests`, the default page and `limit=1000`) and the
  inspector page (`GET /bins/<id>`) of a bin holding 1,000 requests: the median and p95 of
  sequential requests after a warm-up.
Targets: throughput within 10 % of the empty store; list API and inspector p95 <= 50 ms.

Usage: python bench/store_scale.py [--seconds 3] [--rounds 4] [--requests 1000000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

BINS = 1000
CONNECTIONS = 16
TIMED_GETS = 40

FILL = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
INSERT INTO captured_requests (bin_id, received_at, method, path, subpath, query_string,
    headers, http_version, remote_addr, content_type, body, body_size, truncated)
SELECT b.id, ? + n.i, 'POST', '/b/' || b.id, '', '', ?, 'HTTP/1.1', '127.0.0.1',
    'application/json', CAST(? AS BLOB), 120, 0
FROM n JOIN numbered_bins b ON b.k = n.i % ?
"""


def fill(db: str, total: int) -> list[str]:
    """Create BINS bins and `total` captured requests spread over them; returns the bin ids."""
    from hooklab.app.factory import open_store
    from hooklab.bin_server.bins import new_bin_id

    open_store(db).migrate()
    bin_ids = [new_bin_id() for _ in range(BINS)]
    headers = json.dumps([["Host", "127.0.0.1:8000"], ["Content-Type", "application/json"]])
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous = OFF")  # set-up only: the timed parts use the defaults
    now = int(time.time() * 1000)
    with conn:
        conn.executemany(
            "INSERT INTO bins (id, name, created_at) VALUES (?, ?, ?)",
            [(bin_id, f"bench {i}", now) for i, bin_id in enumerate(bin_ids)],
        )
        conn.execute("CREATE TEMP TABLE numbered_bins (k INTEGER PRIMARY KEY, id TEXT)")
        conn.executemany("INSERT INTO numbered_bins VALUES (?, ?)", list(enumerate(bin_ids)))
        conn.execute(FILL, (total, now - total, headers, common.BODY_120.encode(), BINS))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return bin_ids


def index_filled(db: str) -> float:
    """Index what `fill` stored for search, as common.index_for_setup would (the same
    transactions of SETUP_INDEX_BATCH requests), in SQL; returns the seconds.

    fill's requests differ only in their id and bin: each one's searched text is the first
    one's (bin_server/search.py `searched_text`) with its bin. What Python did for each of the
    1,000,000 (decoding the headers, reading the body) was two thirds of the 50 s this took.
    Checked after, on a sample, against `searched_text` of each request.
    """
    from hooklab.bin_server.schema import SEARCH_TABLES, search_table
    from hooklab.bin_server.search import searched_text

    started = time.monotonic()
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    first = dict(conn.execute("SELECT * FROM captured_requests ORDER BY id LIMIT 1").fetchone())
    texts = dict(searched_text(first))
    shared = ("headers", "body", "content_type", "subpath", "query_string")
    if conn.execute(
        f"SELECT count(*) FROM captured_requests WHERE ({', '.join(shared)}) IS NOT "  # noqa: S608
        f"(SELECT {', '.join(shared)} FROM captured_requests WHERE id = ?)",
        (first["id"],),
    ).fetchone()[0]:
        raise RuntimeError("index_filled: the store holds requests fill() did not write")
    conn.execute("CREATE TEMP TABLE shards (bin_id TEXT PRIMARY KEY, shard INTEGER NOT NULL)")
    bin_ids = [row[0] for row in conn.execute("SELECT DISTINCT bin_id FROM captured_requests")]
    conn.executemany(
        "INSERT INTO shards VALUES (?, ?)",
        [(bin_id, SEARCH_TABLES.index(search_table(bin_id))) for bin_id in bin_ids],
    )
    newest = conn.execute("SELECT max(id) FROM captured_requests").fetchone()[0]
    low = conn.execute("SELECT indexed_up_to FROM captured_search_state").fetchone()[0]
    conn.execute("CREATE TEMP TABLE batch (id INTEGER PRIMARY KEY, bin_id TEXT, shard INTEGER)")
    conn.execute("CREATE INDEX temp.batch_shard ON batch (shard, id)")
    while low < newest:
        high = min(low + common.SETUP_INDEX_BATCH, newest)
        with conn:
            conn.execute("DELETE FROM temp.batch")
            conn.execute(
                "INSERT INTO temp.batch SELECT r.id, r.bin_id, s.shard FROM captured_requests r "
                "JOIN temp.shards s ON s.bin_id = r.bin_id WHERE r.id > ? AND r.id <= ?",
                (low, high),
            )
            for number, table in enumerate(SEARCH_TABLES):  # table: a fixed name
                conn.execute(
                    f"INSERT INTO {table} (rowid, bin_id, subpath, query, headers, body) "  # noqa: S608
                    "SELECT id, bin_id, ?, ?, ?, ? FROM temp.batch WHERE shard = ?",
                    (texts["path"], texts["query"], texts["headers"], texts["body"], number),
                )
            conn.execute("UPDATE captured_search_state SET indexed_up_to = ?", (high,))
        low = high
    for request_id in range(first["id"], newest + 1, max(1, (newest - first["id"]) // 200)):
        row = dict(
            conn.execute("SELECT * FROM captured_requests WHERE id = ?", (request_id,)).fetchone()
        )
        table = search_table(row["bin_id"])
        indexed = conn.execute(
            f"SELECT subpath, query, headers, body FROM {table} WHERE rowid = ?",  # noqa: S608
            (request_id,),
        ).fetchone()
        if tuple(indexed) != tuple(text for _, text in searched_text(row)):
            raise RuntimeError(f"index_filled: request {request_id} indexed otherwise")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.monotonic() - started


def timed_gets(url: str, count: int = TIMED_GETS) -> dict:
    """Median and p95 of `count` sequential GETs (after two untimed ones)."""
    session = requests.Session()
    for _ in range(2):
        session.get(url, timeout=30).raise_for_status()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        response = session.get(url, timeout=30)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    session.close()
    return {
        "count": count,
        "p50_ms": common.percentile(times, 50),
        "p95_ms": common.percentile(times, 95),
        "max_ms": max(times),
        "bytes": len(response.content),
    }


def capture_side_by_side(dbs: dict[str, tuple[str, str]], script: str, seconds: int, rounds: int):
    """Capture rates of servers on each store (name: (database, bin)), started together; wrk
    goes from one to the next, `rounds` times (the order flips every round). After each run the
    server's search indexer catches up, so that its work never lands in the other's run."""
    with ExitStack() as stack:
        urls = {}
        for name, (db, bin_id) in dbs.items():
            port = common.free_port()
            server = stack.enter_context(
                common.running(common.hooklab_serve(db, port), port, "/api/health", timeout=60)
            )
            urls[name] = f"{server.url}/b/{bin_id}"
        for name, (db, _) in dbs.items():
            common.run_wrk(urls[name], 1, CONNECTIONS, script=script)  # warm-up
            common.caught_up(db)

        def settled(name: str, _result) -> str:
            return f"indexed {common.settle(dbs[name][0]):.1f} s later"

        return common.alternate(urls, script, seconds, rounds, "store", settled)


def main(seconds: int = 3, rounds: int = 4, total: int = 1_000_000) -> dict:
    """Run the benchmark; returns (and saves) its result."""
    common.ensure_wrk()
    with common.temp_dir() as folder:
        script = common.post_script(folder)
        full_db = str(folder / "full.db")
        started = time.monotonic()
        bin_ids = fill(full_db, total)
        fill_s = time.monotonic() - started
        # A store that grew through the capture path is indexed for search as it goes (the
        # indexer keeps up once captures pause): index this one before anything is timed, or
        # the server spends the timed runs indexing a backlog of 1,000,000 instead.
        index_s = index_filled(full_db)
        # A copy kept before anything else writes to it, for bench/search.py (one build a run).
        common.keep_for_later(full_db, common.full_store_name(total))
        size_mb = Path(full_db).stat().st_size / 1e6
        print(
            f"store: {total} requests in {BINS} bins, {size_mb:.0f} MB, filled in {fill_s:.0f} s,"
            f" indexed for search in {index_s:.0f} s"
        )
        with sqlite3.connect(full_db) as conn:
            stored = conn.execute("SELECT count(*) FROM captured_requests").fetchone()[0]
        port = common.free_port()
        with common.running(common.hooklab_serve(full_db, port), port, "/api/health") as server:
            probe = bin_ids[1]
            reads = {
                "list_default": timed_gets(f"{server.url}/api/bins/{probe}/requests"),
                "list_1000": timed_gets(f"{server.url}/api/bins/{probe}/requests?limit=1000"),
                "inspector": timed_gets(f"{server.url}/bins/{probe}"),
                "bins_list_all_1000": timed_gets(f"{server.url}/api/bins", 5),
            }
        empty_db = str(folder / "empty.db")
        stores = {"empty": (empty_db, common.new_bin(empty_db)), "full": (full_db, bin_ids[0])}
        side = common.paired(capture_side_by_side(stores, script, seconds, rounds), "full", "empty")
    medians = side["median_rps"]
    result = {
        "requests_stored": stored,
        "bins": BINS,
        "db_mb": round(size_mb),
        "fill_s": round(fill_s, 1),
        "index_s": round(index_s, 1),
        "seconds": seconds,
        "rounds": rounds,
        "rates": side["rates"],
        "median_rps": medians,
        "ratios": side["ratios"],
        "ratio_full_empty": side["ratio_median"],
        "reads": reads,
    }
    result["passed"] = {
        "throughput": result["ratio_full_empty"] >= 0.9,
        "list_default": reads["list_default"]["p95_ms"] <= 50,
        "list_1000": reads["list_1000"]["p95_ms"] <= 50,
        "inspector": reads["inspector"]["p95_ms"] <= 50,
    }
    common.write_result("store_scale", result)
    print(
        f"store: full {medians['full']:.0f}/s vs empty {medians['empty']:.0f}/s (medians) "
        f"(x{result['ratio_full_empty']:.2f}); p95: list {reads['list_default']['p95_ms']:.1f} ms "
        f"(limit=1000: {reads['list_1000']['p95_ms']:.1f} ms), inspector "
        f"{reads['inspector']['p95_ms']:.1f} ms",
        flush=True,
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=1_000_000)
    args = parser.parse_args()
    main(args.seconds, args.rounds, args.requests)
