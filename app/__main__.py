"""`python -m hooklab.app [--listen-fd N] [--parent PID]`: serve with the environment's settings.

What app/launcher.py runs in a child process: the same `serve()` as `hooklab serve`, on a
socket the parent bound already (so the port is known before the child starts).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time

from hooklab.app.server import serve
from hooklab.shared.settings import Settings


def stop_with_parent(parent: int) -> None:
    """Stop (SIGTERM to this server) once `parent` is gone, so no server outlives its test run."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="hooklab-parent-watch", daemon=True).start()


def main() -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(prog="python -m hooklab.app")
    parser.add_argument("--listen-fd", type=int, default=None)
    parser.add_argument("--parent", type=int, default=None, help="stop when this process ends")
    args = parser.parse_args()
    if args.parent is not None:
        stop_with_parent(args.parent)
    serve(Settings(), args.listen_fd)


if __name__ == "__main__":
    main()
