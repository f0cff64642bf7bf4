"""Run the app: gunicorn, one worker process with many threads (Werkzeug where gunicorn cannot)."""

from __future__ import annotations

import logging
import sys

from hooklab.shared.settings import Settings

log = logging.getLogger("hooklab")


def banner(settings: Settings) -> str:
    """The line printed when the server starts."""
    return (
        f"Hooklab on http://{settings.host}:{settings.port}/  "
        f"(database {settings.db}, {settings.threads} threads)"
    )


def gunicorn_config(settings: Settings) -> dict:
    """The gunicorn settings of `hooklab serve` (bench/ serves its contenders with the same)."""
    from hooklab.app.slow_clients import worker_class  # imports gunicorn (POSIX only)

    return {
        "bind": f"{settings.host}:{settings.port}",
        "workers": 1,  # several processes would not share the live notifier
        # gthread with a read deadline per request, so slow clients cannot hold threads.
        "worker_class": worker_class(settings.client_timeout_s),
        "threads": settings.threads,
        "keepalive": 5,
        "timeout": 60,
        "graceful_timeout": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
    }


def serve(settings: Settings) -> None:
    """Serve until interrupted."""
    try:
        import fcntl  # noqa: F401  (gunicorn needs a POSIX system)

        from gunicorn.app.base import BaseApplication
    except ImportError:  # pragma: no cover - Windows
        _serve_werkzeug(settings)
        return

    from hooklab.app.factory import create_app, start_background

    class HooklabServer(BaseApplication):
        def load_config(self) -> None:
            config = gunicorn_config(settings)
            config["post_worker_init"] = lambda worker: start_background(worker.wsgi)
            for key, value in config.items():
                self.cfg.set(key, value)

        def load(self):
            # Built inside the worker process, so threads started later survive the fork.
            return create_app(settings)

    print(banner(settings), flush=True)
    HooklabServer().run()


def _serve_werkzeug(settings: Settings) -> None:  # pragma: no cover - Windows
    from werkzeug.serving import make_server

    from hooklab.app.factory import create_app, start_background

    app = create_app(settings)
    server = make_server(settings.host, settings.port, app, threaded=True)
    start_background(app)
    print(banner(settings), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


def run_workers(settings: Settings) -> None:
    """`hooklab worker`: delivery workers alone on the database, until Ctrl-C."""
    from hooklab.app.factory import open_store
    from hooklab.sender.worker import run_worker

    run_worker(open_store(settings.db), settings)
