"""What every client command of the CLI shares: server and token options, output helpers."""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

from hooklab.client.http import (
    DEFAULT_SERVER,
    Client,
    HooklabError,
    LiveSocket,
    ServerUrlError,
    TokenError,
    bin_id_problem,
    parse_json_text,
    slug_problem,
    whole_number_problem,
)
from hooklab.client.terminal import json_text, visible

# Pauses before each new try when a live stream is lost (`listen`, `bin tail`), then 5 s.
RECONNECT_S = (0.5, 1, 2, 5)


def open_live(client: Client, bin_id: str, after: int) -> LiveSocket | None:
    """A bin's live stream from request id `after` (`listen`, `bin tail` getting a lost stream
    back), or None when it cannot be opened now (to be tried again after a pause). A refused
    token is a HooklabError: trying again will not help."""
    import simple_websocket

    try:
        return LiveSocket.connect(client.live_url(bin_id, after), headers=client.auth_headers())
    except simple_websocket.ConnectionError as exc:
        if exc.status_code in (401, 403):
            raise HooklabError(
                f"the server refused the live stream ({exc.status_code}): check --token"
            ) from None
        return None
    except Exception:  # refused, reset, or closed mid-handshake (wsproto's errors)
        return None


# The exit status of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
INTERRUPTED = 130


class UsageProblem(click.ClickException):
    """A wrong option or argument, shown in one line (click's own shows the usage too)."""

    exit_code = 2


class HooklabGroup(click.Group):
    """A click group whose errors, anywhere below it, are one line: exit 1, or 2 for usage."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ServerUrlError as exc:
            # A usage error (exit 2) of whichever gave the URL: the option or the environment.
            raise UsageProblem(
                f"--server (or HOOKLAB_SERVER): {visible(exc.why)}; give one like {DEFAULT_SERVER}"
            ) from None
        except TokenError as exc:
            raise UsageProblem(f"--token (or HOOKLAB_TOKEN): {visible(exc.message)}") from None
        except HooklabError as exc:
            # The message may quote what a server or a receiver said: nothing the terminal acts on.
            raise click.ClickException(visible(exc.message, multiline=True)) from None
        except click.exceptions.NoArgsIsHelpError:
            # `hooklab bin` with no command: its help, as plain `hooklab` shows its own (exit 2),
            # not the help text squeezed into an "Error: Usage: …" line.
            raise
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            raise UsageProblem(f"{exc.format_message()} (see `{where} --help`)") from None
        except KeyboardInterrupt:
            # Ctrl-C: one line and exit 130, as a shell reports it (click's own says
            # "Aborted!" and exits 1, as a failure would). `bin tail` and `listen` stop on it
            # by themselves ("Stopped.", exit 0); `fire` says how far it got.
            click.echo("\nStopped (Ctrl-C).", err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None


def _shown(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


class BinIdType(click.ParamType):
    """A BIN_ID argument: refused before any call when it cannot be a bin id (a `/` in it
    would reach another route of the API: `BIN/requests`)."""

    name = "bin_id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        problem = bin_id_problem(value)
        if problem is not None:
            self.fail(problem, param, ctx)
        return value


class WholeNumberIdType(click.ParamType):
    """An id argument that is a whole number (a webhook, delivery or captured request id);
    with `latest`, the word `latest` too. Refused before any call otherwise."""

    name = "id"

    def __init__(self, latest: bool = False) -> None:
        self.latest = latest

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if self.latest and value == "latest":
            return value
        if whole_number_problem(value, "an id") is not None:
            words = "a whole number or `latest`" if self.latest else "a whole number"
            self.fail(f"must be {words}, not {_shown(value)}.", param, ctx)
        return str(value)


BIN_ID = BinIdType()
WHOLE_NUMBER_ID = WholeNumberIdType()
REQUEST_ID = WholeNumberIdType(latest=True)


def _number_text(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class Number(click.ParamType):
    """A number option within its range, as the server takes it (exit 2, naming the option).

    click's own int and float types take NaN, inf and 1e309 (a float), and integers of any
    size; its ranges let NaN through (every comparison with NaN is false).
    """

    def __init__(
        self,
        kind: type = int,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        unit: str = "",
    ) -> None:
        self.kind = kind
        self.low = low
        self.high = high
        self.low_open = low_open
        self.unit = unit
        self.name = "integer" if kind is int else "float"

    def describe(self) -> str:
        """The range in words: `a whole number from 1 to 1000`."""
        what = "a whole number" if self.kind is int else "a number"
        if self.unit:
            what += f" of {self.unit}"
        if self.low is not None and self.high is not None and not self.low_open:
            return f"{what} from {_number_text(self.low)} to {_number_text(self.high)}"
        parts = []
        if self.low is not None:
            parts.append(f"{'more than' if self.low_open else 'at least'} {_number_text(self.low)}")
        if self.high is not None:
            parts.append(f"at most {_number_text(self.high)}")
        return what + (" " + " and ".join(parts) if parts else "")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number: Any = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            try:
                number = int(text) if self.kind is int else float(text)
            except ValueError:  # (also an integer of more than 4300 digits)
                number = None
        if number is None or (isinstance(number, float) and not math.isfinite(number)):
            self.fail(f"must be {self.describe()}, not {_shown(value)}", param, ctx)
        if self.low is not None and (number < self.low or (self.low_open and number == self.low)):
            bound = "more than" if self.low_open else "at least"
            self.fail(f"must be {bound} {_number_text(self.low)}, not {value}", param, ctx)
        if self.high is not None and number > self.high:
            self.fail(f"must be at most {_number_text(self.high)}, not {value}", param, ctx)
        return self.kind(number)


def server_and_token(server: str | None, token: str | None) -> tuple[str, str | None]:
    """The server and token a client command uses: its own options, else the ones given
    before it, the nearest first (`hooklab events --server URL show x`, `hooklab --server URL
    bin list`), else the environment, else the default."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        server = server or ctx.params.get("server")
        token = token or ctx.params.get("token")
        ctx = ctx.parent
    server = server or os.environ.get("HOOKLAB_SERVER") or DEFAULT_SERVER
    token = token or os.environ.get("HOOKLAB_TOKEN") or None
    return server, token


def json_wanted(as_json: bool) -> bool:
    """Whether a command prints JSON: its own --json, or one given to its group before it
    (`hooklab events --json show x`)."""
    ctx = click.get_current_context(silent=True)
    while not as_json and ctx is not None:
        as_json = bool(ctx.params.get("as_json"))
        ctx = ctx.parent
    return as_json


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


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of text."
)


def print_json(data: Any) -> None:
    """Print a JSON document, indented."""
    click.echo(json_text(data, indent=2))


MAX_CELL = 40  # characters of a name in a table (print_table's `cut` columns)


def print_table(
    rows: Sequence[Sequence[Any]],
    headers: Sequence[str],
    empty: str,
    cut: Sequence[str] = (),
) -> None:
    """Print rows as aligned columns under `headers`, or `empty` when there is none.

    The columns named in `cut` (free text a person typed: names) are cut at MAX_CELL
    characters, so one long name does not push every row's other columns off the screen;
    `--json` has the whole values. Ids, paths and URLs are never cut.
    """
    if not rows:
        click.echo(empty)
        return
    cells = [[_cell(v) for v in row] for row in rows]
    for i, header in enumerate(headers):
        if header in cut:
            for row in cells:
                if len(row[i]) > MAX_CELL:
                    row[i] = row[i][: MAX_CELL - 1] + "…"
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
    if slug_problem(event) is None:  # (a name such as "Refund / Chargeback" is no slug)
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
