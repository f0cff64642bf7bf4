"""Serve any WSGI app with exactly the gunicorn config of `hooklab serve`.

Usage: python bench/serve_app.py MODULE:CALLABLE PORT
The contenders of the capture benchmark (httpbin, the bare app) run through this with the config
from `hooklab.app.server.gunicorn_config` (the same worker class, threads and timeouts), so
the only difference between them and Hooklab is the app. httpbin's own venv has hooklab
installed without its dependencies for this (see bench/common.py).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from gunicorn.app.base import BaseApplication

from hooklab.app.server import gunicorn_config
from hooklab.shared.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))


class AppServer(BaseApplication):
    """gunicorn with the settings of `hooklab serve` on `port`, serving `target`."""

    def __init__(self, target: str, port: int) -> None:
        self.target = target
        self.port = port
        super().__init__()

    def load_config(self) -> None:
        settings = Settings({"port": self.port}, environ={})
        for key, value in gunicorn_config(settings).items():
            self.cfg.set(key, value)

    def load(self):
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


if __name__ == "__main__":
    AppServer(sys.argv[1], int(sys.argv[2])).run()
