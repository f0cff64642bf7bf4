"""`hooklab worker`: delivery workers alone against the database, for more throughput."""

from __future__ import annotations

import signal
import threading

from hooklab.sender.delivery import DeliveryWorkers
from hooklab.shared.settings import Settings
from hooklab.shared.store import Store


def run_worker(store: Store, settings: Settings, stop: threading.Event | None = None) -> None:
    """Send due deliveries from `store` until Ctrl-C (or until `stop` is set)."""
    store.migrate()
    workers = DeliveryWorkers(store, settings)
    workers.start()
    print(
        f"Hooklab delivery workers: {workers.count} threads on {settings.db} (Ctrl-C to stop)",
        flush=True,
    )
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (systemd, docker stop) stops as Ctrl-C does: claims handed back, outcomes
        # written (workers.stop below), nothing left to be sent twice.
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        # wait() with a timeout keeps the main thread responsive to Ctrl-C.
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        workers.stop()
        store.close()
