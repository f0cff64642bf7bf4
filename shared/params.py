"""Numbers from a request's query string, checked against their range (a 400 naming them)."""

from __future__ import annotations

import math

from flask import request

from hooklab.shared.errors import ApiError

# Digits enough for any id SQLite can hold; longer text is refused before int() reads it.
MAX_DIGITS = 30


def query_int(name: str, default: int | None, low: int, high: int) -> int | None:
    """A whole-number query parameter within [low, high] (`default` when absent), or a 400."""
    text = request.args.get(name, "").strip()
    if not text:
        return default
    value = None
    if len(text) <= MAX_DIGITS and text.lstrip("-").isascii() and text.lstrip("-").isdigit():
        value = int(text)
    if value is None or not low <= value <= high:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise ApiError(
            400,
            "bad_request",
            f"{name} must be a whole number from {low} to {high}, not {shown!r}.",
            name,
        )
    return value


def query_seconds(name: str, default: float, high: float) -> float:
    """A number of seconds from 0 (`default` when absent); above `high` it is clamped to it."""
    text = request.args.get(name, "").strip()
    if not text:
        return min(default, high)
    try:
        value = float(text) if len(text) <= 40 else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise ApiError(
            400,
            "bad_request",
            f"{name} must be a number of seconds from 0 (at most {high:g} is used), not {shown!r}.",
            name,
        )
    return min(value, high)
