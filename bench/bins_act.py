"""Bins that act: what response rules and forwarding cost, side by side in one run.

- rules: capture throughput (wrk, 16 connections, the 120-byte POST) of a bin with five rules
  that every request walks (four that do not match it, then a seeded 50 % draw whose state is
  written with each capture) against a bin without rules; target >= 0.95x. Both bins on one
  server, wrk alternating between them in short runs (SIDE_ROUNDS pairs of SIDE_S seconds),
  judged on the median of the pairs' ratios: both see the same moments of the machine, whose
  speed jumps by a third from one minute to the next (docs/benchmarks.md).
- sync forward: a client sending 100 requests/s for a while, one at a time on a kept-alive
  connection, to the app directly and then through a bin forwarding to it (sync); the
  difference of the latency percentiles is what the forward adds; targets p50 <= 3 ms,
  p99 <= 15 ms.
- async forward: capture throughput of a bin forwarding async to the app against one that
  does not forward; target >= 0.9x. Under such a flood the forward senders give way to the
  capture path (bin_server/forward.py: one batch of 16 every 0.25 s) and the queue drains
  once it is over, so what they did is reported beside the ratio: forwards sent during a
  run, left queued at its end, and the rate at which they were then sent. Side by side as
  the rules: one server, a bin of each, SIDE_ROUNDS pairs of SIDE_S seconds; after every
  run the server settles (the forward queue drained, the search indexer caught up), so that
  neither bin's run carries the other's leftover work.
The app is bench/receiver.py (asyncio, answers at once).

Usage: python bench/bins_act.py [--rounds 6] [--seconds 2] [--paced-seconds 6]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

CONNECTIONS = 16
RATE = 100  # requests per second for the forward latency
DRAIN_WAIT_S = 120.0  # the longest wait for the forward queue to drain after a run
SIDE_ROUNDS = 6  # rules against none on one server: pairs of runs ...
SIDE_S = 2  # ... of this many seconds each
FIVE_RULES = [
    {"name": "orders", "match": {"path": "/orders/*"}, "status": 409},
    {"name": "puts", "match": {"method": "PUT"}, "status": 500},
    {"name": "deletes", "match": {"method": "DELETE"}, "status": 410},
    {"name": "gets", "match": {"method": "GET"}, "status": 404},
    {"name": "half", "percent": 50, "status": 202},
]


def _async_side_by_side(folder: Path, script: str, app_url: str, rounds: int, seconds: int):
    """Async forwarding against none on one server: a bin of each, wrk alternating between
    them in short runs (the order flips every pair), the server settled after every run;
    each pair's ratio, judged on their median."""
    db = str(folder / "async-side-by-side.db")
    forward = json.dumps({"url": app_url, "mode": "async"})
    bins = {"plain": common.new_bin(db), "forwarding": common.new_bin(db, forward=forward)}
    forwards: list[dict] = []

    def settled(name: str, result) -> None:
        # Every capture queued one forward, and the queue was empty at the start of the run
        # (settled after the one before): sent = answered - still queued.
        queued = _queued(db)
        drained_in = _settle(db)
        if name == "forwarding":
            forwards.append(
                {
                    "sent_during_run": result.requests - queued,
                    "queued_at_end": queued,
                    "drained_in_s": round(drained_in, 2),
                }
            )

    port = common.free_port()
    with common.running(common.hooklab_serve(db, port), port, "/api/health") as server:
        urls = {name: f"{server.url}/b/{bin_id}" for name, bin_id in bins.items()}
        for url in urls.values():
            common.run_wrk(url, 1, CONNECTIONS, script=script)  # warm-up
            _settle(db)
        rates = common.alternate(urls, script, seconds, rounds, "bins_act: async", settled)
    return {
        "rounds": rounds,
        "seconds": seconds,
        **common.paired(rates, "forwarding", "plain"),
        "forwards": forwards,
        "forwards_median": {
            "sent_during_run": statistics.median(f["sent_during_run"] for f in forwards),
            "queued_at_end": statistics.median(f["queued_at_end"] for f in forwards),
            # queued at the end / seconds until none was: the rate once the flood is over
            "sent_per_s_after": statistics.median(
                f["queued_at_end"] / f["drained_in_s"] for f in forwards if f["drained_in_s"] > 0
            ),
        },
    }


