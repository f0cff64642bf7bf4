"""Memory and start: resident memory after 100,000 captures; time to the first answer.

- Start: `hooklab serve` on a fresh database, from launching the command to the first answer
  of `GET /api/health` (polled every 5 ms); three starts, judged on the slowest.
- Memory: wrk POSTs the 120-byte body across 100 bins, in runs of 5 s until 100,000 captures
  are stored, then the server's memory is read from /proc: the RSS of gunicorn's
  worker (the process that serves and holds the app), of its master, and the PSS of both
  (shared pages counted once). Bodies live on disk, so memory must not grow with captures.
Targets: worker RSS <= 100 MB after 100,000 captures; first answer <= 1.5 s after start.

Usage: python bench/memory_start.py [--captures 100000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

BINS = 100
CONNECTIONS = 16
RUN_S = 5
MAX_RUNS = 60  # 5 minutes at most


def memory_kb(pid: int, field: str) -> int:
    """A field of /proc/<pid>/smaps_rollup (Rss, Pss) in kB."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def memory(master: int, worker: int) -> dict:
    """RSS of the worker and the master, PSS of both, in MB."""
    return {
        "worker_rss_mb": round(memory_kb(worker, "Rss") / 1024, 1),
        "master_rss_mb": round(memory_kb(master, "Rss") / 1024, 1),
        "total_pss_mb": round((memory_kb(worker, "Pss") + memory_kb(master, "Pss")) / 1024, 1),
    }


def time_to_first_answer(folder: Path, number: int) -> float:
    """Seconds from launching `hooklab serve` to its first answer."""
    db = str(folder / f"start-{number}.db")
    port = common.free_port()
    started = time.monotonic()
    proc = subprocess.Popen(common.hooklab_serve(db, port), stdout=subprocess.DEVNULL)
    server = common.Server(proc, port)
    try:
        deadline = started + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{server.url}/api/health", timeout=1)
                return time.monotonic() - started
            except requests.RequestException:
                time.sleep(0.005)
        raise RuntimeError("hooklab serve did not answer within 30 s")
    finally:
        server.stop()


def rotating_script(folder: Path, bin_ids: list[str]) -> str:
    """A wrk script that POSTs the 120-byte body to `bin_ids` in turn."""
    paths = ", ".join(json.dumps(f"/b/{bin_id}") for bin_id in bin_ids)
    path = folder / "rotate.lua"
    path.write_text(
        f"local paths = {{{paths}}}\n"
        f"local body = {json.dumps(common.BODY_120)}\n"
        'local headers = {["Content-Type"] = "application/json"}\n'
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        '  return wrk.format("POST", paths[(i % #paths) + 1], headers, body)\n'
        "end\n"
    )
    return str(path)


def stored(db: str) -> int:
    """Captured requests written so far (ids are never reused)."""
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'captured_requests'"
        ).fetchone()
    return row[0] if row else 0


def main(captures: int = 100_000) -> dict:
    """Run the benchmark; returns (and saves) its result."""
    common.ensure_wrk()
    with common.temp_dir() as folder:
        starts = [time_to_first_answer(folder, n) for n in range(3)]
        db = str(folder / "memory.db")
        bin_ids = [common.new_bin(db) for _ in range(BINS)]
        script = rotating_script(folder, bin_ids)
        port = common.free_port()
        answered, seconds = 0, 0.0
        with common.running(common.hooklab_serve(db, port), port, "/api/health") as server:
            worker = common.worker_pid(server.proc.pid)
            before = memory(server.proc.pid, worker)
            # Short wrk runs until enough captures are stored (bounded in count and time).
            for _ in range(MAX_RUNS):
                if stored(db) >= captures:
                    break
                run = common.run_wrk(f"{server.url}/", RUN_S, CONNECTIONS, script=script)
                answered += run.ok
                seconds += run.seconds
            time.sleep(0.5)
            after = memory(server.proc.pid, worker)
        total = stored(db)
        with sqlite3.connect(db) as conn:
            kept = conn.execute("SELECT count(*) FROM captured_requests").fetchone()[0]
    result = {
        "start_s": sorted(starts),
        "start_median_s": sorted(starts)[1],
        "captures_answered": answered,
        "captures_stored": total,
        "captures_kept": kept,
        "capture_rps": answered / seconds if seconds else 0.0,
        "memory_before": before,
        "memory_after": after,
    }
    result["passed"] = {
        "memory": after["worker_rss_mb"] <= 100 and total >= captures,
        "start": max(starts) <= 1.5,
    }
    common.write_result("memory_start", result)
    print(
        f"memory: worker RSS {before['worker_rss_mb']} MB at start, {after['worker_rss_mb']} MB "
        f"after {total} captures (master {after['master_rss_mb']} MB, PSS of both "
        f"{after['total_pss_mb']} MB); first answer {max(starts):.2f} s after start at worst",
        flush=True,
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=int, default=100_000)
    args = parser.parse_args()
    main(args.captures)
