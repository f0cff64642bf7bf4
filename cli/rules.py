"""The compact form of a response rule for `--rule` (`"first 3: 503"`), parsed into its JSON.

    RULE        [CONDITIONS ":"] ANSWER
    CONDITIONS  any of: first N | P% | METHOD | /PATH-GLOB   (spaces or commas between)
    ANSWER      drop | any of: STATUS | Name=Value (a header) | delay MS[-MS] | body=TEXT

Examples: "first 3: 503", "30%: 500", "delay 1000-5000", "429 Retry-After=5", "drop",
"POST /orders/*: 409 body='{\"error\": \"conflict\"}'". The rule's name is the text itself.
Quotes (shell-style) keep spaces inside a header value or a body.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

GRAMMAR = __doc__.split("\n\n")[1]
METHOD = re.compile(r"^[A-Z]{3,10}$")
PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
DELAY = re.compile(r"^(\d+)(?:-(\d+))?$")
HEADER = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+)=(.*)$", re.S)
MAX_NAME = 200


class RuleSyntaxError(ValueError):
    """A --rule that does not follow the grammar; the message says where."""


def parse_rule(text: str) -> dict[str, Any]:
    """One `--rule` in its compact form, as the API's rule object."""
    source = text.strip()
    if not source:
        raise RuleSyntaxError("a rule cannot be empty")
    rule: dict[str, Any] = {"name": source[:MAX_NAME]}
    left, colon, right = source.partition(":")
    conditions = _conditions(left) if colon else None
    if conditions is not None:
        rule.update(conditions)
        answer = right
    else:
        answer = source  # no conditions: a colon, if any, is part of the answer
    rule.update(_answer(answer, source))
    return rule


def _conditions(text: str) -> dict[str, Any] | None:
    """The conditions before the colon, or None when `text` is not conditions at all."""
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    if not tokens:
        return None
    out: dict[str, Any] = {}
    match: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.lower() == "first" and i + 1 < len(tokens) and tokens[i + 1].isdigit():
            out["times"] = int(tokens[i + 1])
            i += 2
            continue
        percent = PERCENT.match(token)
        if percent:
            out["percent"] = float(percent.group(1))
            if out["percent"].is_integer():
                out["percent"] = int(out["percent"])
        elif METHOD.match(token):
            match["method"] = token
        elif token.startswith("/"):
            match["path"] = token
        else:
            return None
        i += 1
    if match:
        out["match"] = match
    return out


def _answer(text: str, source: str) -> dict[str, Any]:
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise RuleSyntaxError(f"{source!r}: {exc}") from None
    if not tokens:
        raise RuleSyntaxError(f"{source!r} says nothing to answer with (e.g. 503, drop)")
    out: dict[str, Any] = {}
    headers: list[list[str]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        lowered = token.lower()
        if lowered == "drop":
            out["drop"] = True
        elif token.isdigit() and len(token) == 3:
            out["status"] = int(token)
        elif lowered == "delay":
            if i + 1 >= len(tokens) or not DELAY.match(tokens[i + 1]):
                raise RuleSyntaxError(f"{source!r}: delay takes MS or MS-MS, e.g. delay 1000-5000")
            low, high = DELAY.match(tokens[i + 1]).groups()
            out["delay_ms"] = int(low)
            if high is not None:
                out["delay_ms_max"] = int(high)
            i += 1
        elif lowered.startswith("body="):
            out["body"] = token[5:]
        elif HEADER.match(token):
            name, value = HEADER.match(token).groups()
            headers.append([name, value])
        else:
            raise RuleSyntaxError(
                f"{source!r}: cannot read {token!r} (a status, Name=Value, delay MS[-MS], "
                "body=TEXT or drop)"
            )
        i += 1
    if headers:
        out["headers"] = headers
    return out
