"""Response rules: which answer a captured request gets (see ../shared/design.md, "Bins that act").

A bin's rules are an ordered list; the first rule that applies answers, else the bin's default
response. `times` and `percent` make rules stateful: each rule counts the requests it answered,
and `percent` (and a drawn delay) take numbers from a sequence seeded by the bin's
`rules_seed`, so the same requests get the same answers on every run.

Where that state lives: in this process's memory (`RuleStates`, hung off the app's Store), under
one lock per bin so concurrent captures take numbers one at a time; and in the store, written by
the capture writer in the same transaction as the captured request that moved it (`Snapshot`),
so a restart carries on where it stopped. `rules_version` moves on every change or reset, which
tells a process that its state in memory is stale.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from hooklab.shared.errors import ApiError

# Used with fullmatch: `$` would also let a name end in a line break through.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
HEADER_NAME_CHARS = "letters, digits and !#$%&'*+-.^_`|~"
METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
# What a header value may hold (RFC 9110 field-vchar, SP and HTAB): the pattern gunicorn
# checks every answer's header values against (gunicorn/http/wsgi.py HEADER_VALUE_RE; any other
# character fails the whole answer with a 500), and what http.client sends unchanged (it
# encodes values as Latin-1, and U+0100 and up cannot be).
HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
HEADER_VALUE_CHARS = "visible ASCII, spaces, tabs and Latin-1 characters (U+0080 to U+00FF)"
# Headers a configured answer may not set: the server owns the framing, and gunicorn drops
# every header of its hop-by-hop list (gunicorn.util.hop_headers, Server and Date included: it
# writes its own), so a bin that took one would answer without it.
RESERVED_HEADERS = {
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "upgrade",
    "server",
    "date",
}
# A configured answer's status: a final one. A 1xx is interim: the client goes on waiting for
# the final answer that never comes, and the body is dropped.
MIN_STATUS, MAX_STATUS = 200, 599
STATUS_RANGE = (
    f"a whole number from {MIN_STATUS} to {MAX_STATUS} (a 1xx status is not a final answer: "
    "the client would wait for one that never comes)"
)
MAX_RULES = 50
MAX_NAME = 200
MAX_BODY = 1024 * 1024
MAX_TIMES = 10**9
MAX_SEED = 2**63 - 1
RULE_FIELDS = (
    "name",
    "match",
    "times",
    "percent",
    "status",
    "headers",
    "body",
    "delay_ms",
    "delay_ms_max",
    "drop",
)
MASK64 = 2**64 - 1


# -- checking what a user sends -------------------------------------------------------------


def invalid(field: str, message: str) -> ApiError:
    """A 422 naming the field."""
    return ApiError(422, "invalid", message, field)


def _whole(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(field, f"{field} must be a whole number from {low} to {high}.")
    return value


def status_problem(value: Any, field: str) -> str | None:
    """What is wrong with a configured answer's status (`field` names it), or None."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_STATUS <= value <= MAX_STATUS
    ):
        return f"{field} must be {STATUS_RANGE}."
    return None


def validate_headers(headers: Any, field: str) -> list[list[str]]:
    """Check configured answer headers (an object or [name, value] pairs); returns the pairs."""
    if headers is None:
        return []
    shape = f"{field} is an object or a list of [name, value] pairs."
    if isinstance(headers, dict):
        pairs = list(headers.items())
    elif isinstance(headers, list):
        pairs = []
        for item in headers:
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                raise invalid(field, shape)
            pairs.append((item[0], item[1]))
    else:
        raise invalid(field, shape)
    out = []
    for name, value in pairs:
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            raise invalid(
                field, f"{name!r} is not a valid header name: it may hold {HEADER_NAME_CHARS}."
            )
        if name.lower() in RESERVED_HEADERS:
            raise invalid(field, f"{name} is set by the server.")
        if not isinstance(value, str):
            raise invalid(field, f"The value of {name} must be a string.")
        if not HEADER_VALUE.fullmatch(value):
            raise invalid(field, f"The value of {name} may only hold {HEADER_VALUE_CHARS}.")
        out.append([name, value])
    return out


