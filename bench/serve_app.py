"""Serve any WSGI app with exactly the gunicorn config of `hooklab serve`.

Usage: python bench/serve_app.py MODULE:CALLABLE PORT
The contenders of the capture benchmark (httpbin, the bare app) run through app/server.py's
`run_gunicorn` with `gunicorn_config` (the same serving class, threads and timeouts), so the
only difference between them and Hooklab is the app. httpbin's own venv has hooklab installed
without its dependencies for this (see bench/common.py).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from hooklab.app.server import gunicorn_config, run_gunicorn
from hooklab.shared.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(target: str, port: int) -> None:
    """Serve `target` (module:callable) on 127.0.0.1:`port`."""
    module, _, name = target.partition(":")
    config = gunicorn_config(Settings({"port": port}, environ={}))
    run_gunicorn(lambda: getattr(importlib.import_module(module), name), config)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
