"""Run every benchmark in bench/ and write docs/benchmarks.md (method, figures, machine).

Usage: python bench/run_all.py            run them all (about 5 minutes), then write the page
       python bench/run_all.py --docs-only write the page from bench/results/*.json
       python bench/run_all.py --only capture,delivery

Each benchmark saves its figures in bench/results/<name>.json; a benchmark that crashes is
reported as such and the others still run. Exit status 1 when a benchmark crashed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import capture  # noqa: E402
import common  # noqa: E402
import delivery  # noqa: E402
import live_latency  # noqa: E402
import memory_start  # noqa: E402
import search  # noqa: E402
import store_scale  # noqa: E402

BENCHMARKS = {
    "capture": capture.main,
    "live_latency": live_latency.main,
    "delivery": delivery.main,
    "store_scale": store_scale.main,
    "memory_start": memory_start.main,
    "search": lambda: search.main(stored=1_000_000, seconds=5, rounds=2, skip_capture=False),
}
DOC = common.ROOT / "docs" / "benchmarks.md"
TEMPLATE = common.BENCH_DIR / "benchmarks.template.md"


def load(name: str) -> dict | None:
    """The saved result of one benchmark, if any."""
    path = common.BENCH_DIR / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def mark(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def table(results: dict[str, dict | None]) -> str:
    """The figures table: one line per target."""
    lines = [
        "| # | target | figure | ratio / value | met |",
        "|---|---|---|---|---|",
    ]
    c = results.get("capture")
    if c:
        rps = c["best_rps"]
        figure = (
            f"hooklab {rps['hooklab']:.0f} req/s, httpbin {rps['httpbin']:.0f}, "
            f"bare app {rps['bare']:.0f}"
        )
        lines.append(
            f"| 1 | capture >= 1.5x httpbin | {figure} | x{c['ratio_httpbin']:.2f} | "
            f"{mark(c['passed']['vs_httpbin'])} |"
        )
        lines.append(
            f"| 1 | capture >= 0.75x the bare app | (same run) | x{c['ratio_bare']:.2f} | "
            f"{mark(c['passed']['vs_bare'])} |"
        )
        check = c["count_check"]
        lines.append(
            f"| 1 | every 2xx capture in the store | {check['answered_2xx']} answered 2xx, "
            f"{check['rows']} rows; timed runs consistent: {check['timed_runs_consistent']} | "
            f"— | {mark(c['passed']['count'])} |"
        )
    live = results.get("live_latency")
    if live:
        lines.append(
            f"| 2 | live p50 <= 5 ms | {live['subscribers']} subscribers, "
            f"{live['captured']} captures at {live['rate']}/s | p50 {live['p50_ms']:.1f} ms | "
            f"{mark(live['passed']['p50'])} |"
        )
        met = live["passed"]["p99"] and live["passed"]["complete"]
        cpu = live.get("server_cpu_cores")
        lines.append(
            f"| 2 | live p99 <= 25 ms | {live['frames_missing']} frames missing of "
            f"{live['frames_expected']}; server used {cpu} cores | p99 {live['p99_ms']:.1f} ms "
            f"(max {live['max_ms']:.0f}) | {mark(met)} |"
        )
    d = results.get("delivery")
    if d:
        figure = (
            f"hooklab {d['hooklab']['rate']:.0f}/s, bare {d['bare']['rate']:.0f}/s, "
            f"sequential {d['sequential']['rate']:.0f}/s ({d['workers']} threads)"
        )
        lines.append(
            f"| 3 | delivery >= 0.8x bare sender | {figure} | x{d['ratio_bare']:.2f} | "
            f"{mark(d['passed']['vs_bare'])} |"
        )
        lines.append(
            f"| 3 | delivery >= 10x sequential | (same run) | x{d['ratio_sequential']:.1f} | "
            f"{mark(d['passed']['vs_sequential'])} |"
        )
        h = d["hooklab"]
        lines.append(
            f"| 3 | every delivery signed and logged | {h['received']} received, "
            f"{h['distinct']} distinct, {h['signed']} signatures valid, "
            f"{h['logged_succeeded']} logged | — | {mark(d['passed']['signed_and_logged'])} |"
        )
        lat = d["latency"]
        lines.append(
            f"| 3 | fired-to-received p99 <= 100 ms at 100 events/s | {lat['received']} of "
            f"{lat['fired']} received, p50 {lat['p50_ms']:.0f} ms | p99 {lat['p99_ms']:.0f} ms | "
            f"{mark(d['passed']['latency_p99'])} |"
        )
    s = results.get("store_scale")
    if s:
        reads = s["reads"]
        lines.append(
            f"| 4 | capture with {s['requests_stored']:,} stored within 10 % of empty | "
            f"full {s['best_rps']['full']:.0f}/s, empty {s['best_rps']['empty']:.0f}/s | "
            f"x{s['ratio_full_empty']:.2f} | {mark(s['passed']['throughput'])} |"
        )
        lines.append(
            f"| 4 | list API of a bin with 1,000 requests <= 50 ms | default page (50): "
            f"p50 {reads['list_default']['p50_ms']:.1f} ms; `limit=1000` "
            f"({reads['list_1000']['bytes'] // 1000} kB): p95 "
            f"{reads['list_1000']['p95_ms']:.1f} ms | p50 {reads['list_1000']['p50_ms']:.1f} ms"
            f" | {mark(s['passed']['list'])} |"
        )
        lines.append(
            f"| 4 | inspector page <= 50 ms | p95 {reads['inspector']['p95_ms']:.1f} ms | "
            f"p50 {reads['inspector']['p50_ms']:.1f} ms | {mark(s['passed']['inspector'])} |"
        )
    m = results.get("memory_start")
    if m:
        after = m["memory_after"]
        lines.append(
            f"| 5 | RSS <= 100 MB after 100,000 captures | {m['captures_stored']:,} stored; "
            f"{m['memory_before']['worker_rss_mb']} MB at start; master "
            f"{after['master_rss_mb']} MB, PSS of both {after['total_pss_mb']} MB | worker "
            f"{after['worker_rss_mb']} MB | {mark(m['passed']['memory'])} |"
        )
        starts = ", ".join(f"{x:.2f}" for x in m["start_s"])
        lines.append(
            f"| 5 | first answer <= 1.5 s after start | three starts: {starts} s | median "
            f"{m['start_median_s']:.2f} s | {mark(m['passed']['start'])} |"
        )
    lines += search_rows(results.get("search"))
    return "\n".join(lines)


def search_rows(r: dict | None) -> list[str]:
    """The search benchmark's lines of the figures table."""
    if not r:
        return []
    lines = []
    for part, label in (("bin_only", "a bin of 1,000 (10 KB bodies)"), ("with_stored", None)):
        rows = r.get(part)
        if not rows:
            continue
        if label is None:
            label = f"the same with {r['stored']['requests']:,} more stored"
        worst = max(rows.values(), key=lambda row: row["api"]["p95_ms"])
        index = max(row["index"]["p95_ms"] for row in rows.values())
        direct = max(row["direct"]["p95_ms"] for row in rows.values())
        lines.append(
            f"| 6 | search p95 <= 50 ms, {label} | worst `q={worst['q']}`; index alone "
            f"<= {index:.1f} ms; no index (direct) <= {direct:.1f} ms | API p95 "
            f"{worst['api']['p95_ms']:.1f} ms | {mark(worst['api']['p95_ms'] <= 50)} |"
        )
    for label, c in (r.get("capture") or {}).items():
        best = c["best_rps"]
        lines.append(
            f"| 6 | capture with the search index >= 0.9x without ({label} bodies) | "
            f"{best['with_index']:.0f}/s vs {best['without_index']:.0f}/s; indexed "
            f"{max(c['catch_up_s']):.1f} s after a round at most | x{c['ratio']:.2f} | "
            f"{mark(c['ratio'] >= 0.9)} |"
        )
    return lines


