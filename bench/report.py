"""docs/benchmarks.md from the raw results of one run (docs/benchmarks.json) and the template.

Rendering only: no benchmark runs here, so the page can always be regenerated from the
committed JSON (`python bench/run_all.py --from-json docs/benchmarks.json`), and
tests/test_benchmarks_page.py checks that the committed page is exactly that.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DOC = ROOT / "docs" / "benchmarks.md"
RESULTS_JSON = ROOT / "docs" / "benchmarks.json"
TEMPLATE = BENCH_DIR / "benchmarks.template.md"
# The order of the page (and of a full run).
NAMES = (
    "capture",
    "live_latency",
    "delivery",
    "store_scale",
    "memory_start",
    "search",
    "fixture",
    "rules",
)


def mark(ok: bool | None) -> str:
    """A table cell for met / not met / not a pass-fail line."""
    return "—" if ok is None else ("yes" if ok else "**no**")


def ms(value: float | None, digits: int = 1) -> str:
    """Milliseconds for a cell ("—" when missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f} ms"


class Table:
    """The figures table: one line per target."""

    HEAD = (
        "| # | target | judged on | figure | value | median | met |\n|---|---|---|---|---|---|---|"
    )

    def __init__(self) -> None:
        self.lines: list[str] = [self.HEAD]

    def add(
        self,
        number: int | str,
        target: str,
        judged: str,
        figure: str,
        value: str,
        median: str = "—",
        met: bool | None = None,
    ) -> None:
        """One target."""
        cells = (str(number), target, judged, figure, value, median, mark(met))
        self.lines.append("| " + " | ".join(cells) + " |")

    def text(self) -> str:
        return "\n".join(self.lines)


def _capture(t: Table, c: dict) -> None:
    rps = c["median_rps"]
    figure = (
        f"the three servers side by side, wrk going from one to the next: {c['rounds']} "
        f"rounds of {c['seconds']} s runs; judged on the median of the rounds' ratios "
        f"(httpbin {min(c['ratios_httpbin']):.2f}–{max(c['ratios_httpbin']):.2f}, bare app "
        f"{min(c['ratios_bare']):.2f}–{max(c['ratios_bare']):.2f}); medians: hooklab "
        f"{rps['hooklab']:.0f} req/s, httpbin {rps['httpbin']:.0f}, bare app {rps['bare']:.0f}"
    )
    passed = c["passed"]
    t.add(
        1,
        "capture >= 1.5x httpbin",
        "throughput",
        figure,
        f"x{c['ratio_httpbin']:.2f}",
        met=passed["vs_httpbin"],
    )
    t.add(
        1,
        "capture >= 0.75x the bare app",
        "throughput",
        "(same run)",
        f"x{c['ratio_bare']:.2f}",
        met=passed["vs_bare"],
    )
    pinned = c.get("pinned")
    if pinned:
        h, b = pinned["hooklab"], pinned["bare"]
        t.add(
            1,
            "(not a target) what a request costs itself: server on one CPU, wrk on the other",
            "CPU time",
            f"hooklab {h['server_cpu_us_per_request']} µs of server CPU a capture "
            f"({h['rps']:.0f} req/s), bare app {b['server_cpu_us_per_request']} µs "
            f"({b['rps']:.0f} req/s)",
            f"x{pinned['ratio']:.2f}",
        )
    best = {name: max(runs, key=lambda r: r["rps"]) for name, runs in c["runs"].items()}
    if all("switches_per_request" in b for b in best.values()):
        switches = {name: b["switches_per_request"] for name, b in best.items()}
        t.add(
            1,
            "(not a target) thread hand-offs: the server's context switches a request",
            "count",
            f"hooklab {switches['hooklab']}, bare app {switches['bare']}, httpbin "
            f"{switches['httpbin']} (the best rounds above; /proc, every thread of the worker)",
            f"x{switches['hooklab'] / switches['bare']:.2f}",
        )
    check = c["count_check"]
    t.add(
        1,
        "every 2xx capture in the store",
        "count",
        f"{check['answered_2xx']} answered 2xx, {check['rows']} rows; timed runs consistent: "
        f"{check['timed_runs_consistent']}",
        "—",
        met=passed["count"],
    )


