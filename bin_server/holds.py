"""Server threads held while a connection waits: capped, so captures and the API find one.

gunicorn's gthread serves each request (a websocket included) on one of `--threads` threads
for as long as it lasts. A delayed answer, a sync forward, a long poll (`/requests/wait`) and
a live websocket each hold theirs while they wait: 64 idle long polls or websockets took
every thread of a default server, and the capture they were waiting for queued behind them
for 8 s. So all of them share one budget, `threads` less a reserve that only short requests
use (`reserved`); delayed answers and forwards also keep their own cap (`--max-waiting-answers`).
Past the budget a long poll is answered 503 at once and a websocket closed with 1013 (try
again later), each with a message that says what to do.
"""

from __future__ import annotations

import threading

from hooklab.shared.settings import Settings
from hooklab.shared.store import Store


def reserved(threads: int) -> int:
    """Threads never held by a waiting connection: 8 of the default 64, fewer on a small server."""
    return max(1, min(8, threads // 4))


class Holds:
    """Places for connections that hold a thread while they wait, up to `cap`; `parent`, if
    given, is a wider budget each place is also taken from."""

    def __init__(self, cap: int, parent: Holds | None = None) -> None:
        self.cap = cap
        self.parent = parent
        self.count = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        """Take a place, or False when all are taken (here or in the parent)."""
        with self._lock:
            if self.count >= self.cap:
                return False
            if self.parent is not None and not self.parent.enter():
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        """Give a place back."""
        with self._lock:
            self.count -= 1
        if self.parent is not None:
            self.parent.leave()


def thread_holds(store: Store, settings: Settings) -> Holds:
    """The app's budget of waiting connections (`store.attached`: one per app)."""
    return store.attached(
        "thread_holds",
        lambda: Holds(max(1, settings.threads - reserved(settings.threads))),
    )


def busy_message(holds: Holds, what: str) -> str:
    """Why a long poll or a websocket was refused, and what to do."""
    return (
        f"{holds.cap} connections already wait on this server (long polls, live pages, "
        f"delayed answers): {what} was refused so captures keep being answered. Close some, "
        "try again shortly, or start the server with more --threads."
    )
