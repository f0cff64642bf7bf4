"""JSON from outside (API bodies, captured bodies), read strictly as RFC 8259 defines it.

Python's json module also reads `NaN`, `Infinity` and `-Infinity`, and turns a number such as
`1e400` into infinity. None of them is JSON: Hooklab would store them and hand them on as
`NaN`/`Infinity` in its own answers and deliveries, which strict parsers (a browser's
`JSON.parse`, Go's encoding/json) refuse, so one hostile body could break the inspector.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any


class NumberTooLong(ValueError):
    """A whole number longer than Python reads (int()'s limit, 4,300 digits by default)."""


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


# A `\uD800`-`\uDFFF` escape: the only way a lone UTF-16 surrogate gets into parsed JSON
# (UTF-8 bytes cannot hold one). A pair is a character; one alone is no text at all, and
# SQLite, the CLI and every UTF-8 encoder refuse it.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in `value` (keys too) holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads(text: str | bytes) -> Any:
    """Parse strict JSON; ValueError (or RecursionError when nested too deeply) when it is not:
    also for a string holding a lone surrogate (`"\ud800"`), which is not text, and for a
    whole number longer than Python reads (4,300 digits)."""
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_number)
    except ValueError as exc:
        # int()'s own words end with advice for a Python programmer (sys.set_int_max_str_digits).
        if "set_int_max_str_digits" in str(exc):
            limit = sys.get_int_max_str_digits()
            raise NumberTooLong(f"a number in it has more than {limit:,} digits") from None
        raise
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if SURROGATE_ESCAPE.search(raw) and _lone_surrogate(value):
        raise ValueError("a string holds a lone UTF-16 surrogate (such as \\ud800), not text")
    return value


def request_json(empty: Any = ..., *, any_value: bool = False) -> Any:
    """The body of the API request being served, read strictly: one reading for every route.

    An empty body is `empty` (without one: refused as not an object, or, with `any_value`, as
    not JSON). A body that is not JSON is a 400 `invalid_json`; one that is not a JSON object a
    400 `not_an_object`, unless `any_value` (an event's payload, which the route checks itself).
    """
    # Here, not at the top: the client reads JSON with this module and starts without Flask.
    from flask import request

    from hooklab.shared.errors import ApiError

    raw = request.get_data(cache=True)  # as the sender API read it before: a second read works
    if not raw.strip():
        if empty is not ...:
            return empty
        if any_value:
            raise ApiError(400, "invalid_json", "The request body is empty; send it as JSON.")
        raise ApiError(400, "not_an_object", "The request body must be a JSON object.")
    try:
        data = loads(raw)
    except NumberTooLong as exc:
        raise ApiError(400, "invalid_json", f"The request body cannot be read: {exc}.") from None
    except (ValueError, RecursionError) as exc:
        why = f": {exc}" if isinstance(exc, ValueError) else " (nested too deeply)"
        raise ApiError(400, "invalid_json", f"The request body is not valid JSON{why}.") from None
    if not any_value and not isinstance(data, dict):
        raise ApiError(400, "not_an_object", "The request body must be a JSON object.")
    return data


def refuse_fields(route: str) -> None:
    """Refuse a body on a route that takes none: an empty one (or `{}`) is fine; anything else
    (not JSON, not an object, any field) is refused before the route changes anything."""
    from hooklab.shared.errors import ApiError
    from hooklab.shared.params import shown

    body = request_json(empty={})
    if body:
        name = next(iter(body))
        raise ApiError(
            422, "invalid", f"Unknown field {shown(name)}; {route} takes no fields.", name
        )
