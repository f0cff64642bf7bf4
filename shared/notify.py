"""Wake waiting threads when something is written in this process.

One class for every such wake-up: live streams and long polls wait for captures, delivery
workers for due deliveries (`Store.notifier(topic)`). Waiters also time out and re-read the
store, so writes made by another process are seen too.
"""

from __future__ import annotations

import threading


class Notifier:
    """A counter and a condition: `changed()` bumps it, `wait(seen)` sleeps until it moves."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0

    @property
    def version(self) -> int:
        return self._version

    def changed(self) -> None:
        """Tell every waiter that the store changed."""
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """Wait until the version differs from `seen` or `timeout` passes; return the version."""
        with self._cond:
            if self._version == seen and timeout > 0:
                self._cond.wait(timeout)
            return self._version
