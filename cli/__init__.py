"""The `hooklab` command: a client of the HTTP API, plus `serve`, `worker` and `demo`."""

from hooklab.cli.main import main

__all__ = ["main"]
