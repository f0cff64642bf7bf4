"""What every benchmark shares: free ports, starting and stopping servers, wrk, the machine.

Every loop here is bounded in count and in time, and all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
HOOKLAB = str(VENV_BIN / "hooklab")
HOST = "127.0.0.1"
# The 120-byte JSON body every capture benchmark posts.
BODY_120 = json.dumps(
    {"event": "invoice.paid", "id": "evt_0123456789", "amount": 4200, "currency": "EUR", "x": ""}
)
BODY_120 = BODY_120[:-2] + "x" * (120 - len(BODY_120)) + BODY_120[-2:]
assert len(BODY_120.encode()) == 120, len(BODY_120)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 15.0) -> float:
    """Poll `url` until it answers; returns the seconds waited (bounded by `timeout`)."""
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return time.monotonic() - start
        except requests.RequestException:
            time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@dataclass
class Server:
    """A server process on 127.0.0.1:`port`."""

    proc: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def running(
    cmd: list[str], port: int, ready_path: str = "/", env: dict | None = None, timeout: float = 20.0
) -> Iterator[Server]:
    """Start `cmd` (which listens on `port`), wait until it answers, stop it afterwards."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, cwd=str(ROOT))
    server = Server(proc, port)
    try:
        wait_for(server.url + ready_path, timeout)
        yield server
    finally:
        server.stop()


def hooklab_serve(db: str, port: int, *extra: str) -> list[str]:
    """The command line of `hooklab serve` as a user runs it (default settings)."""
    return [HOOKLAB, "serve", "--db", db, "--port", str(port), *extra]


def gunicorn_app(target: str, port: int, python: str = sys.executable) -> list[str]:
    """Serve the WSGI app `module:callable` with exactly the gunicorn config of `hooklab serve`."""
    return [python, str(BENCH_DIR / "serve_app.py"), target, str(port)]


HTTPBIN_VENV = BENCH_DIR / ".venv-httpbin"
# httpbin 0.10 pins greenlet<3 on Python < 3.12, and Playwright (a test dependency) needs
# greenlet>=3.1: the two cannot share a venv, so httpbin gets its own, beside the scripts.
HTTPBIN_REQUIREMENTS = ["httpbin==0.10.4", "gunicorn>=22"]


def ensure_httpbin() -> str:
    """The python of httpbin's own venv, creating it on first use; returns its path."""
    python = HTTPBIN_VENV / "bin" / "python"
    ready = HTTPBIN_VENV / ".installed"
    if not ready.exists():
        print("bench: installing httpbin in its own venv (bench/.venv-httpbin)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(HTTPBIN_VENV)], check=True, timeout=120)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, *HTTPBIN_REQUIREMENTS], check=True, timeout=600)
        # hooklab itself, for serve_app.py's gunicorn config (its other dependencies unneeded).
        subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True, timeout=600)
        ready.touch()
    return str(python)


@contextmanager
def temp_dir() -> Iterator[Path]:
    """A temporary folder, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="hooklab-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# Set by run_all.py for one run: a folder where a benchmark leaves a database it set up for a
# later one (store_scale's 1,000,000 requests, indexed, for search), so it is built once.
SHARED_ENV = "HOOKLAB_BENCH_SHARED"


def full_store_name(total: int) -> str:
    """The name store_scale keeps its store of `total` requests under (1,000 bins, 120-byte
    bodies, indexed for search)."""
    return f"full-store-{total}.db"


def keep_for_later(db: str, name: str) -> None:
    """Copy `db` (no one writing to it) for a later benchmark of this run."""
    folder = os.environ.get(SHARED_ENV)
    if folder:
        conn = sqlite3.connect(db)
        try:  # all of it in the main file, so that a copy of that file is the whole store
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            conn.close()
        shutil.copyfile(db, Path(folder) / name)


def take_kept(name: str, db: str) -> bool:
    """Move what an earlier benchmark of this run kept as `name` to `db` (one taker: no copy
    of 700 MB more); False if nothing."""
    folder = os.environ.get(SHARED_ENV)
    kept = Path(folder) / name if folder else None
    if kept is None or not kept.exists():
        return False
    shutil.move(kept, db)
    return True


def caught_up(db: str, timeout: float = 600.0) -> float:
    """Wait until the server's indexer has indexed everything; returns the seconds it took."""
    from hooklab.app.factory import open_store
    from hooklab.bin_server.search_index import behind

    store = open_store(db)
    started = time.monotonic()
    while behind(store) and time.monotonic() - started < timeout:
        time.sleep(0.05)
    if behind(store):
        raise RuntimeError("the search indexer did not catch up")
    store.close()
    return time.monotonic() - started


def settle(db: str) -> float:
    """After a wrk run: the requests in flight when it stopped answered (0.3 s), then the
    server's search indexer caught up; returns the seconds the indexer took."""
    time.sleep(0.3)
    return caught_up(db)


def alternate(
    urls: dict[str, str],
    script: str,
    seconds: int,
    rounds: int,
    label: str,
    after: Callable[[str, WrkResult], str | None] | None = None,
    connections: int = 16,
) -> dict[str, list[float]]:
    """Contenders side by side: one wrk run (`connections`, `script`) on each url in turn,
    `rounds` times, the order flipped every round; each one's rates, in round order.

    `after(name, result)` runs right after each run (to let the server settle, to read what
    it did); what it returns is added to the run's line.
    """
    rates: dict[str, list[float]] = {name: [] for name in urls}
    for number in range(rounds):
        for name in urls if number % 2 == 0 else reversed(urls):
            result = run_wrk(urls[name], seconds, connections, script=script)
            if result.non_2xx or not result.requests:
                raise RuntimeError(f"{name}: {result.non_2xx} of {result.requests} not 2xx")
            rates[name].append(result.rps)
            note = after(name, result) if after is not None else None
            line = f"{label}: round {number + 1} {name:13} {result.rps:8.0f} req/s"
            print(line + (f", {note}" if note else ""), flush=True)
    return rates


