"""Run every benchmark in bench/ and write docs/benchmarks.json and docs/benchmarks.md.

Usage: python bench/run_all.py                     run them all (under 10 minutes), then write
                                                   the raw results and the page
       python bench/run_all.py --only capture,delivery
                                                   run these; the others' results are kept from
                                                   docs/benchmarks.json (each says when it ran)
       python bench/run_all.py --from-json docs/benchmarks.json [--out PATH]
                                                   write the page from the raw results alone

docs/benchmarks.json holds the raw results of the last run (committed beside the page, so the
page can be checked against them); each benchmark also saves its own in bench/results/<name>.json
when run alone. A benchmark that crashes is reported as such and the others still run. Exit
status 1 when a benchmark crashed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402


def benchmarks() -> dict:
    """name -> the function that runs it (imported here: --from-json needs none of them)."""
    import bins_act
    import capture
    import delivery
    import fixture
    import live_latency
    import memory_start
    import search
    import store_scale

    return {
        "capture": capture.main,
        "live_latency": live_latency.main,
        "delivery": delivery.main,
        "store_scale": store_scale.main,
        "memory_start": memory_start.main,
        "search": lambda: search.main(stored=1_000_000, seconds=3, rounds=3, skip_capture=False),
        "fixture": fixture.main,
        "rules": bins_act.main,
    }


def now_utc() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def run(names: list[str], note: str) -> dict:
    """Run the benchmarks `names`; returns the raw results (kept results of the others)."""
    import common

    everything = benchmarks()
    unknown = [n for n in names if n not in everything]
    if unknown:
        sys.exit(f"run_all: no benchmark {', '.join(unknown)} (known: {', '.join(everything)})")
    previous = report.read() if report.RESULTS_JSON.exists() else {"results": {}}
    results = {n: r for n, r in previous.get("results", {}).items() if n not in names}
    crashed = {n: e for n, e in (previous.get("crashed") or {}).items() if n not in names}
    info = common.machine()
    started = time.monotonic()
    with common.temp_dir() as shared:
        os.environ[common.SHARED_ENV] = str(shared)  # databases one benchmark sets up for another
        try:
            run_each(names, everything, results, crashed)
        finally:
            os.environ.pop(common.SHARED_ENV, None)
    info["duration_s"] = time.monotonic() - started
    info["date"] = now_utc()
    info["note"] = note
    info["ran"] = names
    ordered = {n: results[n] for n in report.NAMES if n in results}
    ordered.update({n: r for n, r in results.items() if n not in ordered})
    return {"machine": info, "results": ordered, "crashed": crashed}


def run_each(names: list[str], everything: dict, results: dict, crashed: dict) -> None:
    """Run each benchmark of `names` in turn, into `results` (or `crashed`)."""
    import common

    for name in names:
        print(f"== {name}", flush=True)
        # How busy the machine is as each benchmark starts (ours are idle then), and after.
        load = {"date": now_utc(), "before": os.getloadavg()[0]}
        load["busy_before"] = common.busy_processes(0.5, 0.05)
        began = time.monotonic()
        try:
            result = everything[name]()
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            crashed[name] = f"{type(exc).__name__}: {exc}"
            results.pop(name, None)
            continue
        load.update(after=os.getloadavg()[0], duration_s=time.monotonic() - began)
        results[name] = {**result, "load": load}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument(
        "--from-json", type=Path, default=None, help="write the page from these raw results"
    )
    parser.add_argument("--out", type=Path, default=report.DOC, help="the page to write")
    parser.add_argument(
        "--note", default="", help="what else ran on the machine meanwhile (goes in the page)"
    )
    args = parser.parse_args()
    if args.from_json:
        data = report.read(args.from_json)
    else:
        names = [n for n in args.only.split(",") if n] or list(benchmarks())
        data = run(names, args.note or os.environ.get("BENCH_NOTE", ""))
        report.RESULTS_JSON.write_text(report.dumps(data))
        print(f"wrote {report.RESULTS_JSON.relative_to(report.ROOT)}")
        data = report.read()  # the page shows exactly what the JSON holds
    args.out.write_text(report.render(data))
    print(f"wrote {args.out}")
    print(report.table(data["results"]))
    return 1 if data.get("crashed") else 0


if __name__ == "__main__":
    sys.exit(main())
