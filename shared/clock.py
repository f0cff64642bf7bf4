"""Time in one form everywhere: integer milliseconds since the epoch, shown as ISO 8601 UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    """The current time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def iso(ms: int | None) -> str | None:
    """Milliseconds since the epoch as ISO 8601 UTC, e.g. 2026-01-02T03:04:05.678Z."""
    if ms is None:
        return None
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def readable(ms: int) -> str:
    """Milliseconds since the epoch for a sentence people read, e.g. 2026-01-02 03:04:05 UTC."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
