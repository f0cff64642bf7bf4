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
from typing import Any


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
    also for a string holding a lone surrogate (`"\ud800"`), which is not text."""
    value = json.loads(text, parse_constant=_constant, parse_float=_number)
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if SURROGATE_ESCAPE.search(raw) and _lone_surrogate(value):
        raise ValueError("a string holds a lone UTF-16 surrogate (such as \\ud800), not text")
    return value