def validate_seed(value: Any) -> int:
    """Check a bin's `rules_seed`."""
    return _whole(value, "rules_seed", 0, MAX_SEED)


def validate_rules(value: Any, max_delay_ms: int) -> list[dict]:
    """Check a bin's `rules`; returns them as stored, or raises a 422 naming the field."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid("rules", "rules must be a list of rules.")
    if len(value) > MAX_RULES:
        raise invalid("rules", f"A bin has at most {MAX_RULES} rules.")
    return [validate_rule(rule, f"rules[{i}]", max_delay_ms) for i, rule in enumerate(value)]


def validate_rule(rule: Any, where: str, max_delay_ms: int) -> dict:
    """Check one rule; `where` names it in messages (`rules[2]`)."""
    if not isinstance(rule, dict):
        raise invalid(where, f"{where} must be an object.")
    unknown = sorted(set(rule) - set(RULE_FIELDS))
    if unknown:
        field = f"{where}.{unknown[0]}"
        raise invalid(field, f"Unknown field {field!r}; a rule has {', '.join(RULE_FIELDS)}.")
    out: dict[str, Any] = {}
    if rule.get("name") is not None:
        name = rule["name"]
        if not isinstance(name, str) or len(name.strip()) > MAX_NAME:
            raise invalid(f"{where}.name", f"{where}.name is a string of at most {MAX_NAME}.")
        if name.strip():
            out["name"] = name.strip()
    if rule.get("match") is not None:
        out["match"] = _validate_match(rule["match"], f"{where}.match")
    if rule.get("times") is not None:
        out["times"] = _whole(rule["times"], f"{where}.times", 1, MAX_TIMES)
    if rule.get("percent") is not None:
        percent = rule["percent"]
        field = f"{where}.percent"
        if (
            isinstance(percent, bool)
            or not isinstance(percent, (int, float))
            or not 0 <= percent <= 100  # before isfinite: int(10**400) is no float
            or not math.isfinite(percent)
        ):
            raise invalid(field, f"{field} must be a number from 0 to 100.")
        out["percent"] = percent
    if rule.get("status") is not None:
        problem = status_problem(rule["status"], f"{where}.status")
        if problem:
            raise invalid(f"{where}.status", problem)
        out["status"] = rule["status"]
    if rule.get("headers") is not None:
        out["headers"] = validate_headers(rule["headers"], f"{where}.headers")
    if "body" in rule and rule["body"] is not None:
        body = rule["body"]
        if not isinstance(body, str) or len(body.encode()) > MAX_BODY:
            raise invalid(f"{where}.body", f"{where}.body is a string of at most 1 MiB.")
        out["body"] = body
    if rule.get("delay_ms") is not None:
        out["delay_ms"] = _whole(rule["delay_ms"], f"{where}.delay_ms", 0, max_delay_ms)
    if rule.get("delay_ms_max") is not None:
        low = out.get("delay_ms", 0)
        out["delay_ms_max"] = _whole(
            rule["delay_ms_max"], f"{where}.delay_ms_max", low, max_delay_ms
        )
    if rule.get("drop") is not None:
        if not isinstance(rule["drop"], bool):
            raise invalid(f"{where}.drop", f"{where}.drop must be true or false.")
        if rule["drop"]:
            out["drop"] = True
    return out


def _validate_match(match: Any, where: str) -> dict:
    if not isinstance(match, dict):
        raise invalid(where, f"{where} must be an object with method and/or path.")
    unknown = sorted(set(match) - {"method", "path"})
    if unknown:
        field = f"{where}.{unknown[0]}"
        raise invalid(field, f"Unknown field {field!r}; a match has method and path.")
    out = {}
    method = match.get("method")
    if method not in (None, "", "*"):
        if not isinstance(method, str) or not METHOD.fullmatch(method):
            raise invalid(f"{where}.method", f"{where}.method must be an HTTP method, e.g. POST.")
        out["method"] = method.upper()
    path = match.get("path")
    if path not in (None, ""):
        if not isinstance(path, str) or len(path) > 2000 or any(ord(c) < 32 for c in path):
            raise invalid(f"{where}.path", f"{where}.path must be a glob on one line, e.g. /a/*.")
        out["path"] = path if path.startswith(("/", "*")) else "/" + path
    return out


# -- rules ready to apply -------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One rule, compiled once per distinct rules JSON."""

    index: int
    name: str
    method: str | None
    path: re.Pattern | None
    times: int | None
    percent: float | None
    status: int | None
    headers_json: str | None  # as the capture path's header cache takes them
    body: str | None
    delay_ms: int
    delay_ms_max: int | None
    drop: bool

    def matches(self, method: str, path: str) -> bool:
        """Whether the request's method (upper-case) and path ("/" for none) are this rule's."""
        if self.method is not None and method != self.method:
            return False
        if self.path is not None:
            if not self.path.match(path) and not (
                "%" in path and self.path.match(unquote(path, errors="replace"))
            ):
                return False
        return True