def _live(t: Table, live: dict) -> None:
    figure = (
        f"{live['subscribers']} subscribers, {live['captured']} captures at {live['rate']}/s; "
        f"from the request sent to the frame; {live['frames_missing']} frames missing of "
        f"{live['frames_expected']}; p95 {ms(live['p95_ms'])}, max {ms(live['max_ms'], 0)}; "
        f"server used {live['server_cpu_cores']} cores"
    )
    if "capture_p99_ms" in live:  # runs since 1 December's fifth session
        figure += (
            f"; of which the capture's own round trip p99 {ms(live['capture_p99_ms'])} "
            f"(median {ms(live['capture_p50_ms'])}), the frame after its answer p99 "
            f"{ms(live['after_answer_p99_ms'])} (median {ms(live['after_answer_p50_ms'])})"
        )
    met = live["passed"]["p99"] and live["passed"]["complete"]
    t.add(
        2,
        "live frame <= 25 ms after the request is sent",
        "p99",
        figure,
        ms(live["p99_ms"]),
        ms(live["p50_ms"]),
        met,
    )


def _delivery(t: Table, d: dict) -> None:
    figure = (
        f"{d['rounds']} rounds, the contenders one after the other, judged on the median of "
        f"the rounds' ratios ({min(d['ratios_bare']):.2f}–{max(d['ratios_bare']):.2f}); median "
        f"rounds: hooklab {d['hooklab']['rate']:.0f}/s, bare {d['bare']['rate']:.0f}/s, "
        f"sequential {d['sequential']['rate']:.0f}/s ({d['workers']} threads)"
    )
    passed = d["passed"]
    t.add(
        3,
        "delivery >= 0.8x bare sender",
        "throughput",
        figure,
        f"x{d['ratio_bare']:.2f}",
        met=passed["vs_bare"],
    )
    t.add(
        3,
        "delivery >= 10x sequential",
        "throughput",
        "(same run)",
        f"x{d['ratio_sequential']:.1f}",
        met=passed["vs_sequential"],
    )
    h = d["hooklab"]
    t.add(
        3,
        "every delivery signed and logged",
        "count",
        f"{h['received']} received, {h['distinct']} distinct, {h['signed']} signatures valid, "
        f"{h['logged_succeeded']} logged (every round)",
        "—",
        met=passed["signed_and_logged"],
    )
    lat = d["latency"]
    t.add(
        3,
        "fired-to-received <= 100 ms at 100 events/s",
        "p99",
        f"{lat['received']} of {lat['fired']} received; p95 {ms(lat['p95_ms'], 0)}, "
        f"max {ms(lat['max_ms'], 0)}",
        ms(lat["p99_ms"], 0),
        ms(lat["p50_ms"], 0),
        passed["latency_p99"],
    )


def _fixture(t: Table, f: dict) -> None:
    h, p = f["hooklab"], f["httpserver"]
    ratios = f["ratios_per_test"]
    worst = max(r["per_test_max_ms"] for r in f["runs"]["hooklab"])
    figure = (
        f"{f['tests']} tests each, {f['rounds']} rounds, each running both suites one after the "
        f"other; judged on the median of the rounds' ratios ({min(ratios):.2f}–"
        f"{max(ratios):.2f}); medians per test: hooklab mean {ms(h['per_test_mean_ms'])} "
        f"(p95 {ms(h['per_test_p95_ms'])}, slowest test {worst:.0f} ms), pytest-httpserver mean "
        f"{ms(p['per_test_mean_ms'])} (p95 {ms(p['per_test_p95_ms'])})"
    )
    passed = f["passed"]
    t.add(
        7,
        "pytest fixture: per test <= 1.5x pytest-httpserver's",
        "mean per test",
        figure,
        f"x{f['ratio_per_test']:.2f}",
        f"x{f['ratio_per_test_median']:.2f}",
        passed["per_test"],
    )
    t.add(
        7,
        "pytest fixture: session start <= 1 s",
        "slowest round",
        f"hooklab starts: {', '.join(f'{s:.2f}' for s in h['session_start_s'])} s; "
        f"pytest-httpserver: {', '.join(f'{s:.2f}' for s in p['session_start_s'])} s",
        f"{max(h['session_start_s']):.2f} s",
        f"{statistics.median(h['session_start_s']):.2f} s",
        passed["start"],
    )
    t.add(
        7,
        "pytest fixture: whole suite (information)",
        "median of rounds",
        f"pytest run of {f['tests']} tests, process start to exit: hooklab "
        f"{h['total_s']:.2f} s, pytest-httpserver {p['total_s']:.2f} s (medians)",
        f"x{f['ratio_total']:.2f}",
    )


