"""The CI fixture: what a test costs with Hooklab's `hooklab` fixture and with pytest-httpserver.

Two throwaway test suites are written into a temporary folder, each of 50 tests of the same
kind: "the code under test POSTs a JSON payload to the given URL; assert it arrived with the
right body". One uses the `hooklab` fixture (client/pytest_plugin.py: a real `hooklab serve`
child process per session, a bin per test, `bin.wait_for(json=...)`), the other pytest-httpserver
(`httpserver`: an in-process werkzeug server, an expected request per test, its log checked).
Each suite runs with pytest in a subprocess, the other fixture's plugin switched off (as in a
project that has only one), in rounds: each round runs both suites one right after the other
(the order flips every round).

Method: a conftest written beside the tests records pytest's own durations of each test's
phases (`TestReport.duration` of setup, call and teardown: what `--durations` prints) and
writes them to a JSON file at the end. Per test = setup + call + teardown, over tests 2 to 49:
the first test's setup also starts the session's server (that is the session start) and the
last one's teardown stops it. Total = the pytest process, launch to exit, timed by this script.
Targets: hooklab's mean per test <= 1.5x pytest-httpserver's, judged on the median of the
rounds' ratios (each round's two suites side by side: this machine's speed jumps by a third
from one minute to the next, and a contender whose best round caught such a burst would win by
it); session start <= 1 s, the slowest round.

Also reported (not judged): the CPU time of each suite, the pytest process and everything it
started and waited for (Hooklab's server), from `getrusage(RUSAGE_CHILDREN)`. The hooklab
fixture does part of its work in a thread of its own and in another process, so its time per
test depends on how many cores are free while it runs; its CPU time says how much work there
is whatever the load of the machine.

Usage: python bench/fixture.py [--tests 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

CODE_UNDER_TEST = '''
"""The code under test: it tells another service about a paid order."""

import requests


def notify(url, order):
    """POST the order as JSON to `url`."""
    response = requests.post(url, json={"event": "order.paid", "order": order}, timeout=5)
    response.raise_for_status()
'''

CONFTEST = '''
"""Records pytest's own duration of every test phase (what --durations prints)."""

import json
import os

import pytest

PHASES = {}


def pytest_runtest_logreport(report):
    PHASES.setdefault(report.nodeid, {})[report.when] = report.duration


def pytest_sessionfinish(session):
    with open(os.environ["FIXTURE_BENCH_OUT"], "w") as out:
        json.dump(PHASES, out)
