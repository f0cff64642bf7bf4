"""`hooklab serve` as a real subprocess on a free port of 127.0.0.1, for the fault tests.

The in-process live_server fixture runs Werkzeug; these tests need what users run (gunicorn),
and some of them kill the process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

HOOKLAB = str(Path(sys.executable).with_name("hooklab"))


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    """One `hooklab serve` process."""

    process: subprocess.Popen
    port: int
    log_path: Path
    env: dict = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until the server answers (a 401 under a token counts); else fail with its output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"hooklab serve exited early:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/api/health", timeout=1).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"hooklab serve did not answer in {timeout} s:\n{self.log()}")

    def kill(self) -> None:
        """kill -9 the whole process group (gunicorn's arbiter and its worker)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """A clean stop (SIGTERM), then kill -9 whatever is left."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)


def start(tmp_path: Path, *args: str, env: dict | None = None, wait: bool = True) -> Served:
    """Start `hooklab serve` on a free port with the given extra options."""
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    # The environment of the test run must not leak HOOKLAB_* settings into the server.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")}
    clean.update(env or {})
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [HOOKLAB, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean,
            cwd=tmp_path,
            start_new_session=True,  # its own process group, so kill -9 reaches the worker too
        )
    served = Served(process, port, log_path, clean)
    if wait:
        try:
            served.wait_ready()
        except AssertionError:
            served.kill()
            raise
    return served