def _store_scale(t: Table, s: dict) -> None:
    reads = s["reads"]
    passed = s["passed"]
    t.add(
        4,
        f"capture with {s['requests_stored']:,} stored within 10 % of empty",
        "throughput",
        f"the two servers side by side: {s['rounds']} rounds of {s['seconds']} s runs, judged "
        f"on the median of the rounds' ratios ({min(s['ratios']):.2f}–{max(s['ratios']):.2f}); "
        f"medians full {s['median_rps']['full']:.0f}/s, empty {s['median_rps']['empty']:.0f}/s "
        f"(the full store indexed for search first, {s['index_s']:.0f} s)",
        f"x{s['ratio_full_empty']:.2f}",
        met=passed["throughput"],
    )
    t.add(
        4,
        "list API, default page (50) of a bin with 1,000 requests <= 50 ms",
        "p95",
        f"{reads['list_default']['count']} sequential GETs",
        ms(reads["list_default"]["p95_ms"]),
        ms(reads["list_default"]["p50_ms"]),
        passed["list_default"],
    )
    t.add(
        4,
        "list API, `limit=1000` of a bin with 1,000 requests <= 50 ms",
        "p95",
        f"{reads['list_1000']['bytes'] // 1000} kB per answer",
        ms(reads["list_1000"]["p95_ms"]),
        ms(reads["list_1000"]["p50_ms"]),
        passed["list_1000"],
    )
    t.add(
        4,
        "inspector page <= 50 ms",
        "p95",
        f"`/bins/<id>` of a bin with 1,000 requests, {reads['inspector']['count']} GETs",
        ms(reads["inspector"]["p95_ms"]),
        ms(reads["inspector"]["p50_ms"]),
        passed["inspector"],
    )


def _memory_start(t: Table, m: dict) -> None:
    after = m["memory_after"]
    t.add(
        5,
        "RSS <= 100 MB after 100,000 captures",
        "worker RSS",
        f"{m['captures_stored']:,} stored; {m['memory_before']['worker_rss_mb']} MB at start; "
        f"master {after['master_rss_mb']} MB, PSS of both {after['total_pss_mb']} MB",
        f"{after['worker_rss_mb']} MB",
        met=m["passed"]["memory"],
    )
    starts = ", ".join(f"{x:.2f}" for x in m["start_s"])
    t.add(
        5,
        "first answer <= 1.5 s after start",
        "slowest of three",
        f"three starts: {starts} s",
        f"{max(m['start_s']):.2f} s",
        f"{m['start_median_s']:.2f} s",
        m["passed"]["start"],
    )


