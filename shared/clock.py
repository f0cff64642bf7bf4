"""Time in one form everywhere: integer milliseconds since the epoch, shown as ISO 8601 UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache


def now_ms() -> int:
    """The current time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def iso(ms: int | None) -> str | None:
    """Milliseconds since the epoch as ISO 8601 UTC, e.g. 2026-01-02T03:04:05.678Z."""
    if ms is None:
        return None
    return _second(ms // 1000) + f"{ms % 1000:03d}Z"


@lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    # A list of 1,000 requests spans a few seconds: each is formatted once (strftime was a
    # fifth of the list API's time per request).
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def readable(ms: int) -> str:
    """Milliseconds since the epoch for a sentence people read, e.g. 2026-01-02 03:04:05 UTC."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
