"""`hooklab bin …` and `hooklab replay`: the request bin from the command line."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlencode

import click

from hooklab.cli.common import (
    BIN_ID,
    RECONNECT_S,
    REQUEST_ID,
    Number,
    human_size,
    json_option,
    json_text,
    open_live,
    print_fields,
    print_json,
    print_table,
    printable,
    short_time,
    visible,
    with_client,
)
from hooklab.cli.edits import edit_headers, set_fields
from hooklab.cli.rules import GRAMMAR, RuleSyntaxError, parse_rule
from hooklab.client.http import Client, HooklabError, LiveSocket, ReplayFailed, replay
from hooklab.shared.settings import SETTINGS
from hooklab.shared.store import MAX_ROW_ID

# The server's ranges (bin_server/api.py, bin_server/rules.py): out of them is exit 2 here.
MAX_LIMIT = 1000  # `bin requests --limit`
# `bin requests --grep`, URL-encoded: it goes in the request line, which a server takes up to
# 8,190 bytes long (gunicorn's ceiling, shared/settings.py max_request_line), path included.
MAX_GREP_BYTES = 8000
MAX_SEED = 2**63 - 1  # `--rules-seed`
# A bin's delay is capped by the server's --max-delay-ms (30 s by default); no server takes
# more than that setting's own maximum.
MAX_DELAY_MS = next(s.high for s in SETTINGS if s.name == "max_delay_ms")
MAX_TAIL_S = 24 * 3600.0  # `bin tail --timeout`: a day
MAX_REPLAY_S = 600.0  # `replay --timeout`, as `listen --timeout`


@click.group("bin")
def bin_group() -> None:
    """Create, list, inspect, follow and delete bins (capture endpoints).

    \b
    Example:
      URL=$(hooklab bin create --name stripe)
      curl -d '{"hello": "bin"}' -H 'Content-Type: application/json' "$URL"
      hooklab bin requests BIN_ID
    """


def _header(value: str) -> list[str]:
    name, sep, header_value = value.partition(":")
    if not sep or not name.strip():
        raise click.BadParameter(f"{value!r} is not NAME:VALUE", param_hint="'--header'")
    return [name.strip(), header_value.strip()]


def _text_arg(value: str) -> str:
    """Text given inline or as `@file`."""
    if not value.startswith("@"):
        return value
    try:
        with open(value[1:], encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise HooklabError(f"cannot read {value[1:]}: {exc.strerror}") from None
    except UnicodeDecodeError:
        # As read_json_arg: a bin's answer body is text (the API takes it as a JSON string).
        raise HooklabError(f"--body in {value[1:]} is not UTF-8 text") from None


def _rules_arg(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list | None:
    """The --rule options parsed (None when none was given)."""
    if not value:
        return None
    try:
        return [parse_rule(text) for text in value]
    except RuleSyntaxError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


# Shown under the options of `bin create` and `bin update`.
RULES_EPILOG = (
    "\b\nRules (--rule, repeat; the first that applies answers, else the default response):\n"
    + GRAMMAR
    + "\n\n\b\n  e.g. 'first 3: 503'  '30%: 500'  'delay 1000-5000'  '429 Retry-After=5'  'drop'"
)


def response_options(func):
    """The options that set how a bin answers (create and update share them)."""
    options = [
        click.option("--status", type=int, default=None, help="Status code the bin answers with."),
        click.option(
            "--header",
            "headers",
            multiple=True,
            metavar="NAME:VALUE",
            help="A response header (repeat).",
        ),
        click.option("--body", default=None, help="Response body, or @file to read it from."),
        click.option(
            "--delay-ms",
            type=Number(int, 0, MAX_DELAY_MS),
            default=None,
            help="Wait this long before answering (at most the server's --max-delay-ms).",
        ),
        click.option(
            "--secret", default=None, help="A whsec_ secret: captured requests get checked."
        ),
        click.option(
            "--rule",
            "rules",
            multiple=True,
            callback=_rules_arg,
            metavar="RULE",
            help="A response rule (repeat; the grammar is below).",
        ),
        click.option(
            "--rules-seed",
            type=Number(int, 0, MAX_SEED),
            default=None,
            help="Seed of the rules' random draws (a whole number from 0 to 2^63-1).",
        ),
        click.option(
            "--forward",
            default=None,
            metavar="URL",
            help="Forward every request to your app at URL (plus the path after the bin id).",
        ),
        click.option(
            "--forward-mode",
            type=click.Choice(["sync", "async"]),
            default=None,
            help="sync: the caller gets your app's answer; async: the bin's, the app's is "
            "recorded. [default: sync]",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def bin_fields(
    name: str | None,
    status: int | None,
    headers: tuple[str, ...],
    body: str | None,
    delay_ms: int | None,
    secret: str | None,
    rules: list | None,
    rules_seed: int | None,
    forward: str | None,
    forward_mode: str | None,
) -> dict:
    """The API fields of a create or update from the shared options."""
    fields: dict = {}
    if name is not None:
        fields["name"] = name
    if secret is not None:
        fields["secret"] = secret
    response: dict = {}
    if status is not None:
        response["status"] = status
    if headers:
        response["headers"] = [_header(h) for h in headers]
    if body is not None:
        response["body"] = _text_arg(body)
    if delay_ms is not None:
        response["delay_ms"] = delay_ms
    if response:
        fields["response"] = response
    if rules is not None:
        fields["rules"] = rules
    if rules_seed is not None:
        fields["rules_seed"] = rules_seed
    if forward is not None:
        fields["forward"] = {"url": forward, "mode": forward_mode or "sync"}
    return fields


@bin_group.command("create", epilog=RULES_EPILOG)
@with_client
@click.option("--name", default=None, help="A name to tell the bin apart.")
@response_options
@json_option
def bin_create(client: Client, as_json: bool, **options) -> None:
    """Create a bin and print its capture URL (the inspector's URL goes to stderr).

    \b
    Example:
      hooklab bin create --name payments --status 202 --header 'X-Env: test' --delay-ms 100
      hooklab bin create --rule 'first 3: 503' --rule '30%: 500'
      hooklab bin create --forward http://127.0.0.1:5000/webhooks
    """
    if options["forward_mode"] and not options["forward"]:
        raise click.UsageError("--forward-mode needs --forward URL")
    created = client.create_bin(**bin_fields(**options))
    if as_json:
        print_json(created)
        return
    client.expect(created, ("url", "inspect_url"), "POST", "/api/bins")
    click.echo(created["url"])
    click.echo(f"Inspect it at {created['inspect_url']}", err=True)


@bin_group.command("update", epilog=RULES_EPILOG)
@with_client
@click.argument("bin_id", type=BIN_ID)
@click.option("--name", default=None, help="A new name.")
@response_options
@click.option("--no-rules", is_flag=True, help="Remove every rule.")
@click.option("--no-forward", is_flag=True, help="Stop forwarding.")
@click.option("--reset-rules", is_flag=True, help="Start the rules' counts and draws again.")
@json_option
def bin_update(
    client: Client,
    bin_id: str,
    no_rules: bool,
    no_forward: bool,
    reset_rules: bool,
    as_json: bool,
    **options,
) -> None:
    """Change a bin: only what is given changes (--rule replaces all the rules).

    \b
    Example:
      hooklab bin update BIN_ID --rule 'first 3: 503' --rule '429 Retry-After=5'
      hooklab bin update BIN_ID --forward http://127.0.0.1:5000 --forward-mode async
      hooklab bin update BIN_ID --no-rules --no-forward
    """
    if no_rules and options["rules"]:
        raise click.UsageError("--no-rules and --rule do not go together")
    if no_forward and (options["forward"] or options["forward_mode"]):
        raise click.UsageError("--no-forward and --forward do not go together")
    fields = bin_fields(**options)
    if options["forward_mode"] and not options["forward"]:
        current = client.bin(bin_id).get("forward")
        if not current:
            raise click.UsageError("--forward-mode needs --forward URL (the bin does not forward)")
        fields["forward"] = {**current, "mode": options["forward_mode"]}
    if no_rules:
        fields["rules"] = []
    if no_forward:
        fields["forward"] = None
    if not fields and not reset_rules:
        raise click.UsageError("nothing to change: give at least one option")
    updated = client.update_bin(bin_id, **fields) if fields else client.bin(bin_id)
    if reset_rules:
        updated = client.reset_rules(bin_id)
    if as_json:
        print_json(updated)
        return
    click.echo(f"Updated bin {bin_id}")


@bin_group.command("list")
@with_client
@json_option
def bin_list(client: Client, as_json: bool) -> None:
    """List the bins, newest first.

    \b
    Example:
      hooklab bin list --json | jq -r '.[].url'
    """
    bins = client.bins()
    if as_json:
        print_json(bins)
        return
    rows = [
        [
            b["id"],
            b.get("name") or "",
            b.get("request_count"),
            short_time(b.get("last_request_at")),
            b["url"],
        ]
        for b in bins
    ]
    print_table(
        rows,
        ["ID", "NAME", "REQUESTS", "LAST REQUEST", "URL"],
        "No bins yet: create one with `hooklab bin create`.",
        cut=("NAME",),
    )


@bin_group.command("show")
@with_client
@click.argument("bin_id", type=BIN_ID)
@json_option
def bin_show(client: Client, bin_id: str, as_json: bool) -> None:
    """Show a bin: its URLs and the response it answers with.

    \b
    Example:
      hooklab bin show BIN_ID
    """
    b = client.bin(bin_id)
    if as_json:
        print_json(b)
        return
    response = b.get("response") or {}
    lines = [
        ("ID", b["id"]),
        ("Name", b.get("name") or "-"),
        ("Capture URL", b["url"]),
        ("Inspector", b.get("inspect_url")),
        ("Created", short_time(b.get("created_at"))),
        ("Secret", "set (signatures are checked)" if b.get("has_secret") else "none"),
        ("Response", f"{response.get('status', 200)}, delay {response.get('delay_ms', 0)} ms"),
    ]
    for name, value in response.get("headers") or []:
        lines.append(("  header", f"{name}: {value}"))
    if response.get("body"):
        lines.append(("  body", response["body"]))
    counts = b.get("rule_counts") or []
    for index, rule in enumerate(b.get("rules") or []):
        count = counts[index] if index < len(counts) else 0
        label = rule.get("name") or json.dumps(rule)
        lines.append((f"Rule {index + 1}", f"{label}  (answered {count})"))
    forward = b.get("forward")
    if forward:
        lines.append(("Forward", f"{forward['url']} ({forward['mode']})"))
    if "request_count" in b:
        lines.append(("Requests", b["request_count"]))
    print_fields(lines)


@bin_group.command("requests")
@with_client
@click.argument("bin_id", type=BIN_ID)
@click.option(
    "--limit",
    type=Number(int, 1, MAX_LIMIT),
    default=50,
    show_default=True,
    help=f"At most this many (1 to {MAX_LIMIT}).",
)
@click.option(
    "--after",
    type=Number(int, 0, MAX_ROW_ID),
    default=None,
    help="Only requests with a larger id.",
)
@click.option(
    "--grep",
    default=None,
    metavar="TEXT",
    help="Only requests whose path, query, header values or body hold these words "
    '(word prefixes; "a phrase" in order; any case).',
)
@json_option
def bin_requests(
    client: Client, bin_id: str, limit: int, after: int | None, grep: str | None, as_json: bool
) -> None:
    """List a bin's captured requests, newest first.

    \b
    Example:
      hooklab bin requests BIN_ID --limit 10
      hooklab bin requests BIN_ID --grep 'invoice "payment failed"'
    """
    _check_grep(grep)
    items = client.requests(bin_id, after=after, limit=limit, q=grep)
    if as_json:
        print_json(items)
        return
    print_table(
        [_summary_row(r) for r in items],
        ["ID", "RECEIVED", "METHOD", "PATH", "SIZE", "TYPE", "ANSWER"],
        _nothing_listed(grep, after),
    )


def _check_grep(grep: str | None) -> None:
    """Refuse a --grep too long for the request line it goes in (exit 2), before the call:
    the server would refuse the request with its own words, not naming --grep."""
    if grep is None:
        return
    encoded = len(urlencode({"q": grep})) - len("q=")
    if encoded > MAX_GREP_BYTES:
        raise click.BadParameter(
            f"{len(grep):,} characters make {encoded:,} bytes in the request's URL; it may "
            f"take at most {MAX_GREP_BYTES:,} (fewer characters outside ASCII: each takes 6 "
            "to 12)",
            param_hint="'--grep'",
        )


def _nothing_listed(grep: str | None, after: int | None) -> str:
    """What an empty listing means: no request at all, or none that matched."""
    if grep is not None:
        return f"No request matches {grep!r}."
    if after is not None:
        return f"No requests after {after}."
    return "No requests yet."


def _summary_row(r: dict) -> list:
    target = r.get("path", "")
    if r.get("query_string"):
        target += "?" + r["query_string"]
    return [
        r["id"],
        short_time(r.get("received_at")),
        r.get("method"),
        target,
        human_size(r.get("body_size")),
        r.get("content_type"),
        answer_text(r.get("answered_by")),
    ]


def answer_text(answered_by: dict | None) -> str:
    """What answered a captured request, as the inspector's badge says it (`503 · rule name`)."""
    if not answered_by:
        return "-"
    status, name = answered_by.get("status"), answered_by.get("name") or "default"
    if name == "forward" and status is None:
        text = "forwarding"
    elif status is None:
        text = f"dropped · {name}"
    else:
        text = f"{status} · {name}"
    return text + (" (too many waiting)" if answered_by.get("capped") else "")


@bin_group.command("request")
@with_client
@click.argument("bin_id", type=BIN_ID)
@click.argument("request_id", type=REQUEST_ID)
@click.option("--raw", is_flag=True, help="Write only the body bytes, exactly as received.")
@json_option
def bin_request(client: Client, bin_id: str, request_id: str, raw: bool, as_json: bool) -> None:
    """Show one captured request: request line, headers and body (REQUEST_ID or `latest`).

    \b
    Example:
      hooklab bin request BIN_ID latest
      hooklab bin request BIN_ID 42 --raw > body.bin
    """
    request_id = _request_id(client, bin_id, request_id)
    if raw:
        click.echo(client.raw_body(bin_id, request_id), nl=False)
        return
    captured = client.request(bin_id, request_id)
    if as_json:
        print_json(captured)
        return
    click.echo(format_request(captured))


def _request_id(client: Client, bin_id: str, request_id: str) -> str:
    if request_id != "latest":
        return request_id
    newest = client.requests(bin_id, limit=1)
    if not newest:
        raise HooklabError(f"bin {bin_id} has no captured requests yet")
    return str(newest[0]["id"])


def format_request(captured: dict) -> str:
    """A captured request as text: request line, headers, a blank line, the body."""
    target = captured.get("path", "")
    if captured.get("query_string"):
        target += "?" + captured["query_string"]
    # Every piece is the sender's: shown with control characters escaped (see `visible`).
    http_version = captured.get("http_version", "HTTP/1.1")
    lines = [visible(f"{captured['method']} {target} {http_version}")]
    lines += [visible(f"{name}: {value}") for name, value in captured.get("headers") or []]
    lines.append("")
    lines.append(visible(format_body(captured), multiline=True))
    signature = captured.get("signature")
    if signature:
        mark = "valid" if signature.get("valid") else "INVALID"
        lines.append("")
        lines.append(
            visible(f"Signature ({signature.get('scheme')}): {mark}: {signature.get('reason')}")
        )
    forward = captured.get("forward")
    if forward:
        lines.append("")
        lines.append(format_forward(forward))
    return "\n".join(lines)


FORWARD_PREVIEW = 500  # characters of the app's answer shown under a forwarded request


def format_forward(forward: dict) -> str:
    """What the app a request was forwarded to answered (the inspector's Response tab)."""
    where = f"Forwarded to {forward.get('url')}"
    if forward.get("error"):
        return visible(f"{where}: failed: {forward['error']}")
    line = f"{where}: your app answered {forward.get('status_code')}"
    if forward.get("duration_ms") is not None:
        line += f" in {forward['duration_ms']} ms"
    body = forward.get("body_text")
    if body is None and forward.get("body_base64"):
        body = "(binary answer)"
    if not body:
        return visible(line)
    if len(body) > FORWARD_PREVIEW:
        body = body[:FORWARD_PREVIEW] + "…"
    return visible(line) + "\n" + visible(body, multiline=True)


def format_body(captured: dict) -> str:
    """The body for people: indented JSON, text, or a note for binary bodies."""
    size = captured.get("body_size") or 0
    if size == 0:
        return "(empty body)"
    note = "  (truncated at the body limit)" if captured.get("truncated") else ""
    if captured.get("json") is not None and captured.get("body_text") is not None:
        # Laid out for reading, token for token as received (a duplicate key, `1E2`, `-0`
        # and escapes stay: json.dumps of the parsed value changed them without a word).
        laid_out = layout_json(captured["body_text"])
        if laid_out != captured["body_text"]:
            note = (
                "\n(JSON laid out for reading: only whitespace changed; --raw for the bytes)" + note
            )
        return laid_out + note
    if captured.get("json") is not None:
        return json.dumps(captured["json"], indent=2, ensure_ascii=False) + note
    if captured.get("body_text") is not None:
        return captured["body_text"] + note
    return f"({human_size(size)} of binary data: use --raw to write the bytes){note}"


def layout_json(text: str, indent: str = "  ") -> str:
    """Valid JSON `text` with one member or item a line, every token kept exactly as it is."""
    out: list[str] = []
    depth = 0
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == '"':  # a string, escapes and all, as it is
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[i : end + 1])
            i = end + 1
            continue
        if char in " \t\r\n":
            i += 1
            continue
        if char in "{[":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":  # an empty object or list stays on its line
                out.append(char + text[j])
                i = j + 1
                continue
            depth += 1
            out.append(char + "\n" + indent * depth)
        elif char in "}]":
            depth -= 1
            out.append("\n" + indent * depth + char)
        elif char == ",":
            out.append(",\n" + indent * depth)
        elif char == ":":
            out.append(": ")
        else:
            out.append(char)
        i += 1
    return "".join(out)


