"""`hooklab probe`: test a webhook receiver against the Standard Webhooks rules."""

from __future__ import annotations

import click

from hooklab.cli.common import Number, json_option, print_json, resolve_event, with_client
from hooklab.client.http import Client, HooklabError
from hooklab.client.probe import ProbeReport

# The API's field names, as the options a person typed.
OPTION_OF_FIELD = {"secret": "--secret", "event": "--event", "timeout_s": "--timeout"}


# The receiver's time per request, as the server takes it (sender/probe.py): NaN, infinity
# and numbers out of range are refused here, naming the option (exit 2).
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 0.1, 60.0


@click.command("probe")
@with_client
@click.argument("url")
@click.option("--secret", required=True, help="The receiver's whsec_ secret (or a whsk_ key).")
@click.option("--event", default=None, help="The catalog event to send (default: the first).")
@click.option(
    "--timeout",
    "timeout_s",
    type=Number(float, MIN_TIMEOUT_S, MAX_TIMEOUT_S, unit="seconds"),
    default=10.0,
    show_default=True,
    help=f"Seconds the receiver has to answer each request ({MIN_TIMEOUT_S:g} to "
    f"{MAX_TIMEOUT_S:g}).",
)
@json_option
def probe_command(
    client: Client, url: str, secret: str, event: str | None, timeout_s: float, as_json: bool
) -> None:
    """Check a webhook receiver: signed, forged, stale and repeated requests (exit 1 on a ✗).

    Sends one catalog event in several shapes and prints a report card: what a correct
    receiver accepts (2xx) and refuses (4xx), and how fast it answers. The server at
    --server sends the requests, so URL is as that server sees it.

    \b
    Example:
      hooklab probe http://127.0.0.1:5000/webhooks --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    """
    try:
        slug = resolve_event(client, event) if event is not None else None
        report = ProbeReport(client.probe(url, secret, slug, timeout_s))
    except HooklabError as exc:
        raise click.ClickException(_as_option(exc)) from None
    if as_json:
        print_json(report)
    else:
        click.echo(report.card())
    if not report["ok"]:
        raise SystemExit(1)


def _as_option(exc: HooklabError) -> str:
    """The server's message for a bad field, naming the option the person typed."""
    option = OPTION_OF_FIELD.get(exc.field or "")
    if exc.status != 422 or option is None:
        return exc.message  # a bad URL's message already starts with "URL"
    message = exc.message
    if message.startswith(f"{exc.field} "):  # "timeout_s is a number …"
        return option + message[len(exc.field) :]
    for prefix in (f"{exc.field}: ", f"{exc.field.capitalize()}: "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return f"{option}: {message}"