def _settle(db: str) -> float:
    """After a run: the requests in flight answered, the forward queue drained (the seconds it
    took are returned) and the search indexer caught up."""
    started = time.monotonic()
    time.sleep(0.3)
    while _queued(db):
        if time.monotonic() - started > DRAIN_WAIT_S:
            raise RuntimeError(f"the forward queue did not drain in {DRAIN_WAIT_S:g} s")
        time.sleep(0.02)
    drained_in = time.monotonic() - started
    common.caught_up(db)
    return drained_in


def _rules_side_by_side(folder: Path, script: str, rounds: int, seconds: int) -> dict:
    """Five rules against none on one server: a bin of each, wrk alternating between them in
    short runs (the order flips every pair); each pair's ratio, judged on their median."""
    db = str(folder / "side-by-side.db")
    bins = {
        "plain": common.new_bin(db),
        "rules": common.new_bin(db, rules=json.dumps(FIVE_RULES), rules_seed=1),
    }
    port = common.free_port()
    with common.running(common.hooklab_serve(db, port), port, "/api/health") as server:
        urls = {name: f"{server.url}/b/{bin_id}" for name, bin_id in bins.items()}
        for url in urls.values():
            common.run_wrk(url, 1, CONNECTIONS, script=script)  # warm-up
        rates = common.alternate(urls, script, seconds, rounds, "bins_act: rules")
    return {
        "rounds": rounds,
        "seconds": seconds,
        **common.paired(rates, "rules", "plain"),
        "answered_by_rule_5": _answered_by_rule_5(db),
    }


