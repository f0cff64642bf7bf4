"""Profile the capture path: py-spy samples the `hooklab serve` worker while wrk loads it.

Prints the functions holding the most samples (inclusive and self), over all threads, and saves
the collapsed stacks in bench/results/ (feed them to any flame graph viewer).
Not part of `make bench`; run it by hand before changing the capture path:

    .venv/bin/python bench/profile_capture.py [--seconds 8] [--idle]

Needs py-spy (`pip install -e '.[bench]'`) and ptrace rights (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def summarize(collapsed: str, top: int = 25) -> str:
    """The `top` frames by inclusive and by self samples, from py-spy's collapsed output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples", "", "inclusive:"]
    for frame, count in inclusive.most_common(top):
        lines.append(f"{100 * count / total:6.1f}%  {frame}")
    lines += ["", "self:"]
    for frame, count in own.most_common(top):
        lines.append(f"{100 * count / total:6.1f}%  {frame}")
    return "\n".join(lines)


def main(seconds: int, idle: bool, gil: bool, native: bool = False) -> None:
    """Run wrk against `hooklab serve` under py-spy; print the summary."""
    py_spy = shutil.which("py-spy") or str(common.VENV_BIN / "py-spy")
    with common.temp_dir() as folder:
        db = str(folder / "profile.db")
        bin_id = common.new_bin(db)
        port = common.free_port()
        script = common.post_script(folder)
        out = folder / "stacks.txt"
        with common.running(common.hooklab_serve(db, port), port, "/api/health") as server:
            pid = common.worker_pid(server.proc.pid)
            cmd = [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--output",
                str(out),
                "--duration",
                str(seconds + 1),
                "--rate",
                "250",
            ]
            if idle:
                cmd.append("--idle")
            if gil:
                cmd.append("--gil")
            if native:
                cmd.append("--native")
            else:
                cmd.append("--nonblocking")  # no pauses of the server while sampling
            spy = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            time.sleep(0.5)
            result = common.run_wrk(f"{server.url}/b/{bin_id}", seconds, 16, script=script)
            _, spy_errors = spy.communicate(timeout=seconds + 30)
        if not out.exists():
            sys.exit(f"py-spy recorded nothing: {spy_errors.strip()}")
        collapsed = out.read_text()
    folder_out = common.BENCH_DIR / "results"
    folder_out.mkdir(exist_ok=True)
    (folder_out / "capture-profile.txt").write_text(collapsed)
    print(
        f"wrk: {result.rps:.0f} req/s, p50 {result.latency_p50_ms} ms, "
        f"p99 {result.latency_p99_ms} ms"
    )
    print(summarize(collapsed))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--idle", action="store_true", help="also sample idle threads")
    parser.add_argument("--gil", action="store_true", help="only sample the thread holding the GIL")
    parser.add_argument("--native", action="store_true", help="also sample C frames (SQLite)")
    args = parser.parse_args()
    main(args.seconds, args.idle, args.gil, args.native)
