"""The edits of `hooklab replay`: headers set or dropped, a new body, `--set` on a JSON body."""

from __future__ import annotations

import json
import re
from typing import Any

from hooklab.client.http import HooklabError

# One step of a `--set` path: a name, or a list index as `.0` or `[0]`.
STEP = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def edit_headers(
    headers: list[list[str]], set_headers: list[list[str]], drop: list[str]
) -> list[list[str]]:
    """The captured headers with `drop` names removed and `set_headers` replacing same names."""
    dropped = {name.lower() for name in drop} | {name.lower() for name, _ in set_headers}
    out = [[n, v] for n, v in headers if n.lower() not in dropped]
    return out + [list(pair) for pair in set_headers]


def parse_path(path: str) -> list[str | int]:
    """`a.b[0].c` or `a.b.0.c` as steps: names, and indices (digits) for lists."""
    steps: list[str | int] = []
    for part in path.split("."):
        if not part:
            raise HooklabError(f"--set: {path!r} is not a path like a.b.0.c")
        for match in STEP.finditer(part):
            index, name = match.groups()
            steps.append(int(index) if index is not None else name)
    return steps


def set_field(data: Any, assignment: str) -> Any:
    """Apply one `--set a.b=VALUE` to parsed JSON (in place); the field must exist."""
    path, sep, text = assignment.partition("=")
    if not sep or not path:
        raise HooklabError(f"--set: {assignment!r} is not PATH=VALUE, e.g. data.amount=100")
    try:
        value = json.loads(text)
    except ValueError:
        value = text  # not JSON: kept as a string
    steps = parse_path(path)
    parent = data
    for depth, step in enumerate(steps):
        here = path_text(steps[: depth + 1])
        last = depth == len(steps) - 1
        if isinstance(parent, list):
            index = step if isinstance(step, int) else _index(step)
            if index is None or not 0 <= index < len(parent):
                raise HooklabError(f"--set: {here} does not exist in the body")
            if last:
                parent[index] = value
            else:
                parent = parent[index]
        elif isinstance(parent, dict):
            key = str(step)
            if key not in parent:
                raise HooklabError(f"--set: {here} does not exist in the body")
            if last:
                parent[key] = value
            else:
                parent = parent[key]
        else:
            raise HooklabError(f"--set: {here} does not exist in the body")
    return data


def _index(step: str) -> int | None:
    return int(step) if step.isdigit() else None


def path_text(steps: list[str | int]) -> str:
    """Steps written back as a path, e.g. `data.items[0].amount`."""
    out = ""
    for step in steps:
        out += f"[{step}]" if isinstance(step, int) else ("." if out else "") + step
    return out


def dump_like(data: Any, original: str) -> str:
    """JSON text for `data` in the layout of `original`: indented, spaced, or compact."""
    if "\n" in original.strip():
        indent = _indent(original)
        return json.dumps(data, indent=indent, ensure_ascii=False)
    if re.search(r'"\s*:\s', original) or re.search(r",\s", original):
        return json.dumps(data, ensure_ascii=False)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _indent(text: str) -> int:
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped and len(stripped) < len(line):
            return len(line) - len(stripped)
    return 2


def set_fields(body: bytes, assignments: list[str]) -> bytes:
    """The body with every `--set` applied; a one-line error when it is not JSON."""
    try:
        text = body.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise HooklabError("--set needs a JSON body, and this body is not JSON") from None
    for assignment in assignments:
        data = set_field(data, assignment)
    return dump_like(data, text).encode("utf-8")