def _answered_by_rule_5(db: str) -> int:
    """Captures the fifth rule (the 50 % draw) answered, in the store at `db`."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT count(*) FROM captured_requests WHERE answered_by LIKE '%\"rule\": 4%'"
        ).fetchone()[0]


def _queued(db: str) -> int:
    """Async forwards waiting in the queue of the store at `db`."""
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM pending_forwards").fetchone()[0]


def _paced(url: str, seconds: float) -> list[float]:
    """Latencies (ms) of POSTs sent at RATE per second, one at a time, on one connection."""
    session = requests.Session()
    body = common.BODY_120.encode()
    headers = {"Content-Type": "application/json"}
    latencies = []
    start = time.monotonic()
    for i in range(int(seconds * RATE)):
        due = start + i / RATE
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        sent = time.perf_counter()
        response = session.post(url, data=body, headers=headers, timeout=10)
        latencies.append((time.perf_counter() - sent) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    session.close()
    return latencies


def _figures(latencies: list[float]) -> dict:
    return {
        "count": len(latencies),
        "p50_ms": round(common.percentile(latencies, 50), 2),
        "p99_ms": round(common.percentile(latencies, 99), 2),
    }


def report_lines(result: dict) -> list[dict]:
    """The lines of docs/benchmarks.md (bench/report.py renders them as given)."""
    side = result["rules_side_by_side"]
    forwarding = result["async_side_by_side"]
    sync = result["sync_forward"]
    direct = min(sync["direct"], key=lambda f: f["p50_ms"])
    through = min(sync["through_bin"], key=lambda f: f["p50_ms"])
    passed = result["passed"]
    fw = forwarding["forwards_median"]
    return [
        {
            "number": 7,
            "target": "capture with five rules >= 0.95x without",
            "judged": "throughput",
            "figure": f"one server, a bin of each, wrk alternating between them: {side['rounds']} "
            f"pairs of {side['seconds']} s runs, judged on the median of the pairs' ratios "
            f"({min(side['ratios']):.2f}–{max(side['ratios']):.2f}); median five rules "
            f"{side['median_rps']['rules']:.0f} req/s, none {side['median_rps']['plain']:.0f}",
            "value": f"x{result['ratio_rules']:.2f}",
            "met": passed["rules"],
        },
        {
            "number": 7,
            "target": f"sync forward adds <= 3 ms at p50 at {sync['rate']} req/s",
            "judged": "p50",
            "figure": f"app directly {direct['p50_ms']} ms, through a bin {through['p50_ms']} ms",
            "value": f"+{sync['added_p50_ms']} ms",
            "met": passed["sync_p50"],
        },
        {
            "number": 7,
            "target": "sync forward adds <= 15 ms at p99",
            "judged": "p99",
            "figure": f"app directly {min(d['p99_ms'] for d in sync['direct'])} ms, through a "
            f"bin {min(t['p99_ms'] for t in sync['through_bin'])} ms (best of two runs each)",
            "value": f"+{sync['added_p99_ms']} ms",
            "met": passed["sync_p99"],
        },
        {
            "number": 7,
            "target": "capture with async forwarding >= 0.9x without",
            "judged": "throughput",
            "figure": f"one server, a bin of each, wrk alternating between them: "
            f"{forwarding['rounds']} pairs of {forwarding['seconds']} s runs, the server settled "
            "after each (forwards sent, indexer caught up); judged on the median of the pairs' "
            f"ratios ({min(forwarding['ratios']):.2f}–{max(forwarding['ratios']):.2f}); median "
            f"forwarding {forwarding['median_rps']['forwarding']:.0f} req/s, none "
            f"{forwarding['median_rps']['plain']:.0f}; the forwarder gives way to the flood "
            f"(medians of a run): {fw['sent_during_run']:,.0f} forwards sent during it, "
            f"{fw['queued_at_end']:,.0f} queued at its end, then sent at "
            f"{fw['sent_per_s_after']:,.0f}/s",
            "value": f"x{result['ratio_async_forward']:.2f}",
            "met": passed["async_forward"],
        },
    ]


def main(rounds: int = SIDE_ROUNDS, seconds: int = SIDE_S, paced_seconds: float = 6.0) -> dict:
    """Run the three comparisons; returns (and saves) the result."""
    common.ensure_wrk()
    app_port = common.free_port()
    app_cmd = [sys.executable, str(common.BENCH_DIR / "receiver.py"), str(app_port), "0"]
    app_url = f"http://{common.HOST}:{app_port}"
    with common.temp_dir() as folder, common.running(app_cmd, app_port, "/"):
        script = common.post_script(folder)
        forwarding = _async_side_by_side(folder, script, app_url, rounds, seconds)
        side = _rules_side_by_side(folder, script, rounds, seconds)

        # Sync forward latency: direct, then through a bin, then direct again (best of two).
        db = str(folder / "sync.db")
        sync_forward = json.dumps({"url": app_url, "mode": "sync", "with_path": False})
        bin_id = common.new_bin(db, forward=sync_forward)
        port = common.free_port()
        with common.running(common.hooklab_serve(db, port), port, "/api/health") as server:
            bin_url = f"{server.url}/b/{bin_id}"
            _paced(bin_url, 1)  # warm-up
            direct = [_figures(_paced(app_url + "/", paced_seconds))]
            through = [_figures(_paced(bin_url, paced_seconds))]
            direct.append(_figures(_paced(app_url + "/", paced_seconds)))
            through.append(_figures(_paced(bin_url, paced_seconds)))
    direct_best = min(direct, key=lambda f: f["p50_ms"])
    through_best = min(through, key=lambda f: f["p50_ms"])
    result = {
        "connections": CONNECTIONS,
        "rules_side_by_side": side,
        "ratio_rules": side["ratio_median"],
        "async_side_by_side": forwarding,
        "ratio_async_forward": forwarding["ratio_median"],
        "sync_forward": {
            "rate": RATE,
            "seconds": paced_seconds,
            "direct": direct,
            "through_bin": through,
            "added_p50_ms": round(through_best["p50_ms"] - direct_best["p50_ms"], 2),
            "added_p99_ms": round(
                min(t["p99_ms"] for t in through) - min(d["p99_ms"] for d in direct), 2
            ),
        },
    }
    sync = result["sync_forward"]
    result["passed"] = {
        "rules": result["ratio_rules"] >= 0.95,
        "sync_p50": sync["added_p50_ms"] <= 3,
        "sync_p99": sync["added_p99_ms"] <= 15,
        "async_forward": result["ratio_async_forward"] >= 0.9,
    }
    result["lines"] = report_lines(result)
    common.write_result("rules", result)
    print(
        f"bins_act: rules x{result['ratio_rules']:.2f}, async forward "
        f"x{result['ratio_async_forward']:.2f}; sync forward adds p50 {sync['added_p50_ms']} ms, "
        f"p99 {sync['added_p99_ms']} ms",
        flush=True,
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=SIDE_ROUNDS, help="Pairs of runs.")
    parser.add_argument("--seconds", type=int, default=SIDE_S, help="Seconds of each run.")
    parser.add_argument("--paced-seconds", type=float, default=6.0)
    args = parser.parse_args()
    main(args.rounds, args.seconds, args.paced_seconds)
