"""The `hooklab` command: a client of the HTTP API, plus `serve`, `worker` and `demo`.

The script's entry point is `hooklab.cli.entry:main`; the command itself is `hooklab.cli.main`.
Nothing is imported here, so that the script starts on a small module (see entry.py).
"""
