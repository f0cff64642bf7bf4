"""`python -m hooklab.app [--listen-fd N]`: serve with the settings of the environment.

What app/launcher.py runs in a child process: the same `serve()` as `hooklab serve`, on a
socket the parent bound already (so the port is known before the child starts).
"""

from __future__ import annotations

import argparse

from hooklab.app.server import serve
from hooklab.shared.settings import Settings


def main() -> None:
    """Parse --listen-fd and serve."""
    parser = argparse.ArgumentParser(prog="python -m hooklab.app")
    parser.add_argument("--listen-fd", type=int, default=None)
    args = parser.parse_args()
    serve(Settings(), args.listen_fd)


if __name__ == "__main__":
    main()
