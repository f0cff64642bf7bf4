"""JSON from outside (API bodies, captured bodies), read strictly as RFC 8259 defines it.

Python's json module also reads `NaN`, `Infinity` and `-Infinity`, and turns a number such as
`1e400` into infinity. None of them is JSON: Hooklab would store them and hand them on as
`NaN`/`Infinity` in its own answers and deliveries, which strict parsers (a browser's
`JSON.parse`, Go's encoding/json) refuse, so one hostile body could break the inspector.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def loads(text: str | bytes) -> Any:
    """Parse strict JSON; ValueError (or RecursionError when nested too deeply) when it is not."""
    return json.loads(text, parse_constant=_constant, parse_float=_number)