@bin_group.command("check")
@with_client
@click.argument("bin_id", type=BIN_ID)
@click.argument("request_id", type=REQUEST_ID)
@click.option(
    "--event",
    default=None,
    metavar="SLUG",
    help="The event to check against (default: the one its X-Hooklab-Event header names).",
)
@json_option
def bin_check(
    client: Client, bin_id: str, request_id: str, event: str | None, as_json: bool
) -> None:
    """Check a captured request's JSON body against an event's schema (exit 1 on problems).

    An envelope body ({"type", "timestamp", "data"}) is checked on its data.

    \b
    Example:
      hooklab bin check BIN_ID latest
      hooklab bin check BIN_ID 42 --event payment_received
    """
    request_id = _request_id(client, bin_id, request_id)
    try:
        result = client.check_request(bin_id, request_id, event)
    except HooklabError as exc:
        if exc.code != "no_event":
            raise
        # The API says `?event=<slug>`; here it is an option.
        raise HooklabError(
            f"request {request_id} names no event (it has no X-Hooklab-Event header): "
            "say which event to check it against with --event SLUG",
            exc.status,
            exc.code,
            exc.field,
        ) from None
    if as_json:
        print_json(result)
    else:
        click.echo(format_check(result, f"request {request_id}"))
    if not result.get("valid"):
        raise click.exceptions.Exit(1)


