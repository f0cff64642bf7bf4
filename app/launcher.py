"""Start `serve()` (app/server.py, the server of `hooklab serve`) in a child process.

The one way the tests, the pytest fixture, `hooklab demo` and the benchmarks start a server:
the parent binds 127.0.0.1:`port` (0: a free port) first and hands the socket to the child,
so the port is known at once and cannot be taken in between; settings travel as HOOKLAB_*
variables, with the caller's own HOOKLAB_* variables left out (the server is self-contained).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from hooklab.shared.settings import Settings, as_environ

READY_TIMEOUT_S = 30.0


class ServerFailed(RuntimeError):
    """The server did not start; the message ends with what it printed."""


@dataclass
class RunningServer:
    """A `serve()` child process on 127.0.0.1; `stop()` ends it (and removes its temp folder)."""

    process: subprocess.Popen
    port: int
    settings: Settings
    folder: Path
    temp: bool = False
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def db(self) -> str:
        return self.settings.db

    @property
    def log_path(self) -> Path:
        return self.folder / f"serve-{self.port}.log"

    def log(self) -> str:
        """What the server printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until the server answers (a 401 under a token counts); ServerFailed if not."""
        deadline = time.monotonic() + timeout
        with requests.Session() as session:
            session.trust_env = False
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerFailed(f"the server exited at start:\n{self.log()}")
                try:
                    if session.get(f"{self.url}/api/health", timeout=1).status_code < 500:
                        return
                except requests.RequestException:
                    pass
                time.sleep(0.01)  # the child is importing; nothing to wait on but the port
        self.kill()
        raise ServerFailed(f"the server did not answer within {timeout:g} s:\n{self.log()}")

    def signal(self, signum: int) -> None:
        """Send `signum` to the server's process group (gunicorn's arbiter and serving process)."""
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """kill -9 the server (crash tests); the database and folder stay."""
        self.signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        """A quick stop (gunicorn's SIGINT), kill -9 after `timeout`; removes a temp folder."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.signal(signal.SIGKILL)  # whatever is left of the group
        self.process.wait(10)
        if self.temp:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_server(
    db: str | Path | None = None,
    *,
    port: int = 0,
    folder: str | Path | None = None,
    wait: bool = True,
    environ: dict[str, str] | None = None,
    settings: Settings | None = None,
    kind: type[RunningServer] = RunningServer,
    **overrides: Any,
) -> RunningServer:
    """Serve Hooklab on 127.0.0.1:`port` in a child process, on `db` or a temporary database.

    Settings: `settings` (else the defaults and the HOOKLAB_* variables of `environ`), then
    `overrides` (`token="x"`, `retry_schedule="0.2,0.4"`); `folder` holds the log (default: a
    temporary folder, removed by `stop()`, which also holds a temporary database).
    OSError when the port cannot be bound; ServerFailed when the server does not come up.
    """
    temp = folder is None
    folder = Path(tempfile.mkdtemp(prefix="hooklab-") if folder is None else folder)
    try:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(2048)
            port = listener.getsockname()[1]
            values = settings.values() if settings is not None else {}
            if db is not None or settings is None:
                values["db"] = str(db or folder / "hooklab.db")
            values.update(overrides, host="127.0.0.1", port=port)
            environ = environ or {}
            chosen = Settings(values, environ=environ)  # only its HOOKLAB_* variables are read
            env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")}
            env.update({k: v for k, v in environ.items() if not k.startswith("HOOKLAB_")})
            env.update(as_environ(chosen))
            with open(folder / f"serve-{port}.log", "wb") as log:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "hooklab.app",
                        "--listen-fd",
                        str(listener.fileno()),
                        "--parent",  # a test run that dies leaves no server behind
                        str(os.getpid()),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=folder,
                    pass_fds=[listener.fileno()],
                    start_new_session=True,  # its own group: a stop or kill reaches both processes
                )
        finally:
            listener.close()  # the child holds its own copy
        server = kind(process, port, chosen, folder, temp)
        if wait:
            server.wait_ready()
        return server
    except BaseException:
        if temp:
            shutil.rmtree(folder, ignore_errors=True)
        raise