def machine_section(info: dict) -> str:
    """Where the figures come from."""
    return (
        f"- CPUs (`nproc`): {info['nproc']}; CPU: {info['cpu']}\n"
        f"- Python {info['python']}; {info['system']}\n"
        f"- run on {info['date']}, took {info['duration_s']:.0f} s\n"
        f"- load average (1 min) before the run: {info['load_before']:.2f}; after: "
        f"{info['load_after']:.2f}\n"
        f"- other processes using CPU when it started (share of one core over 1 s): "
        f"{', '.join(info.get('busy_before') or []) or 'none above 5 %'}; between the "
        f"benchmarks: {', '.join(info.get('busy_during') or []) or 'none above 10 %'}\n"
        f"- {info['note'] or 'no note'}"
    )


def write_doc(results: dict[str, dict | None], info: dict, crashed: dict[str, str]) -> None:
    """Fill the template with the table and the machine."""
    text = TEMPLATE.read_text()
    crash_lines = "".join(f"\n- **{name} crashed**: {error}" for name, error in crashed.items())
    text = text.replace("{{TABLE}}", table(results) + crash_lines)
    text = text.replace("{{MACHINE}}", machine_section(info))
    DOC.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs-only", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument(
        "--note", default="", help="what else ran on the machine meanwhile (goes in the page)"
    )
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    info_path = common.BENCH_DIR / "results" / "machine.json"
    crashed: dict[str, str] = {}
    if args.docs_only:
        info = json.loads(info_path.read_text())
    else:
        info = common.machine()
        started = time.monotonic()
        busy_during: list[str] = []
        for name in names:
            print(f"== {name}", flush=True)
            # Who else is using the CPU between two benchmarks (ours are idle then).
            busy_during += [b.rsplit(" ", 1)[0] for b in common.busy_processes(0.5, 0.1)]
            try:
                BENCHMARKS[name]()
            except Exception as exc:  # one broken benchmark must not hide the others
                traceback.print_exc()
                crashed[name] = f"{type(exc).__name__}: {exc}"
        info["duration_s"] = time.monotonic() - started
        info["busy_during"] = sorted(set(busy_during))
        info["load_after"] = os.getloadavg()[0]
        info["date"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        info["note"] = args.note or os.environ.get("BENCH_NOTE", "")
        common.write_result("machine", info)
    results = {name: load(name) for name in BENCHMARKS}
    write_doc(results, info, crashed)
    print(f"wrote {DOC.relative_to(common.ROOT)}")
    print(table(results))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