def rule_name(rule: dict, index: int) -> str:
    """A rule's name as shown: its own, else one made from what it does."""
    if rule.get("name"):
        return rule["name"]
    parts = []
    if rule.get("times"):
        parts.append(f"first {rule['times']}")
    if rule.get("percent") is not None:
        parts.append(f"{rule['percent']:g}%")
    what = "drop" if rule.get("drop") else str(rule.get("status", "default status"))
    return f"rule {index + 1}" + (f" ({', '.join(parts)}: {what})" if parts else f" ({what})")


@lru_cache(maxsize=1024)
def compile_rules(rules_json: str) -> tuple[Rule, ...]:
    """The stored rules JSON as Rule objects (cached: parsed once per configuration)."""
    compiled = []
    for index, rule in enumerate(json.loads(rules_json)):
        match = rule.get("match") or {}
        path = match.get("path")
        headers = rule.get("headers")
        compiled.append(
            Rule(
                index=index,
                name=rule_name(rule, index),
                method=match["method"].upper() if match.get("method") else None,
                path=re.compile(fnmatch.translate(path)) if path else None,
                times=rule.get("times"),
                percent=rule.get("percent"),
                status=rule.get("status"),
                headers_json=json.dumps(headers) if headers is not None else None,
                body=rule.get("body"),
                delay_ms=rule.get("delay_ms", 0),
                delay_ms_max=rule.get("delay_ms_max"),
                drop=bool(rule.get("drop")),
            )
        )
    return tuple(compiled)


# -- the seeded sequence and the state ------------------------------------------------------


def draw(seed: int, n: int) -> float:
    """The n-th number (from 0) of the sequence seeded by `seed`, in [0, 1).

    splitmix64 of (seed, n): any draw is computed from the two integers alone, so the state
    to keep (and store) is a count, not a generator.
    """
    z = (seed * 0x9E3779B97F4A7C15 + (n + 1) * 0xD1B54A32D192ED03) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return (z >> 11) / 2**53


class RuleState:
    """The counts and draws of one bin's rules, in this process."""

    __slots__ = ("version", "seed", "counts", "draws", "lock", "changes")

    def __init__(self, version: int, seed: int, stored: str | None, size: int) -> None:
        self.version = version
        self.seed = seed
        self.counts = [0] * size
        self.draws = 0
        self.lock = threading.Lock()
        self.changes = 0  # orders snapshots: the newest one written wins
        if stored:
            saved = json.loads(stored)
            for i, count in enumerate((saved.get("counts") or [])[:size]):
                self.counts[i] = int(count)
            self.draws = int(saved.get("draws") or 0)
            # Snapshots are ordered across restarts: a newer one is never taken for stale.
            self.changes = int(saved.get("order") or 0)

    def next_draw(self) -> float:
        value = draw(self.seed, self.draws)
        self.draws += 1
        return value


