"""What every client command of the CLI shares: server and token options, output helpers."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

from hooklab.client.http import DEFAULT_SERVER, Client, HooklabError, parse_json_text


class UsageProblem(click.ClickException):
    """A wrong option or argument, shown in one line (click's own shows the usage too)."""

    exit_code = 2


class HooklabGroup(click.Group):
    """A click group whose errors, anywhere below it, are one line: exit 1, or 2 for usage."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HooklabError as exc:
            raise click.ClickException(exc.message) from None
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            raise UsageProblem(f"{exc.format_message()} (see `{where} --help`)") from None


def server_and_token(server: str | None, token: str | None) -> tuple[str, str | None]:
    """The server and token a client command uses: its own options, else the ones given
    before the command (`hooklab --server URL bin list`), else the environment, else the
    default."""
    ctx = click.get_current_context(silent=True)
    given = (ctx.find_root().obj if ctx is not None else None) or {}
    server = server or given.get("server") or os.environ.get("HOOKLAB_SERVER") or DEFAULT_SERVER
    token = token or given.get("token") or os.environ.get("HOOKLAB_TOKEN") or None
    return server, token


def server_options(func: Callable) -> Callable:
    """--server and --token, resolved by `server_and_token` (None when not given here)."""
    func = click.option(
        "--token",
        default=None,
        help="Access token of the server, sent as `Authorization: Bearer`. [env HOOKLAB_TOKEN]",
    )(func)
    return click.option(
        "--server",
        default=None,
        metavar="URL",
        help=f"The Hooklab server to talk to. [env HOOKLAB_SERVER; default {DEFAULT_SERVER}]",
    )(func)


def with_client(func: Callable) -> Callable:
    """Add --server and --token, and pass a ready `client` to the command instead."""

    @server_options
    @functools.wraps(func)
    def wrapper(server: str | None, token: str | None, **kwargs: Any) -> Any:
        client = Client(*server_and_token(server, token))
        try:
            return func(client=client, **kwargs)
        finally:
            client.session.close()

    return wrapper


# Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts colour and
# cursor sequences, U+009B is the one-byte CSI), DEL, and the bidirectional overrides that
# reorder what is shown. Captured data is hostile, so they are printed as visible escapes.
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ONE_LINE = {c: f"\\x{c:02x}" for c in _CONTROLS} | {c: f"\\u{c:04x}" for c in _BIDI}
_ONE_LINE |= {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
_MULTILINE = {c: e for c, e in _ONE_LINE.items() if c not in (0x09, 0x0A)}
# In JSON text the C0 controls are already escaped by json.dumps; the rest may only appear
# inside strings, where a \uXXXX escape is the same JSON value.
_JSON = {c: f"\\u{c:04x}" for c in [0x7F, *range(0x80, 0xA0), *_BIDI]}


def visible(text: Any, multiline: bool = False) -> str:
    """Captured text safe for a terminal: control characters shown escaped (ESC as \\x1b).

    One line by default (newlines and tabs escaped too); `multiline` keeps them (bodies).
    """
    return str(text).translate(_MULTILINE if multiline else _ONE_LINE)


def json_text(data: Any, indent: int | None = None) -> str:
    """JSON for the terminal or a script: the same value, with no raw control characters."""
    return json.dumps(data, indent=indent, ensure_ascii=False).translate(_JSON)


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of text."
)


def print_json(data: Any) -> None:
    """Print a JSON document, indented."""
    click.echo(json_text(data, indent=2))


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], empty: str) -> None:
    """Print rows as aligned columns under `headers`, or `empty` when there is none."""
    if not rows:
        click.echo(empty)
        return
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(values: Iterable[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    click.echo(line(headers))
    for row in cells:
        click.echo(line(row))


def print_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """Print label/value lines with the values lined up (`bin show`, `webhook show`)."""
    width = max(len(label) for label, _ in fields)
    for label, value in fields:
        click.echo(f"{label.ljust(width)}  {visible(value)}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    # A captured path or name is hostile: one row on one line, nothing the terminal acts on.
    return visible(value)


def printable(text: str) -> str:
    """Text from a payload or a captured request with control characters escaped (\\n, \\x1b)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def short_time(iso: str | None) -> str:
    """An ISO 8601 UTC time as `YYYY-MM-DD HH:MM:SS` (the API gives milliseconds and a Z)."""
    if not iso:
        return "-"
    return iso.replace("T", " ")[:19]


def human_size(size: int | None) -> str:
    """A byte count for people: 512 B, 1.5 KiB, 10.0 MiB."""
    if size is None:
        return "-"
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


def read_json_arg(value: str, what: str) -> Any:
    """JSON given inline, or `@file` to read it from a file, or `@-` from standard input."""
    if value.startswith("@"):
        name = value[1:]
        try:
            if name == "-":
                text = sys.stdin.read()
            else:
                with open(name, encoding="utf-8") as handle:
                    text = handle.read()
        except OSError as exc:
            raise HooklabError(f"cannot read {what} from {name}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise HooklabError(f"{what} in {name} is not UTF-8 text") from None
        return parse_json_text(text, f"{what} in {name}")
    return parse_json_text(value, what)


def resolve_event(client: Client, event: str) -> str:
    """An event slug from a slug or a display name ("Payment Received"); "*" stays as is."""
    if event == "*":
        return event
    try:
        return client.event(event)["slug"]
    except HooklabError as exc:
        if exc.status != 404:
            raise
    catalog = client.events()
    slugs = {e["slug"] for e in catalog}
    if event in slugs:
        return event
    for entry in catalog:
        if entry.get("name", "").strip().lower() == event.strip().lower():
            return entry["slug"]
    known = ", ".join(sorted(slugs)) or "none"
    raise HooklabError(f"no event {event!r} in the catalog (known: {known}); see `hooklab events`")