'''

HOOKLAB_TESTS = """
import pytest

from shop import notify


@pytest.mark.parametrize("n", range({tests}))
def test_order_paid_is_posted(hooklab, n):
    bin = hooklab.create_bin()
    notify(bin.url, {{"id": n, "total": 4200}})
    request = bin.wait_for(method="POST", json={{"event": "order.paid"}})
    assert request.json == {{"event": "order.paid", "order": {{"id": n, "total": 4200}}}}
"""

HTTPSERVER_TESTS = """
import pytest

from shop import notify


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)


@pytest.mark.parametrize("n", range({tests}))
def test_order_paid_is_posted(httpserver, n):
    expected = {{"event": "order.paid", "order": {{"id": n, "total": 4200}}}}
    httpserver.expect_oneshot_request("/hook", method="POST", json=expected).respond_with_data("ok")
    notify(httpserver.url_for("/hook"), {{"id": n, "total": 4200}})
    httpserver.check_assertions()
    request, _ = httpserver.log[0]
    assert request.get_json() == expected
"""

# Each suite runs with only its own fixture's plugin, as in a project that uses one of them.
SUITES = {
    "hooklab": (HOOKLAB_TESTS, "pytest_httpserver"),
    "httpserver": (HTTPSERVER_TESTS, "hooklab"),
}


def write_suite(folder: Path, name: str, tests: int) -> Path:
    """A throwaway project: the code under test, the timing conftest, 50 tests."""
    suite = folder / name
    suite.mkdir()
    (suite / "shop.py").write_text(textwrap.dedent(CODE_UNDER_TEST).lstrip())
    (suite / "conftest.py").write_text(textwrap.dedent(CONFTEST).lstrip())
    (suite / "test_orders.py").write_text(SUITES[name][0].format(tests=tests).lstrip())
    return suite


def run_suite(suite: Path, name: str, tests: int) -> dict:
    """Run one suite with pytest in a subprocess; its phase durations and total time."""
    out = suite / f"phases-{time.monotonic_ns()}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKLAB_", "PYTEST_"))}
    env.update(FIXTURE_BENCH_OUT=str(out), PYTHONPATH=str(suite), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += ["-p", f"no:{SUITES[name][1]}", "-o", "addopts=", str(suite)]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=suite, env=env, capture_output=True, text=True, timeout=300)
    total = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime
    if done.returncode != 0:
        raise RuntimeError(f"the {name} suite failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    phases = json.loads(out.read_text())
    if len(phases) != tests:
        raise RuntimeError(f"the {name} suite ran {len(phases)} tests, not {tests}")
    ordered = list(phases.values())
    per_test = [sum(p.values()) * 1000 for p in ordered]
    middle = per_test[1:-1]  # the first starts the session's server, the last stops it
    return {
        "total_s": total,
        "cpu_s": cpu,
        "session_start_s": ordered[0]["setup"],
        "first_test_ms": per_test[0],
        "last_test_ms": per_test[-1],
        "per_test_mean_ms": sum(middle) / len(middle),
        "per_test_p50_ms": common.percentile(middle, 50),
        "per_test_p95_ms": common.percentile(middle, 95),
        "per_test_max_ms": max(middle),
        "call_p50_ms": common.percentile([p["call"] * 1000 for p in ordered[1:-1]], 50),
    }


def main(tests: int = 50, rounds: int = 5) -> dict:
    """Run the benchmark; returns (and saves) its result."""
    runs: dict[str, list[dict]] = {name: [] for name in SUITES}
    with common.temp_dir() as folder:
        suites = {name: write_suite(folder, name, tests) for name in SUITES}
        order = list(SUITES)
        for number in range(rounds):
            for name in order if number % 2 == 0 else list(reversed(order)):
                run = run_suite(suites[name], name, tests)
                runs[name].append(run)
                print(
                    f"fixture: round {number + 1} {name:10} start {run['session_start_s']:.2f} s, "
                    f"per test {run['per_test_mean_ms']:.1f} ms (p50 {run['per_test_p50_ms']:.1f},"
                    f" p95 {run['per_test_p95_ms']:.1f}, max {run['per_test_max_ms']:.1f}), "
                    f"total {run['total_s']:.2f} s, CPU {run['cpu_s']:.2f} s",
                    flush=True,
                )
    h_runs, p_runs = runs["hooklab"], runs["httpserver"]

    def paired(key: str) -> list[float]:
        # A round's two suites run one right after the other: each round's ratio compares
        # them at the same moment of the machine, whose speed jumps from one minute to the next.
        return [h[key] / p[key] for h, p in zip(h_runs, p_runs, strict=True)]

    summary = {}
    medians = ("per_test_mean_ms", "per_test_p50_ms", "per_test_p95_ms", "total_s", "cpu_s")
    for name, rs in runs.items():
        summary[name] = {key: statistics.median(r[key] for r in rs) for key in medians}
        summary[name]["session_start_s"] = [round(r["session_start_s"], 3) for r in rs]
    ratios = paired("per_test_mean_ms")
    h, p = summary["hooklab"], summary["httpserver"]
    result = {
        "tests": tests,
        "rounds": rounds,
        "runs": runs,
        **summary,
        "ratios_per_test": [round(r, 3) for r in ratios],
        "ratio_per_test": statistics.median(ratios),
        "ratio_per_test_median": statistics.median(paired("per_test_p50_ms")),
        "ratio_total": statistics.median(paired("total_s")),
    }
    result["passed"] = {
        "per_test": result["ratio_per_test"] <= 1.5,
        "start": max(h["session_start_s"]) <= 1.0,
    }
    common.write_result("fixture", result)
    print(
        f"fixture: per test x{result['ratio_per_test']:.2f} (median of the rounds' ratios "
        f"{', '.join(f'{r:.2f}' for r in ratios)}); medians hooklab {h['per_test_mean_ms']:.1f} "
        f"ms, pytest-httpserver {p['per_test_mean_ms']:.1f} ms; hooklab session start "
        f"{max(h['session_start_s']):.2f} s at worst; totals x{result['ratio_total']:.2f}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    main(args.tests, args.rounds)
