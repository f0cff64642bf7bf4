"""Delivery throughput and latency: 2,000 events to a webhook whose receiver answers in 20 ms.

Contenders, each sending to the same receiver (bench/receiver.py, its own process):
- hooklab: the outbox filled with the public firing function (`hooklab.sender.firing.fire`,
  one transaction per event, as `POST /api/events/<slug>` does), then `hooklab serve` starts and
  its delivery workers drain it: every delivery signed, every attempt logged;
- bare: the same number of threads, one `requests.Session` each, the same bodies, no store,
  no signing;
- sequential: a plain `requests.post` loop (fewer events: it is slow; its rate is what counts).
Throughput is measured at the receiver: (events - 1) / (last arrival - first arrival). The
contenders run in rounds, one after the other (the order flips every round), and each ratio is
the median of the rounds' ratios, as bench/capture.py does; every Hooklab round is checked
(signed, distinct, logged).
Then latency: `hooklab serve` fired through `POST /api/events/<slug>` at 100 events/s; the
payload carries the firing time, the receiver stamps the arrival (CLOCK_MONOTONIC both).
Targets: hooklab >= 0.8x bare and >= 10x sequential; fired-to-received p99 <= 100 ms.

Usage: python bench/delivery.py [--events 2000] [--sequential 150] [--latency-seconds 10]
                                [--rounds 3] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import queue
import sqlite3
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

DELAY_MS = 20
EVENT = "payment_received"


def clock() -> float:
    """CLOCK_MONOTONIC in seconds: the same clock in every process of this machine."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class ReceiverClient:
    """Talks to the receiver process."""

    def __init__(self, url: str) -> None:
        self.url = url

    def clear(self) -> None:
        requests.delete(f"{self.url}/records", timeout=10).raise_for_status()

    def records(self) -> list[dict]:
        return requests.get(f"{self.url}/records", timeout=30).json()

    def wait_for(self, count: int, timeout: float) -> list[dict]:
        """The records once `count` arrived (or what arrived within `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.records()
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.25)


def rate(records: list[dict]) -> float:
    """Deliveries per second at the receiver, first arrival to last."""
    if len(records) < 2:
        return 0.0
    times = sorted(r["at"] for r in records)
    return (len(times) - 1) / (times[-1] - times[0])


def prepare_store(db: str, receiver_url: str, events: int) -> tuple[str, list[str]]:
    """A database with a webhook on the receiver and `events` fired events; (secret, bodies)."""
    from hooklab.app.factory import open_store
    from hooklab.sender.firing import fire
    from hooklab.sender.webhooks import create_webhook
    from hooklab.shared.settings import Settings

    store = open_store(db)
    store.migrate()
    settings = Settings({"db": db}, environ={})
    webhook = create_webhook(
        store, {"name": "bench", "url": f"{receiver_url}/hook", "event": EVENT}, settings
    )
    for seq in range(events):
        fire(store, EVENT, {"seq": seq, "note": "delivery benchmark"})
    bodies = [
        r[0] for r in store.conn.execute("SELECT body FROM deliveries ORDER BY id").fetchall()
    ]
    store.close()
    return webhook["secret"], bodies


def check_hooklab(db: str, secret: str, records: list[dict], events: int) -> dict:
    """Every event delivered once, signed, and logged with its attempt."""
    from hooklab.shared.signing import verify

    ids = [r["headers"]["webhook-id"] for r in records]
    signed = sum(
        1
        for r in records
        if verify(
            secret,
            {k: v for k, v in r["headers"].items() if v is not None},
            r["body"].encode(),
        )[0]
    )
    with sqlite3.connect(db) as conn:
        succeeded = conn.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'succeeded'"
        ).fetchone()[0]
        attempts = conn.execute("SELECT count(*) FROM attempts WHERE ok = 1").fetchone()[0]
    return {
        "received": len(records),
        "distinct": len(set(ids)),
        "signed": signed,
        "logged_succeeded": succeeded,
        "logged_attempts": attempts,
        "passed": len(records) == len(set(ids)) == signed == succeeded == attempts == events,
    }


def run_hooklab(folder: Path, receiver: ReceiverClient, events: int, workers: int) -> dict:
    """Fill the outbox, start `hooklab serve`, and time its workers draining it."""
    db = str(folder / f"delivery-{len(list(folder.glob('delivery-*.db')))}.db")
    secret, _ = prepare_store(db, receiver.url, events)
    receiver.clear()
    port = common.free_port()
    cmd = common.hooklab_serve(db, port, "--delivery-workers", str(workers))
    with common.running(cmd, port, "/api/health"):
        records = receiver.wait_for(events, timeout=events / 20 + 30)
        time.sleep(0.5)  # the last attempts are logged after their answer
    return {"rate": rate(records), **check_hooklab(db, secret, records, events)}


def run_bare(receiver: ReceiverClient, bodies: list[str], workers: int) -> dict:
    """`workers` threads, one Session each, no store, no signing."""
    receiver.clear()
    todo: queue.Queue[str] = queue.Queue()
    for body in bodies:
        todo.put(body)

    def run() -> None:
        session = requests.Session()
        session.trust_env = False
        headers = {"Content-Type": "application/json"}
        while True:
            try:
                body = todo.get_nowait()
            except queue.Empty:
                break
            session.post(f"{receiver.url}/hook", data=body.encode(), headers=headers, timeout=10)
        session.close()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(len(bodies) / 10 + 30)
    records = receiver.wait_for(len(bodies), timeout=10)
    return {"rate": rate(records), "received": len(records)}


def run_sequential(receiver: ReceiverClient, bodies: list[str]) -> dict:
    """One `requests.post` after the other, a new connection each (as a plain loop does)."""
    receiver.clear()
    headers = {"Content-Type": "application/json"}
    for body in bodies:
        requests.post(f"{receiver.url}/hook", data=body.encode(), headers=headers, timeout=10)
    records = receiver.wait_for(len(bodies), timeout=10)
    return {"rate": rate(records), "received": len(records)}


def run_latency(folder: Path, receiver: ReceiverClient, per_second: int, seconds: int) -> dict:
    """Fire through the API at a steady rate; fired-to-received time of every delivery."""
    from hooklab.sender.webhooks import create_webhook
    from hooklab.shared.settings import Settings

    db = str(folder / "latency.db")
    from hooklab.app.factory import open_store

    store = open_store(db)
    store.migrate()
    create_webhook(
        store,
        {"name": "bench", "url": f"{receiver.url}/hook", "event": EVENT},
        Settings({"db": db}, environ={}),
    )
    store.close()
    receiver.clear()
    port = common.free_port()
    total = per_second * seconds
    with common.running(common.hooklab_serve(db, port), port, "/api/health") as server:
        url = f"{server.url}/api/events/{EVENT}"
        accepted = 0
        lock = threading.Lock()
        start = clock() + 0.2
        senders = 4

        def run(first: int) -> None:
            nonlocal accepted
            session = requests.Session()
            for seq in range(first, total, senders):
                delay = start + seq / per_second - clock()
                if delay > 0:
                    time.sleep(delay)
                response = session.post(url, json={"seq": seq, "fired_at": clock()}, timeout=10)
                if response.status_code == 202:
                    with lock:
                        accepted += 1
            session.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 30)
        records = receiver.wait_for(total, timeout=30)
    latencies = []
    for record in records:
        payload = json.loads(record["body"])
        latencies.append((record["at"] - payload["fired_at"]) * 1000)
    return {
        "per_second": per_second,
        "fired": total,
        "accepted": accepted,
        "received": len(records),
        "p50_ms": common.percentile(latencies, 50),
        "p95_ms": common.percentile(latencies, 95),
        "p99_ms": common.percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
    }


def main(
    events: int = 2000,
    sequential: int = 150,
    latency_seconds: int = 10,
    workers: int = 0,
    rounds: int = 3,
) -> dict:
    """Run the benchmark; returns (and saves) its result."""
    from hooklab.shared.settings import Settings

    workers = workers or Settings(environ={}).delivery_workers  # the default of `serve`
    port = common.free_port()
    receiver_cmd = [sys.executable, str(common.BENCH_DIR / "receiver.py"), str(port), "20"]
    runs: dict[str, list[dict]] = {"hooklab": [], "bare": [], "sequential": []}
    with common.temp_dir() as folder, common.running(receiver_cmd, port, "/") as server:
        receiver = ReceiverClient(server.url)
        _, bodies = prepare_store(str(folder / "bodies.db"), receiver.url, events)
        order = list(runs)
        for number in range(rounds):
            for name in order if number % 2 == 0 else list(reversed(order)):
                if name == "hooklab":
                    run = run_hooklab(folder, receiver, events, workers)
                elif name == "bare":
                    run = run_bare(receiver, bodies, workers)
                else:
                    run = run_sequential(receiver, bodies[:sequential])
                runs[name].append(run)
                print(f"delivery: round {number + 1} {name:10} {run['rate']:6.0f}/s", flush=True)
        latency = run_latency(folder, receiver, 100, latency_seconds)
    # Each round's contenders run one after the other: a round's ratio compares them at the
    # same moments of the machine, whose speed jumps from one minute to the next; the figure
    # is the median of the rounds' ratios. Each contender is shown by its median round.
    middle = {name: sorted(rs, key=lambda r: r["rate"])[len(rs) // 2] for name, rs in runs.items()}
    hooklab, bare, seq = middle["hooklab"], middle["bare"], middle["sequential"]

    def ratios(other: str) -> list[float]:
        pairs = zip(runs["hooklab"], runs[other], strict=True)
        return [h["rate"] / o["rate"] if o["rate"] else float("nan") for h, o in pairs]

    result = {
        "events": events,
        "receiver_delay_ms": DELAY_MS,
        "workers": workers,
        "rounds": rounds,
        "runs": {name: [round(r["rate"], 1) for r in rs] for name, rs in runs.items()},
        "hooklab": hooklab,
        "bare": bare,
        "sequential": {**seq, "events": sequential},
        "ratios_bare": [round(r, 3) for r in ratios("bare")],
        "ratio_bare": statistics.median(ratios("bare")),
        "ratio_sequential": statistics.median(ratios("sequential")),
        "latency": latency,
    }
    result["passed"] = {
        "vs_bare": result["ratio_bare"] >= 0.8,
        "vs_sequential": result["ratio_sequential"] >= 10,
        "latency_p99": latency["p99_ms"] <= 100 and latency["received"] == latency["fired"],
        "signed_and_logged": all(r["passed"] for r in runs["hooklab"]),
    }
    common.write_result("delivery", result)
    print(
        f"delivery (median rounds): hooklab {hooklab['rate']:.0f}/s, bare {bare['rate']:.0f}/s, "
        f"sequential "
        f"{seq['rate']:.0f}/s; x{result['ratio_bare']:.2f} bare, "
        f"x{result['ratio_sequential']:.1f} sequential; at 100 events/s p50 "
        f"{latency['p50_ms']:.0f} ms, p99 {latency['p99_ms']:.0f} ms; checks "
        f"{'ok' if result['passed']['signed_and_logged'] else 'FAILED'}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--sequential", type=int, default=150)
    parser.add_argument("--latency-seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=0, help="default: serve's default")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    main(args.events, args.sequential, args.latency_seconds, args.workers, args.rounds)
