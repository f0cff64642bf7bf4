"""Time as shown: `iso(ms)` formats each second once (cached) and must still give every
millisecond exactly, on both sides of the epoch and of a second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hooklab.shared.clock import iso

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (999, "1970-01-01T00:00:00.999Z"),
        (1000, "1970-01-01T00:00:01.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-1000, "1969-12-31T23:59:59.000Z"),
        (-1001, "1969-12-31T23:59:58.999Z"),
        (1_764_590_400_123, "2025-12-01T12:00:00.123Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_iso_gives_the_millisecond(ms, shown):
    assert iso(ms) == shown


def test_iso_of_a_run_of_milliseconds_matches_datetime():
    # A second seen once is cached: the milliseconds that follow must not take its ending.
    start = 1_764_590_399_990
    for ms in range(start, start + 30):
        expected = (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        assert iso(ms) == expected + "Z"


def test_iso_of_nothing_is_none():
    assert iso(None) is None