def format_check(result: dict, what: str) -> str:
    """A check's result for people: a verdict line, then one line per problem and warning."""
    event = result.get("event") or {}
    name = printable(f"{event.get('name')} ({event.get('slug')})")
    problems = result.get("problems") or []
    if result.get("valid"):
        lines = [f"{what} matches {name}"]
    else:
        count = len(problems)
        lines = [f"{what} does not match {name}: {count} problem{'' if count == 1 else 's'}"]
    for problem in problems:
        lines.append(f"  {printable(problem['path'] or '/')}: {printable(problem['message'])}")
    for warning in result.get("warnings") or []:
        lines.append(f"  warning {printable(warning['path'])}: {printable(warning['message'])}")
    return "\n".join(lines)


@bin_group.command("tail")
@with_client
@click.argument("bin_id", type=BIN_ID)
@click.option(
    "--after",
    type=Number(int, 0, MAX_ROW_ID),
    default=None,
    help="Start after this request id (0: every request kept). Default: only new requests.",
)
@click.option("--full", is_flag=True, help="Print each request in full (headers and body).")
@click.option(
    "--count",
    type=Number(int, 1, MAX_ROW_ID),  # (no more requests can ever arrive)
    default=None,
    help="Stop after this many requests (default: Ctrl-C).",
)
@click.option(
    "--timeout",
    type=Number(float, 0, MAX_TAIL_S, low_open=True, unit="seconds"),
    default=None,
    metavar="SECONDS",
    help="Stop after this long (at most a day); exit 1 when fewer than --count (or no) "
    "requests came (for scripts and CI; default: wait forever).",
)
@json_option
def bin_tail(
    client: Client,
    bin_id: str,
    after: int | None,
    full: bool,
    count: int | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Print requests as they arrive (live, over the websocket); Ctrl-C stops.

    \b
    Example:
      hooklab bin tail BIN_ID --full
      hooklab bin tail BIN_ID --count 1 --timeout 30 --json   # wait for the next request
    """
    import simple_websocket

    if timeout is not None:  # no call of the wait may take longer than the wait itself
        client.timeout = min(client.timeout, max(timeout, 0.5))
    client.bin(bin_id)  # a clear "no bin" error before connecting
    if after is None:
        newest = client.requests(bin_id, limit=1)
        after = newest[0]["id"] if newest else 0
    url = client.live_url(bin_id, after)
    try:
        ws = LiveSocket.connect(url, headers=client.auth_headers())
    except (ConnectionError, OSError):
        raise HooklabError(
            f"cannot open the live stream at {url} — is `hooklab serve` running?"
        ) from None
    seen = 0
    failures = 0  # tries in a row to get a lost stream back
    deadline = None if timeout is None else time.monotonic() + timeout

    def short_of_goal() -> str | None:
        """What a script waiting with --count or --timeout did not get (exit 1), or None."""
        if count is not None and seen < count:
            return f"only {seen} of {count} requests arrived at bin {bin_id}"
        if count is None and timeout is not None and not seen:
            return f"no request arrived at bin {bin_id}"
        return None

    def reconnect(left: float) -> LiveSocket | None:
        """The stream again from the last request printed, after a pause; None: not yet."""
        nonlocal failures
        pause = min(RECONNECT_S[min(failures, len(RECONNECT_S) - 1)], left)
        failures += 1
        # On stderr in both modes: with --json, stdout holds requests only.
        click.echo(f"Lost the live stream; trying again in {pause:g} s…", err=True)
        time.sleep(pause)
        again = open_live(client, bin_id, after)
        if again is not None:
            failures = 0
            click.echo("Live again; requests that came meanwhile follow.", err=True)
        return again

    try:
        if not as_json:
            click.echo(f"Waiting for requests to bin {bin_id} (Ctrl-C to stop)…", err=True)
        while count is None or seen < count:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                # A CI step must not hang until the job's own limit: fail, saying what came.
                if count is None and seen:
                    return  # followed for the time given, and something came
                if seen:
                    raise HooklabError(
                        f"only {seen} of {count} requests arrived at bin {bin_id} "
                        f"within {timeout:g} s"
                    )
                raise HooklabError(f"no request arrived at bin {bin_id} within {timeout:g} s")
            if ws is None:
                ws = reconnect(left if deadline is not None else RECONNECT_S[-1])
                continue
            try:
                message = ws.receive(timeout=min(1.0, left))
            except (simple_websocket.ConnectionClosed, OSError):
                # The server restarted or the connection broke: follow on from the last
                # request printed, as `listen` does (a deleted bin is told by a frame).
                ws = None
                continue
            if message is None:
                continue
            frame = json.loads(message)
            kind = frame.get("type")
            if kind == "request":
                seen += 1
                after = frame["request"]["id"]
                _print_tailed(client, bin_id, frame["request"], full, as_json)
            elif kind == "cleared":
                # Notices go to stderr in both modes: with --json, stdout holds requests only
                # (`--count 1 --json | jq .method` must read a request).
                click.echo("— the bin was cleared —", err=True)
            elif kind == "error" and (frame.get("error") or {}).get("code") != "bin_not_found":
                error = frame.get("error") or {}
                raise HooklabError(error.get("message") or "the live stream reported an error")
            elif kind in ("bin_deleted", "error"):
                # An error "bin_not_found" here: the bin existed a moment ago, so it was deleted.
                click.echo("— the bin was deleted —", err=True)
                missing = short_of_goal()
                if missing:
                    raise HooklabError(f"the bin was deleted: {missing}")
                return
    except KeyboardInterrupt:
        if not as_json:
            click.echo("Stopped.", err=True)
        missing = short_of_goal()
        if missing:  # a script's wait cut short is not a success
            raise HooklabError(f"stopped (Ctrl-C): {missing}") from None
    finally:
        try:
            if ws is not None:
                ws.close()
        except (simple_websocket.ConnectionClosed, OSError):
            pass  # the server closed it first (the bin was deleted)


def _print_tailed(client: Client, bin_id: str, summary: dict, full: bool, as_json: bool) -> None:
    if full:
        captured = client.request(bin_id, summary["id"])
        if as_json:
            click.echo(json_text(captured))
        else:
            click.echo(f"#{captured['id']}  {short_time(captured.get('received_at'))}")
            click.echo(format_request(captured))
            click.echo("")
        return
    if as_json:
        click.echo(json_text(summary))
        return
    row = [visible(cell or "") for cell in _summary_row(summary)]
    click.echo(f"#{row[0]}  {row[1]}  {row[2]:<7} {row[3]}  {row[4]}  {row[5]}".rstrip())


@bin_group.command("export")
@with_client
@click.argument("bin_id", type=BIN_ID)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["har", "json"]),
    default="json",
    show_default=True,
    help="HAR 1.2 (opens in browser dev tools) or Hooklab's JSON.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File to write."
)
def bin_export(client: Client, bin_id: str, fmt: str, output: str | None) -> None:
    """Export every request of a bin as HAR or JSON (to stdout, or a file with -o).

    \b
    Example:
      hooklab bin export BIN_ID --format har -o payments.har
    """
    data = client.export(bin_id, fmt)
    if output is None:
        click.echo(data, nl=False)
        return
    try:
        with open(output, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise HooklabError(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"Wrote {human_size(len(data))} to {output}", err=True)


@bin_group.command("clear")
@with_client
@click.argument("bin_id", type=BIN_ID)
def bin_clear(client: Client, bin_id: str) -> None:
    """Delete every captured request of a bin (the bin stays).

    \b
    Example:
      hooklab bin clear BIN_ID
    """
    client.clear_bin(bin_id)
    click.echo(f"Cleared bin {bin_id}")


@bin_group.command("rm")
@with_client
@click.argument("bin_ids", nargs=-1, required=True, metavar="BIN_ID...", type=BIN_ID)
def bin_rm(client: Client, bin_ids: tuple[str, ...]) -> None:
    """Delete bins and everything they captured (the ids found; then says which were not).

    An argument that cannot be a bin id at all (a typo, a URL) stops the command before
    anything is deleted.

    \b
    Example:
      hooklab bin rm BIN_ID [BIN_ID...]
    """
    ids = list(dict.fromkeys(bin_ids))
    deleted = set(client.delete_bins(ids))  # one call (one transaction) per 100
    for bin_id in ids:
        if bin_id in deleted:
            click.echo(f"Deleted bin {bin_id}")
    missing = [bin_id for bin_id in ids if bin_id not in deleted]
    if missing:
        raise HooklabError(f"No bin with id {', '.join(repr(bin_id) for bin_id in missing)}.")


@click.command("replay")
@with_client
@click.argument("bin_id", type=BIN_ID)
@click.argument("request_id", type=REQUEST_ID)
@click.option("--to", "to", required=True, metavar="URL", help="Where to send the request.")
@click.option(
    "--with-path",
    is_flag=True,
    help="Append the captured path after the bin id (and the query string) to URL.",
)
@click.option("--method", default=None, help="Send with this method instead.")
@click.option(
    "--header",
    "set_headers",
    multiple=True,
    metavar='"K: V"',
    help="Set a header (replaces the captured ones of that name). Repeatable.",
)
@click.option(
    "--drop-header", "drop_headers", multiple=True, metavar="K", help="Leave a header out."
)
@click.option("--body", default=None, metavar="TEXT|@file", help="Send this body instead.")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="a.b=VALUE",
    help="Change one existing field of the JSON body (VALUE as JSON, else a string).",
)
@click.option(
    "--resign",
    default=None,
    metavar="SECRET",
    help="Sign again with this whsec_ secret (new webhook-timestamp and webhook-signature).",
)
@click.option(
    "--timeout",
    type=Number(float, 0.1, MAX_REPLAY_S, unit="seconds"),
    default=30.0,
    show_default=True,
    help="Seconds to wait, 0.1 to 600 (an unedited replay; the server's own for an edited one).",
)
@json_option
def replay_command(
    client: Client,
    bin_id: str,
    request_id: str,
    to: str,
    with_path: bool,
    method: str | None,
    set_headers: tuple[str, ...],
    drop_headers: tuple[str, ...],
    body: str | None,
    assignments: tuple[str, ...],
    resign: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Re-send a captured request to another URL, e.g. replay a webhook into your local app.

    Unedited, the request goes from this machine, byte-exact: the captured method, body
    and headers, in their captured order, with these exceptions: hop-by-hop headers
    (Connection, Keep-Alive, Transfer-Encoding, TE, Trailer, Upgrade, Proxy-*, Expect and
    those named in Connection) are dropped, and Host and Content-Length are computed again
    for the new request. Header names are as the capturing server stored them (WSGI servers
    title-case them and join repeated headers). Redirects are not followed. The outcome is
    kept in the request's history on the server too (the inspector shows it, "from the CLI").

    With any edit (--method, --header, --drop-header, --body, --set, --resign) the Hooklab
    server sends it (POST /api/bins/BIN/requests/RID/replay), so URL must be reachable from
    the server, and the replay is kept in the request's history (the inspector shows it).
    --resign gives it a new webhook-timestamp and a webhook-signature over the body as sent,
    keeping its webhook-id. REQUEST_ID may be `latest`.

    \b
    Example:
      hooklab replay BIN_ID latest --to http://127.0.0.1:5000/webhooks/stripe
      hooklab replay BIN_ID latest --to http://127.0.0.1:5000/hooks \\
          --set data.object.amount=1 --resign whsec_...
    """
    request_id = _request_id(client, bin_id, request_id)
    edits = (method, set_headers, drop_headers, body, assignments, resign)
    if any(edits):
        _replay_edited(
            client,
            bin_id,
            request_id,
            {"url": to, "with_path": with_path},
            (method, set_headers, drop_headers, body, assignments, resign),
            as_json,
        )
        return
    started = time.monotonic()
    try:
        captured, response = replay(client, bin_id, request_id, to, with_path, timeout)
    except ReplayFailed as failed:
        # Kept in the request's history too (design.md: every replay is kept), then reported.
        _keep_replay(
            client,
            bin_id,
            request_id,
            {
                "url": failed.url,
                "method": failed.method,
                "status_code": None,
                "duration_ms": round((time.monotonic() - started) * 1000),
                "error": failed.message,
            },
        )
        raise
    duration_ms = round((time.monotonic() - started) * 1000)
    _keep_replay(
        client,
        bin_id,
        request_id,
        {
            "url": response.url,
            "method": captured["method"],
            "status_code": response.status_code,
            "duration_ms": duration_ms,
            "error": None,
        },
    )
    if as_json:
        # The keys of an edited replay's answer (the server's), then this one's own.
        answer = {"status_code": response.status_code, "headers": list(response.headers.items())}
        try:
            answer["body_text"] = response.content.decode("utf-8")
        except UnicodeDecodeError:
            answer["body_base64"] = base64.b64encode(response.content).decode("ascii")
        answer.update(duration_ms=duration_ms, error=None)
        print_json(
            {
                **answer,
                "request_id": captured["id"],
                "method": captured["method"],
                "url": response.url,
                "response_headers": answer["headers"],
                "response_body": response.text,
            }
        )
        return
    click.echo(
        visible(
            f"{captured['method']} {response.url} → {response.status_code} {response.reason} "
            f"({duration_ms} ms)"
        )
    )
    if response.content:
        text = visible(response.text, multiline=True)
        click.echo(text if len(text) <= 2000 else text[:2000] + "…", nl=not text.endswith("\n"))


def _keep_replay(client: Client, bin_id: str, request_id: str, entry: dict) -> None:
    """Have the server keep a replay sent from here; a server that cannot is only noted."""
    try:
        client.report_replay(bin_id, request_id, entry)
    except HooklabError as exc:
        click.echo(
            visible(f"note: the replay was sent but not kept in the request's history: {exc}"),
            err=True,
        )


def _replay_edited(
    client: Client, bin_id: str, request_id: str, fields: dict, edits: tuple, as_json: bool
) -> None:
    """An edited replay, sent (and kept) by the server."""
    method, set_headers, drop_headers, body, assignments, resign = edits
    captured = client.request(bin_id, request_id)
    if method:
        fields["method"] = method
    if set_headers or drop_headers:
        fields["headers"] = edit_headers(
            captured.get("headers") or [], [_header_arg(h) for h in set_headers], drop_headers
        )
    new_body = _body_arg(body) if body is not None else None
    if assignments:
        base = new_body if new_body is not None else client.raw_body(bin_id, request_id)
        new_body = set_fields(base, list(assignments))
    if new_body is not None:
        fields["body_base64"] = base64.b64encode(new_body).decode("ascii")
    if resign:
        fields["resign"] = {"secret": resign}
    answer = client.replay_request(bin_id, request_id, fields)
    if as_json:
        print_json(answer)
        return
    target = fields["url"]
    if answer.get("error"):
        raise HooklabError(f"replaying to {target} failed: {answer['error']}")
    click.echo(
        visible(
            f"{fields.get('method', captured['method'])} {target} → {answer['status_code']} "
            f"({answer['duration_ms']} ms)"
        )
    )
    text = answer.get("body_text")
    if text is None and answer.get("body_base64"):
        text = f"({len(base64.b64decode(answer['body_base64']))} bytes, not text)"
    if text:
        # The receiver's answer is as hostile as a captured request: shown, never obeyed.
        shown = visible(text if len(text) <= 2000 else text[:2000] + "…", multiline=True)
        click.echo(shown, nl=not text.endswith("\n"))


def _header_arg(value: str) -> list[str]:
    name, sep, header_value = value.partition(":")
    if not sep or not name.strip():
        raise HooklabError(f'--header {value!r} is not "NAME: VALUE"')
    return [name.strip(), header_value.strip()]


def _body_arg(value: str) -> bytes:
    """The bytes of --body: the text, or a file's bytes as they are for @file."""
    if not value.startswith("@"):
        return value.encode("utf-8")
    try:
        with open(value[1:], "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise HooklabError(f"cannot read {value[1:]}: {exc.strerror}") from None
