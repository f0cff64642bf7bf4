"""What SQLite costs a capture, in process: the capture writer alone, one row per commit.

Fills a bin of a scratch database past its limit (the steady state: every capture evicts the
bin's oldest), then times single-row commits through `CaptureWriter.write` on one thread:
CPU time of the thread and wall time, per commit. Variants drop parts of the schema of that
scratch database, to see what each part costs (docs/benchmarks.md, "What bounds the targets
that are not met"). Not part of `make bench`; run it by hand:

    .venv/bin/python bench/commit_cost.py [--commits 2000] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

KEEP = 1000
BODY = json.dumps(
    {"event": "payment.received", "data": {"amount": 1000, "currency": "usd", "id": "pay_1"}}
).encode()
HEADERS = json.dumps([["Host", "127.0.0.1:8000"], ["Content-Type", "application/json"]])
# Each variant: the statements run on the scratch database before timing (schema names only).
VARIANTS = {
    "as it is": [],
    "no search-gone trigger": ["DROP TRIGGER captured_requests_search_gone"],
    "no eviction (count kept)": ["DROP TRIGGER temp.capture_evict"],
    "no eviction, no count": [
        "DROP TRIGGER temp.capture_evict",
        "DROP TRIGGER captured_requests_count_in",
        "DROP TRIGGER captured_requests_count_out",
    ],
}


def measure(folder: Path, name: str, commits: int, reps: int) -> dict:
    from hooklab.app.factory import open_store
    from hooklab.bin_server.bins import create_bin
    from hooklab.bin_server.capture_writer import CaptureWriter

    store = open_store(str(folder / f"{len(list(folder.iterdir()))}.db"))
    store.migrate()
    bin_id = create_bin(store, {})["id"]
    writer = CaptureWriter(store, KEEP)
    conn = writer._connection()  # the writer's own: its TEMP trigger lives there

    def row() -> tuple:
        path = f"/b/{bin_id}"
        return (bin_id, int(time.time() * 1000), "POST", path, "", "", HEADERS, "HTTP/1.1",
                "127.0.0.1", "application/json", BODY, len(BODY), 0, "{}")  # fmt: skip

    for _ in range(KEEP + 200):
        writer.write(row())
    for statement in VARIANTS[name]:
        conn.execute(statement)

    def indexed() -> None:  # as the search indexer would have it: everything indexed
        conn.execute(
            "UPDATE captured_search_state SET indexed_up_to = "
            "(SELECT max(id) FROM captured_requests)"
        )

    cpu, wall = [], []
    for _ in range(reps):
        indexed()
        c0, t0 = time.thread_time(), time.perf_counter()
        for _ in range(commits):
            writer.write(row())
        c1, t1 = time.thread_time(), time.perf_counter()
        cpu.append((c1 - c0) / commits * 1e6)
        wall.append((t1 - t0) / commits * 1e6)
    store.close()
    return {"cpu_us": statistics.median(cpu), "wall_us": statistics.median(wall)}


def main(commits: int, reps: int) -> None:
    with common.temp_dir() as folder:
        for name in VARIANTS:
            got = measure(folder, name, commits, reps)
            print(
                f"{name:26} {got['cpu_us']:6.0f} µs CPU, {got['wall_us']:6.0f} µs wall "
                f"a commit (medians of {reps} runs of {commits})",
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    main(args.commits, args.reps)