def paired(rates: dict[str, list[float]], top: str, bottom: str) -> dict:
    """What `alternate` measured, judged on the median of the rounds' ratios top / bottom."""
    ratios = [t / b for t, b in zip(rates[top], rates[bottom], strict=True)]
    return {
        "rates": {name: [round(r) for r in values] for name, values in rates.items()},
        "ratios": [round(r, 3) for r in ratios],
        "ratio_median": statistics.median(ratios),
        "median_rps": {name: statistics.median(values) for name, values in rates.items()},
    }


SETUP_INDEX_BATCH = 5_000  # requests indexed per transaction while setting up


def index_for_setup(db: str) -> float:
    """Bring the search index of `db` up to date (what the server's indexer would do); returns
    the seconds. Set-up only: 5,000 requests a transaction where the indexer takes 100 (to hold
    the write lock briefly while captures wait), which halves the time (bench/search.py times
    the indexer's own rate, on a sample)."""
    from hooklab.app.factory import open_store
    from hooklab.bin_server.search_index import index_batch

    started = time.monotonic()
    store = open_store(db)
    while index_batch(store, SETUP_INDEX_BATCH):
        pass
    store.close()
    return time.monotonic() - started


def new_bin(db: str, **columns) -> str:
    """Create a bin directly in the store at `db`; returns its id."""
    from hooklab.app.factory import open_store
    from hooklab.bin_server.bins import create_bin

    store = open_store(db)
    store.migrate()
    bin_id = create_bin(store, columns)["id"]
    store.close()
    return bin_id


def ensure_wrk() -> str:
    """The path of wrk, installing the Debian package when root; else says how and exits."""
    path = shutil.which("wrk")
    if path:
        return path
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: installing wrk with apt-get", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=300)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env, timeout=300
        )
        path = shutil.which("wrk")
        if path:
            return path
    sys.exit("bench: wrk is missing; install it with `sudo apt-get install wrk` and run again")


@dataclass
class WrkResult:
    """What wrk reported for one run."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    latency_p50_ms: float
    latency_p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_wrk(
    url: str,
    seconds: int = 10,
    connections: int = 16,
    threads: int = 1,
    script: str | None = None,
    cpu: int | None = None,
) -> WrkResult:
    """Run wrk against `url` (with the Lua `script`, if any) and parse its report.

    `cpu`: run wrk on that CPU only (taskset).
    """
    cmd = ["taskset", "-c", str(cpu)] if cpu is not None else []
    cmd += [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    count = int(total.group(1))
    secs = _ms(total.group(2) + total.group(3)) / 1000
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    p50 = re.search(r"\s50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"\s99%\s+([\d.]+\w+)", out)
    return WrkResult(
        requests=count,
        seconds=secs,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        latency_p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        latency_p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
    )


def post_script(folder: Path, body: str = BODY_120) -> str:
    """Write the wrk Lua script that POSTs `body` as JSON; returns its path."""
    path = folder / "post.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return str(path)


def machine() -> dict:
    """The machine the figures come from."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_before": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "busy_before": busy_processes(),
    }


def percentile(values: list[float], pct: float) -> float:
    """The `pct` percentile (nearest rank) of `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def write_result(name: str, result: dict) -> Path:
    """Save one benchmark's result as JSON in bench/results/ (run_all.py reads them)."""
    folder = BENCH_DIR / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid: int) -> int:
    """Context switches of every thread of a process so far (voluntary and not), from /proc.

    A thread that blocks (a lock, the GIL, a socket) and is woken again counts one: the
    hand-offs between a server's threads, which cost most on a shared virtual CPU.
    """
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:  # the thread ended meanwhile
            continue
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def worker_pid(master_pid: int, timeout: float = 10.0) -> int:
    """The pid of gunicorn's worker process (the master's only child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError("gunicorn worker did not start")


def pin_process(pid: int, cpu: int) -> None:
    """Keep every thread of process `pid` on one CPU (taskset)."""
    subprocess.run(
        ["taskset", "-a", "-p", "-c", str(cpu), str(pid)],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=10,
    )


def busy_processes(seconds: float = 1.0, threshold: float = 0.05) -> list[str]:
    """Other processes using more than `threshold` of a core over `seconds` (what else ran)."""

    def sample() -> dict[int, tuple[str, float]]:
        out = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                name = (entry / "comm").read_text().strip()
                out[int(entry.name)] = (name, cpu_seconds(int(entry.name)))
            except (OSError, ValueError, IndexError):
                continue
        return out

    first = sample()
    time.sleep(seconds)
    second = sample()
    busy: dict[str, float] = {}
    for pid, (name, cpu) in second.items():
        if pid in first and pid != os.getpid():
            share = (cpu - first[pid][1]) / seconds
            if share > 0:
                busy[name] = busy.get(name, 0.0) + share
    ranked = sorted(busy.items(), key=lambda item: -item[1])
    return [f"{name} {share:.0%}" for name, share in ranked if share >= threshold]