def _search(t: Table, r: dict) -> None:
    for part, label in (("bin_only", "a bin of 1,000 (10 KB bodies)"), ("with_stored", None)):
        found = r.get(part)
        if not found:
            continue
        if label is None:
            label = f"the same with {r['stored']['requests']:,} more stored"
        worst = max(found.values(), key=lambda row: row["api"]["p95_ms"])
        index = max(row["index"]["p95_ms"] for row in found.values())
        direct = max(row["direct"]["p95_ms"] for row in found.values())
        t.add(
            6,
            f"search <= 50 ms, {label}",
            "p95 (API)",
            f"worst `q={worst['q']}`; index alone <= {index:.1f} ms; no index (direct) "
            f"<= {direct:.1f} ms",
            ms(worst["api"]["p95_ms"]),
            ms(worst["api"].get("p50_ms")),
            worst["api"]["p95_ms"] <= 50,
        )
    for label, c in (r.get("capture") or {}).items():
        rps = c["median_rps"]
        t.add(
            6,
            f"capture with the search index >= 0.9x without ({label} bodies)",
            "throughput",
            f"the two servers side by side: {c['rounds']} rounds of {c['seconds']} s runs, "
            f"judged on the median of the rounds' ratios ({min(c['ratios']):.2f}–"
            f"{max(c['ratios']):.2f}); medians {rps['with_index']:.0f}/s vs "
            f"{rps['without_index']:.0f}/s; indexed {max(c['catch_up_s']):.1f} s after a run "
            "at most",
            f"x{c['ratio']:.2f}",
            met=c["ratio"] >= 0.9,
        )


def _generic(t: Table, name: str, r: dict) -> None:
    """Benchmarks that describe their own lines (added by other issues): `lines` in their JSON."""
    for line in r.get("lines", []):
        t.add(
            line.get("number", 7),
            line["target"],
            line.get("judged", "—"),
            line.get("figure", ""),
            line.get("value", "—"),
            line.get("median", "—"),
            line.get("met"),
        )


RENDER = {
    "capture": _capture,
    "live_latency": _live,
    "delivery": _delivery,
    "fixture": _fixture,
    "store_scale": _store_scale,
    "memory_start": _memory_start,
    "search": _search,
}


def table(results: dict[str, dict | None]) -> str:
    """The figures table of every result present."""
    t = Table()
    for name in NAMES + tuple(n for n in results if n not in NAMES):
        result = results.get(name)
        if not result:
            continue
        render = RENDER.get(name)
        if render:
            render(t, result)
        else:
            _generic(t, name, result)
    return t.text()


def _load_line(name: str, r: dict) -> str:
    load = r.get("load")
    if not load:
        return f"  - {name}: load not recorded"
    busy = ", ".join(load.get("busy_before") or []) or "none above 5 %"
    return (
        f"  - {name} (run {load['date']}, {load['duration_s']:.0f} s): load average (1 min) "
        f"{load['before']:.2f} before, {load['after']:.2f} after; other processes using CPU "
        f"as it started: {busy}"
    )


def machine_section(info: dict, results: dict[str, dict | None]) -> str:
    """Where the figures come from, and how busy the machine was for each benchmark."""
    names = [n for n in NAMES if results.get(n)] + [
        n for n in results if n not in NAMES and results[n]
    ]
    loads = "\n".join(_load_line(name, results[name]) for name in names)
    return (
        f"- CPUs (`nproc`): {info['nproc']}; CPU: {info['cpu']}\n"
        f"- Python {info['python']}; {info['system']}\n"
        f"- run on {info['date']}, took {info['duration_s']:.0f} s\n"
        f"- load per benchmark:\n{loads}\n"
        f"- {info.get('note') or 'no note'}"
    )


def render(data: dict) -> str:
    """The whole page from the raw results of a run (docs/benchmarks.json's content)."""
    results = data["results"]
    text = TEMPLATE.read_text()
    crashed = data.get("crashed") or {}
    crash_lines = "".join(f"\n- **{name} crashed**: {error}" for name, error in crashed.items())
    text = text.replace("{{TABLE}}", table(results) + crash_lines)
    return text.replace("{{MACHINE}}", machine_section(data["machine"], results))


def read(path: Path = RESULTS_JSON) -> dict:
    """The raw results of a run."""
    return json.loads(path.read_text())


def dumps(data: dict) -> str:
    """The JSON text of a run's raw results (no NaN: strict JSON readers refuse it)."""
    return json.dumps(_finite(data), indent=1, sort_keys=True) + "\n"


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
