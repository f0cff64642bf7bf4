"""`hooklab listen`: follow a bin and forward each request to an app on this machine.

For a Hooklab that runs elsewhere (a shared server) while the app runs on the developer's
machine. The websocket says what arrived; each request is then read in full through the API
and re-sent byte for byte (`client.http.replay`). The cursor is the last request id handled:
after a lost connection the stream is opened again from it, so nothing is skipped.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import click

from hooklab.cli.common import (
    BIN_ID,
    RECONNECT_S,
    Number,
    json_option,
    json_text,
    open_live,
    visible,
    with_client,
)
from hooklab.client.http import Client, HooklabError, replay
from hooklab.shared.store import MAX_ROW_ID


@click.command("listen")
@with_client
@click.argument("bin_id", required=False, type=BIN_ID)
@click.option(
    "--forward-to",
    "forward_to",
    required=True,
    metavar="URL",
    help="Your app: each request goes to URL plus its path after the bin id (and query).",
)
@click.option(
    "--after",
    type=Number(int, 0, MAX_ROW_ID),
    default=None,
    metavar="ID",
    help="Replay from after this request id (0: every request kept). Default: only new ones.",
)
@click.option(
    "--timeout",
    type=Number(float, 0.1, 600.0, unit="seconds"),
    default=30.0,
    show_default=True,
    help="Seconds to wait for your app's answer.",
)
@json_option
def listen_command(
    client: Client,
    bin_id: str | None,
    forward_to: str,
    after: int | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Follow a bin and re-send every request it captures to your app; Ctrl-C stops.

    Without BIN_ID a new bin is created and its capture URL printed. One line per request
    (`POST /hooks -> 200 in 12 ms`), or one JSON object per line with --json. A lost
    connection is opened again by itself, catching up on what arrived meanwhile.

    \b
    Example:
      hooklab listen --forward-to http://127.0.0.1:5000/webhooks
      hooklab listen BIN_ID --forward-to http://127.0.0.1:5000 --server https://hooks.example
    """
    target = urlsplit(forward_to)
    if target.scheme not in ("http", "https") or not target.netloc:
        raise click.BadParameter(
            f"{forward_to!r} is not an http:// or https:// URL", param_hint="'--forward-to'"
        )
    if bin_id is None:
        created = client.expect(client.create_bin(name="listen"), ("url",), "POST", "/api/bins")
        bin_id = created["id"]
        after = 0 if after is None else after  # a new bin: whatever arrives from now on
        _say(as_json, {"type": "bin", "id": bin_id, "url": created["url"]}, created["url"])
    else:
        client.bin(bin_id)  # a clear "no bin" error before anything else
    if after is None:
        newest = client.requests(bin_id, limit=1)
        after = newest[0]["id"] if newest else 0
    if as_json:
        click.echo(json.dumps({"type": "listening", "bin_id": bin_id, "after": after}))
    else:
        click.echo(f"Forwarding bin {bin_id} to {forward_to} (Ctrl-C to stop)…", err=True)
    try:
        follow(client, bin_id, forward_to, after, timeout, as_json)
    except KeyboardInterrupt:
        if not as_json:
            click.echo("Stopped.", err=True)


def follow(
    client: Client, bin_id: str, forward_to: str, after: int, timeout: float, as_json: bool
) -> None:
    """Forward every request with id > after, reconnecting as needed, until the bin is gone."""
    import simple_websocket

    failures = 0
    while True:
        url = client.live_url(bin_id, after)
        ws = open_live(client, bin_id, after)
        if ws is None:
            failures = _wait_to_reconnect(failures, as_json, url)
            continue
        failures = 0
        try:
            while True:
                message = ws.receive(timeout=1.0)
                if message is None:
                    continue
                frame = json.loads(message)
                kind = frame.get("type")
                if kind == "request":
                    outcome = forward_one(client, bin_id, frame["request"], forward_to, timeout)
                    _print_forwarded(outcome, as_json)
                    after = outcome["id"]
                elif kind in ("bin_deleted", "error"):
                    error = (frame.get("error") or {}).get("message") or "the bin was deleted"
                    raise HooklabError(f"stopped: {error}")
        except (simple_websocket.ConnectionClosed, OSError):
            failures = _wait_to_reconnect(failures, as_json, url)
        finally:
            try:
                ws.close()
            except (simple_websocket.ConnectionClosed, OSError):
                pass


def forward_one(
    client: Client, bin_id: str, summary: dict, forward_to: str, timeout: float
) -> dict:
    """Re-send one captured request to the app; returns what happened."""
    started = time.monotonic()
    target = (summary.get("subpath") or "/") + (
        "?" + summary["query_string"] if summary.get("query_string") else ""
    )
    outcome = {"id": summary["id"], "method": summary["method"], "path": target}
    try:
        _, response = replay(client, bin_id, summary["id"], forward_to, True, timeout)
        outcome.update(status_code=response.status_code, error=None)
    except HooklabError as exc:  # the app is down or slow, or the request was evicted
        outcome.update(status_code=None, error=exc.message)
    outcome["duration_ms"] = round((time.monotonic() - started) * 1000)
    return outcome


def _print_forwarded(outcome: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json_text({"type": "forwarded", **outcome}))
        return
    result = outcome["status_code"] if outcome["error"] is None else f"error: {outcome['error']}"
    # The path is the sender's: shown as text (control and bidirectional characters escaped).
    line = f"{outcome['method']} {outcome['path']} -> {result} in {outcome['duration_ms']} ms"
    click.echo(visible(line))


def _wait_to_reconnect(failures: int, as_json: bool, url: str) -> int:
    pause = RECONNECT_S[min(failures, len(RECONNECT_S) - 1)]
    if as_json:
        click.echo(json.dumps({"type": "reconnecting", "in_s": pause}))
    else:
        click.echo(
            f"Lost the stream at {url.split('?')[0]}; reconnecting in {pause:g} s…", err=True
        )
    time.sleep(pause)
    return failures + 1


def _say(as_json: bool, frame: dict, text: str) -> None:
    click.echo(json.dumps(frame) if as_json else text)
