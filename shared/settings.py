"""One table of settings drives the CLI options, `GET /api/settings` and the README's list."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One setting: its name, default, help text and environment variable."""

    name: str
    default: Any
    help: str
    type: Callable[[str], Any] = str
    multiple: bool = False  # a CLI option that may be given more than once
    # The range a number must lie in (inclusive; each item of a list): from outside, checked.
    low: float | None = None
    high: float | None = None

    @property
    def env(self) -> str:
        return "HOOKLAB_" + self.name.upper()

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


def _optional_str(value: str) -> str | None:
    return value or None


def _path(value: str) -> str:
    if not str(value).strip():
        raise ValueError("give the path of the database file (empty means none)")
    return str(value)


def _bool(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


# Numbers as people type them on a command line or in a variable: ASCII only (int() and
# float() would also take "1_0" and "١٢"), and said in plain words when they are not numbers
# (Python's words were "invalid literal for int() with base 10"). A number out of its range is
# said by _check_range.


def _quoted(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _typed_number(text: str, whole: bool) -> int | float:
    """A number typed as text, or ValueError saying what was expected, in a user's words."""
    text = text.strip()
    try:
        if len(text) > 40 or not text.isascii() or "_" in text:
            raise ValueError(text)
        return int(text) if whole else float(text)
    except ValueError:
        what = "a whole number" if whole else "a number"
        raise ValueError(f"expected {what}, got {_quoted(text)}") from None


def _schedule(value: str) -> tuple[float, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(float(v) for v in value)
    parts = [p.strip() for p in str(value).split(",") if p.strip()]
    try:
        return tuple(_typed_number(p, whole=False) for p in parts)
    except ValueError:
        raise ValueError(
            f"expected seconds separated by commas (such as 1,5,30), got {_quoted(str(value))}"
        ) from None


def _convert(setting: Setting, value: Any) -> Any:
    """A setting's value from text (a variable or an option), or ValueError in plain words."""
    if setting.type in (int, float) and isinstance(value, str):
        return _typed_number(value, setting.type is int)
    return setting.type(value)


def _names(value: Any) -> tuple[str, ...]:
    # A comma-separated list, or (from a repeated option) several of them.
    items = value if isinstance(value, (tuple, list)) else [value]
    names = [n.strip().lower() for item in items for n in str(item).split(",")]
    for name in names:
        if name and any(c in name for c in "/?#@ \t"):
            raise ValueError(f"{name!r} is not a host name (give it without scheme or path)")
    return tuple(n for n in names if n)


SETTINGS: list[Setting] = [
    Setting("host", "127.0.0.1", "Address to listen on (127.0.0.1 keeps Hooklab local)."),
    Setting("port", 8000, "Port to listen on.", int, low=0, high=65535),
    Setting("db", "hooklab.db", "Path of the SQLite database file.", _path),
    Setting(
        "threads", 64, "Server threads; every open websocket holds one.", int, low=1, high=1000
    ),
    Setting(
        "token", None, "Access token for the UI, /api and /ws (capture stays open).", _optional_str
    ),
    Setting("catalog", None, "JSON file of extra events to add to the catalog.", _optional_str),
    Setting(
        "public_url",
        None,
        "Base URL used in capture URLs (default: the request's host).",
        _optional_str,
    ),
    Setting(
        "allow_host",
        "",
        "More host names the UI and API answer to (comma separated, or the option repeated); "
        "other names are refused, against DNS rebinding.",
        _names,
        multiple=True,
    ),
    Setting(
        "max_body_bytes",
        10 * 1024 * 1024,
        "Largest captured body; larger gets 413.",
        int,
        low=0,
        high=512 * 1024 * 1024,
    ),
    Setting(
        "max_request_line",
        8190,
        "Longest request line (method, target, version) in bytes; longer gets 414, not captured.",
        int,
        low=256,
        high=8190,  # gunicorn's own ceiling
    ),
    Setting(
        "max_header_count",
        200,
        "Most header lines a request may have; more gets 431, not captured.",
        int,
        low=10,
        high=32768,  # gunicorn's own ceiling
    ),
    Setting(
        "max_header_bytes",
        16384,
        "Longest header line (name and value) in bytes; longer gets 431, not captured.",
        int,
        low=256,
        high=65536,
    ),
    Setting(
        "max_import_bytes",
        64 * 1024 * 1024,
        "Largest OpenAPI document `hooklab events import` may send.",
        int,
        low=1,
        high=1024 * 1024 * 1024,
    ),
    Setting(
        "max_requests_per_bin",
        1000,
        "Requests kept per bin; the oldest are evicted.",
        int,
        low=1,
        high=1_000_000_000,
    ),
    Setting(
        "bin_ttl_s",
        0,
        "Delete bins idle for this many seconds (0: never).",
        int,
        low=0,
        high=10 * 365 * 24 * 3600,
    ),
    Setting(
        "max_delay_ms",
        30000,
        "Largest response delay a bin may configure.",
        int,
        low=0,
        high=600_000,
    ),
    Setting(
        "max_waiting_answers",
        32,
        "Delayed or forwarded answers waiting at once (at most half the threads); "
        "past it a capture is stored and answered 503.",
        int,
        low=0,
        high=100_000,
    ),
    Setting(
        "wait_max_s", 60, "Longest a `requests/wait` long poll may wait.", int, low=0, high=3600
    ),
    Setting(
        "client_timeout_s",
        30.0,
        "Longest a client may take to send one request (or a live page to take a frame); "
        "slower clients are cut off.",
        float,
        low=0.1,
        high=3600,
    ),
    Setting(
        "delivery_workers",
        16,
        "Delivery worker threads in `serve` and `worker` (0 in `serve`: only `worker` sends).",
        int,
        low=0,
        high=256,
    ),
    Setting(
        "retry_schedule",
        "5,30,120,600,1800",
        "Seconds between delivery attempts (comma separated).",
        _schedule,
        low=0,
        high=30 * 24 * 3600,
    ),
    Setting(
        "retry_jitter",
        0.2,
        "Random spread applied to each retry delay (0.2 = ±20 %).",
        float,
        low=0,
        high=1,
    ),
    Setting(
        "default_timeout_s",
        10.0,
        "Default timeout of one delivery attempt.",
        float,
        low=0.1,
        high=60,
    ),
    Setting(
        "disable_after_failures",
        10,
        "Consecutive failed deliveries before a webhook is disabled (0: never).",
        int,
        low=0,
        high=1_000_000,
    ),
    Setting(
        "rotation_grace_s",
        24 * 3600.0,
        "After a webhook's secret is rotated, how long the previous one still signs deliveries.",
        float,
        low=0,
        high=365 * 24 * 3600,
    ),
    Setting(
        "response_body_cap",
        64 * 1024,
        "Bytes of a receiver's response body kept.",
        int,
        low=0,
        high=16 * 1024 * 1024,
    ),
    Setting(
        "claim_timeout_s",
        120.0,
        "A claimed delivery not finished within this is picked up again.",
        float,
        low=1,
        high=24 * 3600,
    ),
    Setting(
        "retention_days",
        30,
        "Deliveries, their attempts and events older than this many days are deleted (0: keep).",
        int,
        low=0,
        high=36_500,
    ),
    Setting(
        "block_private_targets",
        False,
        "Refuse webhook URLs in loopback, private and link-local ranges.",
        _bool,
    ),
    Setting(
        "search_index",
        True,
        "Keep a full-text index of captured requests for search (built in the background).",
        _bool,
    ),
]

_LISTS = (_schedule, _names)  # settings whose value is a tuple (a list in JSON)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


class Settings:
    """Resolved settings: defaults, then environment, then explicit overrides."""

    def __init__(
        self, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> None:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        given: dict[str, str] = {}  # where a value came from, for the error: option or variable
        for s in SETTINGS:
            value = s.default
            if s.env in environ:
                try:
                    value = _convert(s, environ[s.env])
                except (TypeError, ValueError) as exc:
                    raise SettingError(f"{s.env}: {exc}") from None
            values[s.name] = value
        for name, value in (overrides or {}).items():
            if name not in BY_NAME:
                raise SettingError(f"unknown setting {name!r}")
            if value is None:
                continue
            s = BY_NAME[name]
            given[name] = s.option
            if s.type in _LISTS or (isinstance(value, str) and s.type is not str):
                try:
                    value = _convert(s, value)
                except (TypeError, ValueError) as exc:
                    raise SettingError(f"{s.option}: {exc}") from None
            values[name] = value
        for s in SETTINGS:
            if s.type in _LISTS and isinstance(values[s.name], str):
                values[s.name] = s.type(values[s.name])
            _check_range(s, values[s.name], given.get(s.name, s.env))
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def values(self) -> dict[str, Any]:
        """Every setting's value, by name."""
        return dict(self._values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed."""
        merged = dict(self._values)
        merged.update(changes)
        return Settings(merged, environ={})

    def public(self) -> dict[str, Any]:
        """The settings as shown by `GET /api/settings` (the token is never shown)."""
        out = {}
        for s in SETTINGS:
            value = self._values[s.name]
            if s.name == "token":
                value = bool(value)
            elif isinstance(value, tuple):
                value = list(value)
            default = list(s.type(s.default)) if s.type in _LISTS else s.default
            out[s.name] = {"value": value, "default": default, "help": s.help, "env": s.env}
        return out


def as_environ(settings: Settings) -> dict[str, str]:
    """`settings` as HOOKLAB_* variables that `Settings()` reads back to the same values."""
    env = {}
    for s in SETTINGS:
        value = settings._values[s.name]
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        env[s.env] = str(value)
    return env


class SettingError(ValueError):
    """A setting's value could not be understood."""


def _check_range(setting: Setting, value: Any, where: str) -> None:
    """SettingError unless the number (each number of a list) lies in the setting's range.

    NaN and infinity are outside every range (`float("nan")` parses; no comparison holds).
    """
    if setting.low is None or value is None:
        return
    for number in value if isinstance(value, tuple) else (value,):
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise SettingError(f"{where}: expected a number, got {number!r}")
        if not setting.low <= number <= setting.high:
            low, high = _number(setting.low), _number(setting.high)
            raise SettingError(f"{where}: must be from {low} to {high}, not {_number(number)}")


def _number(value: float) -> str:
    """A number as a user typed it: 65535, 0.1, 1e+300, nan."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def settings_markdown() -> str:
    """The README's settings table, generated from SETTINGS (a test keeps the README in step)."""
    lines = [
        "| option | environment | default | range | what it does |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = "(none)" if s.default in (None, "") else f"`{s.default}`"
        lines.append(f"| `{s.option}` | `{s.env}` | {default} | {range_text(s)} | {s.help} |")
    return "\n".join(lines)


def range_text(setting: Setting) -> str:
    """The range of a number setting as the README and `--help` give it (the values of a
    true/false one; "" for others)."""
    if setting.type is _bool:
        return "true or false (alone: true)"
    if setting.low is None:
        return ""
    each = "each " if setting.type in _LISTS else ""
    return f"{each}{_number(setting.low)} to {_number(setting.high)}"