class Snapshot:
    """A bin's rule state after one capture, to be written with that capture.

    Serialised only when written: of the captures written together, only each bin's newest
    state is (bin_server/capture_writer.py).
    """

    __slots__ = ("bin_id", "version", "order", "counts", "draws")

    def __init__(self, bin_id: str, version: int, order: int, counts: tuple, draws: int) -> None:
        self.bin_id = bin_id
        self.version = version
        self.order = order
        self.counts = counts
        self.draws = draws

    @property
    def state_json(self) -> str:
        """The state as stored on the bin (`rules_state`)."""
        return json.dumps(
            {
                "counts": list(self.counts),
                "draws": self.draws,
                "version": self.version,
                "order": self.order,
            }
        )


class Choice:
    """The rule that answers a request (None: the default response), and its drawn delay."""

    __slots__ = ("rule", "delay_ms", "snapshot")

    def __init__(self, rule: Rule | None, delay_ms: int, snapshot: Snapshot | None) -> None:
        self.rule = rule
        self.delay_ms = delay_ms
        self.snapshot = snapshot


NOTHING = Choice(None, 0, None)  # no rule answers and nothing moved: nothing to write


class RuleStates:
    """The rule state of every bin that has rules, for one app (`store.attached`)."""

    MAX_BINS = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, RuleState] = {}

    def state(self, bin_row: dict, size: int) -> RuleState:
        """This bin's state, loaded from its row when this process has none or an older one."""
        bin_id, version = bin_row["id"], bin_row["rules_version"]
        state = self._states.get(bin_id)
        if state is not None and state.version >= version:
            return state
        with self._lock:
            state = self._states.get(bin_id)
            if state is None or state.version < version:
                if len(self._states) >= self.MAX_BINS:
                    self._states.clear()
                state = RuleState(version, bin_row["rules_seed"], bin_row["rules_state"], size)
                self._states[bin_id] = state
        return state

    def forget(self, bin_id: str) -> None:
        """Drop a bin's state (its rules changed, were reset, or it was deleted)."""
        with self._lock:
            self._states.pop(bin_id, None)

    def choose(self, bin_row: dict, rules: tuple[Rule, ...], method: str, subpath: str) -> Choice:
        """Pick the rule that answers this request, moving the bin's counts and draws."""
        state = self.state(bin_row, len(rules))
        # Matching needs no state: done before taking the bin's lock, which concurrent
        # captures of the bin wait for.
        method, path = method.upper(), subpath or "/"
        matching = [rule for rule in rules if rule.matches(method, path)]
        with state.lock:
            draws_before = state.draws
            chosen = None
            for rule in matching:
                if rule.times is not None and state.counts[rule.index] >= rule.times:
                    continue  # spent
                if rule.percent is not None and rule.percent < 100:
                    if rule.percent <= 0 or state.next_draw() * 100 >= rule.percent:
                        continue  # lost the draw: not counted
                chosen = rule
                break
            delay_ms = 0
            if chosen is not None:
                state.counts[chosen.index] += 1
                delay_ms = chosen.delay_ms
                if chosen.delay_ms_max is not None and chosen.delay_ms_max > chosen.delay_ms:
                    span = chosen.delay_ms_max - chosen.delay_ms + 1
                    delay_ms += int(state.next_draw() * span)
            if chosen is None and state.draws == draws_before:
                return NOTHING
            state.changes += 1
            snapshot = Snapshot(
                bin_row["id"], state.version, state.changes, tuple(state.counts), state.draws
            )
        return Choice(chosen, delay_ms, snapshot)


def rule_states(store: Any) -> RuleStates:
    """The rule states of the app that owns `store`."""
    return store.attached("rule_states", RuleStates)


def rule_counts(bin_row: dict) -> list[int]:
    """How many requests each rule of a bin answered (as last written with a capture)."""
    size = len(json.loads(bin_row["rules"] or "[]"))
    counts = [0] * size
    if bin_row.get("rules_state"):
        for i, count in enumerate((json.loads(bin_row["rules_state"]).get("counts") or [])[:size]):
            counts[i] = int(count)
    return counts
