"""Capture throughput: wrk POSTs a 120-byte JSON body, 16 connections, against three servers.

Contenders, each served by gunicorn with the config of `hooklab serve` (1 worker, gthread,
the default thread count):
- hooklab: `hooklab serve` as a user runs it, POST /b/<bin_id>;
- httpbin: POST /anything (echoes, stores nothing);
- bare: a WSGI app that reads the body and answers "ok" (the ceiling).
The three servers run side by side, and wrk goes from one to the next in short runs (ROUNDS
rounds of SECONDS each, the order reversed every other round), so that all three see the same
moments of the machine, whose speed jumps by a third from one minute to the next
(docs/benchmarks.md). After each Hooklab run its search indexer catches up before the next
contender's run (else its work would land in their runs). Each ratio is judged on the median
of its rounds' ratios; medians and best rounds are kept too.
Then the count check: every request answered 2xx is in the store.

Then the cost of one request apart from scheduling: on this 2-CPU virtual machine the figures
above depend on how the kernel spreads the serving process's threads over the CPUs (a thread
woken on the other CPU costs an interrupt between them), and the same command lands in a
fast or a slow regime from run to run. So one more run of hooklab and of the bare app with
the serving process held on one CPU and wrk on the other: the server's CPU time per request
(from /proc) is what each request costs itself. Reported beside the target, not judged.

Usage: python bench/capture.py [--seconds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

CONNECTIONS = 16
ROUNDS = 5  # rounds of one run of each contender ...
SECONDS = 3  # ... of this many seconds
KEEP_PER_BIN = 1000  # the default of max_requests_per_bin


def _sequence(db: str) -> int:
    """The last captured request id handed out (AUTOINCREMENT never reuses ids)."""
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'captured_requests'"
        ).fetchone()
    return row[0] if row else 0


def _bin_rows(db: str, bin_id: str) -> tuple[int, int | None]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT count(*), max(id) FROM captured_requests WHERE bin_id = ?", (bin_id,)
        ).fetchone()


def wrk_figures(result, switches: int) -> dict:
    """What is kept of one wrk run (`switches`: the server's context switches during it)."""
    return {
        "rps": result.rps,
        "requests": result.requests,
        "ok": result.ok,
        "non_2xx": result.non_2xx,
        "socket_errors": result.socket_errors,
        "p50_ms": result.latency_p50_ms,
        "p99_ms": result.latency_p99_ms,
        "switches_per_request": round(switches / max(result.requests, 1), 1),
    }


def timed_run(server, url: str, script: str, seconds: int) -> tuple:
    """The timed wrk run, and the serving process's context switches during it."""
    worker = common.worker_pid(server.proc.pid)
    before = common.context_switches(worker)
    result = common.run_wrk(url, seconds, CONNECTIONS, script=script)
    return result, common.context_switches(worker) - before


def side_by_side(folder: Path, script: str, httpbin_python: str, rounds: int, seconds: int):
    """The three servers started together; `rounds` rounds of one wrk run on each."""
    db = str(folder / "capture.db")
    bin_id = common.new_bin(db)
    ports = {name: common.free_port() for name in ("hooklab", "httpbin", "bare")}
    commands = {
        "hooklab": (common.hooklab_serve(db, ports["hooklab"]), "/api/health", f"/b/{bin_id}"),
        "httpbin": (
            common.gunicorn_app("httpbin:app", ports["httpbin"], httpbin_python),
            "/",
            "/anything",
        ),
        "bare": (common.gunicorn_app("bare_app:app", ports["bare"]), "/", "/"),
    }
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    with ExitStack() as stack:
        servers, urls = {}, {}
        for name, (cmd, ready, path) in commands.items():
            servers[name] = stack.enter_context(common.running(cmd, ports[name], ready))
            urls[name] = f"http://{common.HOST}:{ports[name]}{path}"
        for name in commands:
            common.run_wrk(urls[name], 1, CONNECTIONS, script=script)  # warm-up
        common.settle(db)
        order = list(commands)
        for number in range(rounds):
            for name in order if number % 2 == 0 else list(reversed(order)):
                before = _sequence(db) if name == "hooklab" else 0
                result, switches = timed_run(servers[name], urls[name], script, seconds)
                run = wrk_figures(result, switches)
                if name == "hooklab":
                    common.settle(db)
                    run["stored"] = _sequence(db) - before
                runs[name].append(run)
                print(f"capture: round {number + 1} {name:8} {run['rps']:8.0f} req/s", flush=True)
    kept, newest = _bin_rows(db, bin_id)
    after = _sequence(db)
    # One bin for every Hooklab run: it holds every id handed out, up to the per-bin limit.
    return runs, kept == min(after, KEEP_PER_BIN) and newest == after


def pinned_cost(folder: Path, script: str, seconds: int) -> dict | None:
    """One run each of hooklab and the bare app, server on CPU 1 and wrk on CPU 0."""
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        return None
    out = {}
    for name in ("hooklab", "bare"):
        port = common.free_port()
        if name == "hooklab":
            db = str(folder / "pinned.db")
            bin_id = common.new_bin(db)
            cmd, ready = common.hooklab_serve(db, port), "/api/health"
            url = f"http://{common.HOST}:{port}/b/{bin_id}"
        else:
            cmd, ready = common.gunicorn_app("bare_app:app", port), "/"
            url = f"http://{common.HOST}:{port}/"
        with common.running(cmd, port, ready) as server:
            worker = common.worker_pid(server.proc.pid)
            common.pin_process(worker, 1)
            common.run_wrk(url, 1, CONNECTIONS, script=script, cpu=0)  # warm-up
            before = common.cpu_seconds(worker)
            result = common.run_wrk(url, seconds, CONNECTIONS, script=script, cpu=0)
            used = common.cpu_seconds(worker) - before
        out[name] = {
            "rps": result.rps,
            "requests": result.requests,
            "non_2xx": result.non_2xx,
            "server_cpu_us_per_request": round(used / max(result.requests, 1) * 1e6),
        }
    out["ratio"] = out["hooklab"]["rps"] / out["bare"]["rps"]
    return out


def exact_count_check(folder: Path, script: str, seconds: int) -> dict:
    """A short run with eviction out of reach, so every 2xx must be a row of the bin."""
    db = str(folder / "count-check.db")
    bin_id = common.new_bin(db)
    port = common.free_port()
    cmd = common.hooklab_serve(db, port, "--max-requests-per-bin", "10000000")
    with common.running(cmd, port, "/api/health") as server:
        result = common.run_wrk(f"{server.url}/b/{bin_id}", seconds, CONNECTIONS, script=script)
    kept, _ = _bin_rows(db, bin_id)
    # wrk stops with up to one request in flight per connection: the server may have stored
    # those without wrk counting their answers, never the other way round.
    passed = result.non_2xx == 0 and result.ok <= kept <= result.requests + CONNECTIONS
    return {"answered_2xx": result.ok, "rows": kept, "passed": passed}


def main(seconds: int = SECONDS, rounds: int = ROUNDS) -> dict:
    """Run the benchmark; returns (and saves) its result."""
    common.ensure_wrk()
    httpbin_python = common.ensure_httpbin()
    with common.temp_dir() as folder:
        script = common.post_script(folder)
        runs, kept_as_expected = side_by_side(folder, script, httpbin_python, rounds, seconds)
        count = exact_count_check(folder, script, 3)
        pinned = pinned_cost(folder, script, 5)
    best = {name: max(rs, key=lambda r: r["rps"]) for name, rs in runs.items()}
    hooklab_runs_ok = kept_as_expected and all(
        r["non_2xx"] == 0 and r["ok"] <= r["stored"] <= r["requests"] + CONNECTIONS
        for r in runs["hooklab"]
    )

    def paired(other: str) -> list[float]:
        return [h["rps"] / o["rps"] for h, o in zip(runs["hooklab"], runs[other], strict=True)]

    result = {
        "seconds": seconds,
        "connections": CONNECTIONS,
        "rounds": rounds,
        "method": "side by side",
        "runs": runs,
        "best_rps": {name: b["rps"] for name, b in best.items()},
        "median_rps": {name: statistics.median(r["rps"] for r in rs) for name, rs in runs.items()},
        "ratios_httpbin": [round(x, 3) for x in paired("httpbin")],
        "ratios_bare": [round(x, 3) for x in paired("bare")],
        "ratio_httpbin": statistics.median(paired("httpbin")),
        "ratio_bare": statistics.median(paired("bare")),
        "count_check": {**count, "timed_runs_consistent": hooklab_runs_ok},
        "pinned": pinned,
    }
    result["passed"] = {
        "vs_httpbin": result["ratio_httpbin"] >= 1.5,
        "vs_bare": result["ratio_bare"] >= 0.75,
        "count": count["passed"] and hooklab_runs_ok,
    }
    common.write_result("capture", result)
    median = result["median_rps"]
    print(
        f"capture: medians hooklab {median['hooklab']:.0f} req/s, httpbin "
        f"{median['httpbin']:.0f}, bare {median['bare']:.0f}; "
        f"x{result['ratio_httpbin']:.2f} httpbin, x{result['ratio_bare']:.2f} bare; "
        f"count check {'ok' if result['passed']['count'] else 'FAILED'}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=SECONDS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    main(args.seconds, args.rounds)
