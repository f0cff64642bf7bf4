"""The server as users run it (app/launcher.py: gunicorn in a child process), for the fault tests.

`start(tmp_path, "--db", path, "--token", "t")` takes `hooklab serve`'s options; some tests
kill the process.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from hooklab.app.launcher import RunningServer, ServerFailed, start_server

HOOKLAB = str(Path(sys.executable).with_name("hooklab"))

Served = RunningServer


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(tmp_path: Path, *args: str, env: dict | None = None, wait: bool = True) -> Served:
    """Start the server on a free port with `hooklab serve` options (`--name value` pairs)."""
    if len(args) % 2:
        raise ValueError(f"options come in --name value pairs: {args}")
    overrides = {
        name.removeprefix("--").replace("-", "_"): value
        for name, value in zip(args[::2], args[1::2], strict=True)
    }
    try:
        return start_server(folder=tmp_path, environ=env, wait=wait, **overrides)
    except ServerFailed as exc:
        raise AssertionError(str(exc)) from None
