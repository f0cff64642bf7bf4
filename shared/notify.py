"""Wake waiting threads when something is written in this process.

One class for every such wake-up: live streams and long polls wait for captures, delivery
workers for due deliveries (`Store.notifier(topic)`). Waiters also time out and re-read the
store, so writes made by another process are seen too.

A change may name what it is about (a bin's id, for a capture): a waiter that only cares for
that key (`bell(key)`) is then woken by that key's changes and by changes naming no key, not by
every capture of every bin.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager


class Notifier:
    """A counter and a condition: `changed()` bumps it, `wait(seen)` sleeps until it moves."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._sleepers = 0  # threads in wait(), guarded by _cond
        self._bells: dict[Hashable, set[threading.Event]] = {}  # guarded by _cond

    @property
    def version(self) -> int:
        return self._version

    def changed(self, key: Hashable | None = None) -> None:
        """Tell the waiters that the store changed: every one, or with `key` those of `key`
        and those that wait for any change."""
        with self._cond:
            self._version += 1
            if self._sleepers:  # one capture at a time is the hot path: skip what is empty
                self._cond.notify_all()
            if not self._bells:
                return
            if key is None:
                bells = [bell for group in self._bells.values() for bell in group]
            else:
                bells = list(self._bells.get(key, ()))
        for bell in bells:
            bell.set()

    def nudge(self, count: int) -> None:
        """Move the version on and wake at most `count` of the threads in `wait()` (no bell):
        for a pool whose idle threads are woken one per piece of work, not all at once."""
        with self._cond:
            self._version += 1
            self._cond.notify(count)

    def wait(self, seen: int, timeout: float) -> int:
        """Wait until the version differs from `seen` or `timeout` passes; return the version."""
        with self._cond:
            if self._version == seen and timeout > 0:
                self._sleepers += 1
                try:
                    self._cond.wait(timeout)
                finally:
                    self._sleepers -= 1
            return self._version

    @contextmanager
    def bell(self, key: Hashable) -> Iterator[threading.Event]:
        """An Event set by every change of `key` (or naming no key) while the block runs.

        Clear it before reading the store, then wait on it: a change in between leaves it set.
        """
        bell = threading.Event()
        with self._cond:
            self._bells.setdefault(key, set()).add(bell)
        try:
            yield bell
        finally:
            with self._cond:
                group = self._bells[key]
                group.discard(bell)
                if not group:
                    del self._bells[key]
