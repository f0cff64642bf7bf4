"""`hooklab demo`: the whole walkthrough, scripted, against a running server or one it starts.

Create a bin, add a "Payment Received" webhook pointing at it, send a test event, and show the
payload as it arrived with its signature checked against the webhook's secret.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import click

from hooklab.cli.common import (
    Number,
    json_option,
    json_text,
    print_json,
    server_and_token,
    server_options,
    visible,
)
from hooklab.client.http import Client, HooklabError, body_bytes
from hooklab.shared.signing import verify

EVENT_NAME = "Payment Received"
WAIT_FOR_PAYLOAD_S = 10.0


@dataclass
class DemoResult:
    """What the walkthrough made and saw."""

    server: str
    bin: dict
    webhook: dict
    test: dict
    request: dict
    signature_valid: bool
    signature_reason: str

    @property
    def inspect_url(self) -> str:
        return self.bin.get("inspect_url") or f"{self.server}/bins/{self.bin['id']}"

    @property
    def webhook_url(self) -> str:
        return f"{self.server}/webhooks/{self.webhook['id']}"

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "bin": self.bin,
            "webhook": self.webhook,
            "test": self.test,
            "request": self.request,
            "signature": {"valid": self.signature_valid, "reason": self.signature_reason},
            "urls": {"inspector": self.inspect_url, "webhook": self.webhook_url},
        }


def find_event(client: Client, name: str = EVENT_NAME) -> dict:
    """The catalog entry called `name` (e.g. "Payment Received")."""
    for event in client.events():
        if event.get("name", "").lower() == name.lower():
            return event
    raise HooklabError(f"the server's event catalog has no {name!r} event")


def run_walkthrough(client: Client) -> DemoResult:
    """Create a bin, add a Payment Received webhook to it, test it, read what arrived."""
    event = find_event(client)
    created_bin = client.create_bin(name="Demo: Payment Received")
    webhook = client.create_webhook(
        name="Payment Received → demo bin", url=created_bin["url"], event=event["slug"]
    )
    if not webhook.get("secret"):
        webhook = client.webhook(webhook["id"])
    test = client.test_webhook(webhook["id"])
    if not test.get("ok"):
        why = test.get("error") or f"the bin answered {test.get('status_code')}"
        raise HooklabError(f"the test event did not arrive: {why}")
    # The test call returns once the bin answered, so the request is normally stored already.
    deadline = time.monotonic() + WAIT_FOR_PAYLOAD_S
    captured = None
    while captured is None and time.monotonic() < deadline:
        captured = client.wait(created_bin["id"], after=0, timeout=2)
    if captured is None:
        raise HooklabError("the test event was sent, but the bin shows no request")
    raw = body_bytes(captured)
    headers = {name: value for name, value in captured.get("headers") or []}
    valid, reason = verify(webhook["secret"], headers, raw)
    reason = reason.replace("the bin's secret", "the webhook's secret")
    return DemoResult(client.server, created_bin, webhook, test, captured, valid, reason)


def print_walkthrough(result: DemoResult) -> None:
    """The walkthrough for people, step by step."""
    captured = result.request
    click.echo(f"Hooklab demo on {result.server}\n")
    click.echo(f"1. Created a bin:       {result.bin['url']}")
    click.echo(
        f"2. Added a webhook:     {result.webhook['name']} "
        f"(event {result.webhook.get('event')}, secret {result.webhook['secret']})"
    )
    took = result.test.get("duration_ms")
    click.echo(
        f"3. Sent a test event:   ✓ the bin answered {result.test.get('status_code')}"
        + (f" in {took} ms" if took is not None else "")
    )
    click.echo(
        f"4. The payload arrived: {captured['method']} {captured['path']} "
        f"({captured.get('body_size')} bytes)\n"
    )
    for name, value in captured.get("headers") or []:
        if name.lower().startswith(("webhook-", "x-hooklab-", "content-type", "user-agent")):
            click.echo(visible(f"   {name}: {value}"))
    click.echo("")
    payload = captured.get("json")
    text = json_text(payload, indent=2) if payload is not None else None
    for line in (text or captured.get("body_text") or "").splitlines():
        click.echo(visible(f"   {line}"))
    mark = "✓ valid" if result.signature_valid else "✗ INVALID"
    click.echo(f"\n   Signature: {mark} ({result.signature_reason}; Standard Webhooks v1)\n")
    click.echo("Open these two pages:")
    click.echo(f"  the bin's inspector:  {result.inspect_url}")
    click.echo(f"  the webhook:          {result.webhook_url}")


def reachable(client: Client) -> bool:
    """Whether a Hooklab server answers at the client's address."""
    try:
        client.health()
    except HooklabError as exc:
        # Any answer from Hooklab (even "needs a token") means it is there.
        return exc.status is not None and exc.status != 404
    return True


@click.command("demo")
@server_options
@click.option(
    "--start", is_flag=True, help="Start a server of its own (temporary database, free port)."
)
@click.option(
    "--port",
    type=Number(int, 0, 65535),
    default=0,
    help="Port of the started server, 0 to 65535 (default 0: a free one).",
)
@click.option(
    "--exit",
    "exit_after",
    is_flag=True,
    help="With a server it started: stop it when done instead of serving until Ctrl-C.",
)
@json_option
def demo_command(
    server: str, token: str | None, start: bool, port: int, exit_after: bool, as_json: bool
) -> None:
    """Run the whole walkthrough: bin, "Payment Received" webhook, test event, payload.

    Uses the server at --server when one answers there; with --start, or when none does,
    it starts one of its own on a free port with a temporary database, and keeps it running
    (until Ctrl-C) so the two pages it prints can be opened.

    \b
    Example:
      hooklab demo                 # against `hooklab serve`, or a server of its own
      hooklab demo --start --json  # always a fresh server
    """
    from hooklab.app.launcher import start_server

    local = None
    client = Client(*server_and_token(server, token))
    if not start and not reachable(client):
        if not as_json:
            click.echo(f"No Hooklab at {client.server}: starting one for the demo.", err=True)
        start = True
    if start:
        try:
            local = start_server(port=port)
        except OSError as exc:
            raise HooklabError(f"cannot start a server on port {port}: {exc.strerror}") from None
        client = Client(local.url)
    try:
        result = run_walkthrough(client)
        if as_json:
            print_json(result.to_json())
        else:
            print_walkthrough(result)
        if local is not None and not exit_after:
            try:
                click.echo(
                    f"\nThe demo server runs on {local.url} with a temporary database; "
                    "Ctrl-C stops it.",
                    err=True,
                )
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                click.echo("Stopped.", err=True)
    finally:
        if local is not None:
            local.stop()
