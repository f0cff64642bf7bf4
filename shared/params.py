"""Numbers from a request's query string or path, checked (a 400 naming them)."""

from __future__ import annotations

import re

from flask import request

from hooklab.shared.errors import ApiError

# Digits enough for any id SQLite can hold; longer text is refused before int() reads it.
MAX_DIGITS = 30
# A number of seconds as a URL gives it: ASCII digits, an optional fraction. float() would also
# take `1_0`, `1e3`, `inf`, Unicode digits (`١٢`, fullwidth `１２`) and Unicode spaces around it.
SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# What is stripped around a query number: ASCII whitespace only (str.strip() takes U+00A0,
# U+3000 and the like too).
ASCII_SPACE = " \t\n\r\f\v"


def shown(text: str) -> str:
    """`text` as an error message quotes it: its first 40 characters."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def query_int(name: str, default: int | None, low: int, high: int) -> int | None:
    """A whole-number query parameter within [low, high] (`default` when absent), or a 400."""
    text = request.args.get(name, "").strip(ASCII_SPACE)
    if not text:
        return default
    value = None
    if len(text) <= MAX_DIGITS and text.lstrip("-").isascii() and text.lstrip("-").isdigit():
        value = int(text)
    if value is None or not low <= value <= high:
        raise ApiError(
            400,
            "bad_request",
            f"{name} must be a whole number from {low} to {high}, not {shown(text)}.",
            name,
        )
    return value


def query_seconds(name: str, default: float, high: float) -> float:
    """A number of seconds from 0 (`default` when absent); above `high` it is clamped to it."""
    text = request.args.get(name, "").strip(ASCII_SPACE)
    if not text:
        return min(default, high)
    if len(text) > 40 or not SECONDS.fullmatch(text):
        raise ApiError(
            400,
            "bad_request",
            f"{name} must be a number of seconds from 0 (at most {high:g} is used), "
            f"not {shown(text)}.",
            name,
        )
    return min(float(text), high)


def path_number(text: str, what: str, field: str) -> str:
    """A number from a URL path (a captured request's id, a file's index) as given, when it is
    a whole number: plain ASCII digits. Anything else is a 400 that names it (design.md:
    "a bad number in a URL ... is a 400 that names it"); a whole number too large for any
    row is left to the lookup, which finds nothing (404)."""
    if text.isascii() and text.isdigit():
        return text
    raise ApiError(
        400,
        "bad_request",
        f"The {what} in the URL must be a whole number, not {shown(text)}.",
        field,
    )


def refuse_unknown_params(known: tuple[str, ...]) -> None:
    """A 400 naming the first query parameter a route does not take: a client paging with
    `offset` or `page` would otherwise get the same page for ever."""
    for name in request.args:
        if name not in known:
            raise ApiError(
                400,
                "bad_request",
                f"Unknown query parameter {shown(name)}; this route takes {', '.join(known)}.",
                name,
            )
