"""`hooklab webhook …`, `hooklab events` and `hooklab fire`: the sender from the command line."""

from __future__ import annotations

import sys

import click

from hooklab.cli.common import (
    BIN_ID,
    INTERRUPTED,
    WHOLE_NUMBER_ID,
    Number,
    json_option,
    print_fields,
    print_json,
    print_table,
    read_json_arg,
    resolve_event,
    short_time,
    visible,
    with_client,
)
from hooklab.client.http import Client, HooklabError, header_value_problem

# `fire --count N` shows a progress bar from this many events on.
PROGRESS_FROM = 20
# `fire --count N` fires one call at a time: the server takes any number of events, but a run
# longer than this is a load test, for bench/ (and an N near 2^63 broke the progress bar).
MAX_FIRE_COUNT = 100_000
# A webhook's timeout per attempt, as the server takes it (sender/webhooks.py).
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 0.1, 60.0
# Deliveries in one page of the log, as the API takes `limit` (sender/deliveries.py MAX_LIMIT).
MAX_DELIVERIES_LIMIT = 200
DEFAULT_DELIVERIES_LIMIT = 50
# A delivery id, as the API takes `before` (shared/store.py MAX_ROW_ID).
MAX_ROW_ID = 2**63 - 1


@click.group("webhook")
def webhook_group() -> None:
    """Add, list, test and delete webhooks, and read their delivery log.

    \b
    Example:
      hooklab webhook add --name Payments --url "$(hooklab bin create)" --event "Payment Received"
      hooklab webhook test 1
      hooklab webhook deliveries 1
    """


@webhook_group.command("add")
@with_client
@click.option("--name", required=True, help="A name for people.")
@click.option("--url", default=None, help="Where deliveries are POSTed.")
@click.option(
    "--bin", "bin_id", type=BIN_ID, default=None, help="Deliver to this bin (instead of --url)."
)
@click.option(
    "--event", required=True, help='An event slug, its name ("Payment Received"), or "*" for all.'
)
@click.option("--secret", default=None, help="A whsec_ secret (default: a new one).")
@click.option(
    "--format",
    "payload_format",
    type=click.Choice(["flat", "envelope"]),
    default=None,
    help="The payload as is (flat) or wrapped with type and timestamp (envelope).",
)
@click.option(
    "--scheme",
    "signature_scheme",
    type=click.Choice(["v1", "v1a", "v1 v1a"]),
    default=None,
    help="Signatures: v1 (HMAC, the default), v1a (ed25519, checked with a public key) or both.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=Number(float, MIN_TIMEOUT_S, MAX_TIMEOUT_S, unit="seconds"),
    default=None,
    help=f"Seconds per attempt ({MIN_TIMEOUT_S:g} to {MAX_TIMEOUT_S:g}).",
)
@click.option("--inactive", is_flag=True, help="Add it switched off.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the new webhook's id (for scripts).")
@json_option
def webhook_add(
    client: Client,
    name: str,
    url: str | None,
    bin_id: str | None,
    event: str,
    secret: str | None,
    payload_format: str | None,
    signature_scheme: str | None,
    timeout_s: float | None,
    inactive: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Add a webhook: the URL gets a signed POST for every event it subscribes to.

    \b
    Example:
      hooklab webhook add --name Payments --url http://127.0.0.1:5000/hooks --event payment_received
      hooklab webhook add --name "Into a bin" --bin BIN_ID --event "*"
      ID=$(hooklab webhook add -q --name Payments --bin BIN_ID --event payment_received)
    """
    if (url is None) == (bin_id is None):
        raise click.UsageError("give either --url or --bin")
    if bin_id is not None:
        url = client.bin(bin_id)["url"]
    fields = {"name": name, "url": url, "event": resolve_event(client, event)}
    if secret is not None:
        fields["secret"] = secret
    if payload_format is not None:
        fields["payload_format"] = payload_format
    if timeout_s is not None:
        fields["timeout_s"] = timeout_s
    if signature_scheme is not None:
        fields["signature_scheme"] = signature_scheme
    if inactive:
        fields["active"] = False
    webhook = client.create_webhook(**fields)
    if as_json:
        print_json(webhook)
        return
    if quiet:
        click.echo(webhook["id"])
        return
    # Name and URL are as typed (or as a server sent them): shown as text, never obeyed.
    click.echo(visible(f"Added webhook {webhook['id']}: {webhook['name']} → {webhook['url']}"))
    if webhook.get("secret"):
        click.echo(visible(f"Secret: {webhook['secret']}"))
    if webhook.get("public_key"):
        click.echo(visible(f"Public key (v1a): {webhook['public_key']}"))
    click.echo(f"Send it a test event: hooklab webhook test {webhook['id']}", err=True)


@webhook_group.command("list")
@with_client
@json_option
def webhook_list(client: Client, as_json: bool) -> None:
    """List the webhooks.

    \b
    Example:
      hooklab webhook list
    """
    webhooks = client.webhooks()
    if as_json:
        print_json(webhooks)
        return
    rows = [
        [
            w["id"],
            w.get("name"),
            w.get("event"),
            w.get("active"),
            w.get("last_status"),
            w.get("url"),
        ]
        for w in webhooks
    ]
    print_table(
        rows,
        ["ID", "NAME", "EVENT", "ACTIVE", "LAST STATUS", "URL"],
        "No webhooks yet: add one with `hooklab webhook add`.",
        cut=("NAME",),
    )


@webhook_group.command("show")
@with_client
@click.argument("webhook_id", type=WHOLE_NUMBER_ID)
@json_option
def webhook_show(client: Client, webhook_id: str, as_json: bool) -> None:
    """Show a webhook's settings (and its secret).

    \b
    Example:
      hooklab webhook show 1
    """
    webhook = client.webhook(webhook_id)
    if as_json:
        print_json(webhook)
        return
    # Laid out like `bin show`: labels for people, not the API's field names and Python values.
    event = webhook.get("event")
    event_name = webhook.get("event_name")
    state = "yes" if webhook.get("active") else "no"
    if not webhook.get("active") and webhook.get("disabled_reason"):
        state += f" ({webhook['disabled_reason']})"
    lines = [
        ("ID", webhook["id"]),
        ("Name", webhook.get("name") or "-"),
        ("URL", webhook.get("url")),
        ("Event", f"{event_name} ({event})" if event_name and event_name != event else event),
        ("Active", state),
        ("Payload format", webhook.get("payload_format")),
        ("Timeout", f"{webhook.get('timeout_s')} s"),
        ("Signature scheme", webhook.get("signature_scheme", "v1")),
        ("Secret", webhook.get("secret") or "-"),
    ]
    if webhook.get("public_key"):
        lines.append(("Public key", webhook["public_key"]))
    if webhook.get("previous_secret_expires_at"):
        until = short_time(webhook["previous_secret_expires_at"])
        lines.append(("Previous secret", f"{webhook.get('previous_secret')} (until {until} UTC)"))
        if webhook.get("previous_public_key"):
            lines.append(("Previous public key", webhook["previous_public_key"]))
    lines += [
        ("Page", client.url(f"/webhooks/{webhook['id']}")),
        ("Created", short_time(webhook.get("created_at"))),
        ("Deliveries", webhook.get("delivery_count", 0)),
    ]
    last = webhook.get("last_delivery")
    if last:
        answer = last.get("status_code") or last.get("error") or "-"
        test = " (test)" if last.get("test") else ""
        lines.append(("Last delivery", f"#{last['id']} {last.get('status')}{test}: {answer}"))
    if webhook.get("consecutive_failures"):
        lines.append(("Failures in a row", webhook["consecutive_failures"]))
    if not webhook.get("active"):
        lines.append(("Enable it", f"hooklab webhook enable {webhook['id']}"))
    print_fields(lines)


def _switch(client: Client, webhook_id: str, active: bool) -> None:
    """Enable or disable a webhook, and say so in one line."""
    word = "enabled" if active else "disabled"
    current = client.webhook(webhook_id)
    if bool(current.get("active")) == active:
        click.echo(visible(f"Webhook {webhook_id} is already {word}: {current['name']}"))
        return
    webhook = client.update_webhook(webhook_id, active=active)
    click.echo(visible(f"{word.capitalize()} webhook {webhook['id']}: {webhook['name']}"))


@webhook_group.command("enable")
@with_client
@click.argument("webhook_id", type=WHOLE_NUMBER_ID)
def webhook_enable(client: Client, webhook_id: str) -> None:
    """Enable a webhook again (after too many failures, a 410, or `disable`): events reach it.

    Its count of failures in a row starts again from 0.

    \b
    Example:
      hooklab webhook enable 1
    """
    _switch(client, webhook_id, True)


@webhook_group.command("disable")
@with_client
@click.argument("webhook_id", type=WHOLE_NUMBER_ID)
def webhook_disable(client: Client, webhook_id: str) -> None:
    """Disable a webhook: fired events no longer reach it (`enable` turns it back on).

    \b
    Example:
      hooklab webhook disable 1
    """
    _switch(client, webhook_id, False)


@webhook_group.command("test")
@with_client
@click.argument("webhook_id", type=WHOLE_NUMBER_ID)
@json_option
def webhook_test(client: Client, webhook_id: str, as_json: bool) -> None:
    """Send the webhook's event example now and print the answer (exit 1 when it failed).

    \b
    Example:
      hooklab webhook test 1
    """
    result = client.test_webhook(webhook_id)
    if as_json:
        print_json(result)
    else:
        click.echo(visible(describe_test(result)))
        body = result.get("response_body")
        if body:
            # The receiver's answer is outside data, like a capture: nothing the terminal acts on.
            body = visible(body, multiline=True)
            click.echo(body if len(body) <= 2000 else body[:2000] + "…")
    if not result.get("ok"):
        raise SystemExit(1)


def describe_test(result: dict) -> str:
    """One line about a test delivery: its status and time, or its error."""
    ms = result.get("duration_ms")
    if result.get("ok"):
        took = f" in {ms} ms" if ms is not None else ""
        return f"✓ Test event delivered: {result.get('status_code')}{took}"
    # The time goes before the reason: after it, "… at 127.0.0.1:9 in 1 ms" reads as the address.
    after = f" after {ms} ms" if ms is not None else ""
    why = result.get("error") or f"the receiver answered {result.get('status_code')}"
    # The reason already names the 410 ("HTTP 410 Gone: the receiver says this URL is gone").
    gone = result.get("status_code") == 410 and result.get("webhook_active") is False
    gone = "; the webhook is now disabled" if gone else ""
    return f"✗ Test event failed{after}: {why}{gone}"


@webhook_group.command("deliveries")
@with_client
@click.argument("webhook_id", type=WHOLE_NUMBER_ID)
@click.option(
    "--limit",
    type=Number(int, 1, MAX_DELIVERIES_LIMIT),
    default=DEFAULT_DELIVERIES_LIMIT,
    show_default=True,
    help=f"Show at most this many (1 to {MAX_DELIVERIES_LIMIT}), newest first.",
)
@click.option(
    "--before",
    type=Number(int, 0, MAX_ROW_ID),
    default=None,
    metavar="DELIVERY_ID",
    help="Only deliveries older than this one (the next page).",
)
@json_option
def webhook_deliveries(
    client: Client, webhook_id: str, limit: int, before: int | None, as_json: bool
) -> None:
    """List a webhook's deliveries with their attempts, newest first, a page at a time.

    When older deliveries are left out, the last line says how many, and the --before that
    shows the next page. --json prints the page as a JSON array, nothing else.

    \b
    Example:
      hooklab webhook deliveries 1
      hooklab webhook deliveries 1 --limit 10 --before 120
      hooklab webhook deliveries 1 --json | jq '.[0].attempts'
    """
    page = client.deliveries_page(webhook_id, limit=limit, before=before)
    deliveries = page["deliveries"]
    if as_json:
        print_json(deliveries)
        return
    rows = [
        [
            d["id"],
            d.get("event"),
            d.get("status"),
            len(d.get("attempts") or []),
            d.get("last_status_code") or d.get("last_error"),
            "yes" if d.get("test") else "",
            short_time(d.get("created_at")),
        ]
        for d in deliveries
    ]
    print_table(
        rows,
        ["ID", "EVENT", "STATUS", "ATTEMPTS", "LAST ANSWER", "TEST", "CREATED"],
        "No deliveries yet." if before is None else f"No deliveries before {before}.",
    )
    left_out = (page["total"] or 0) - len(deliveries)
    if deliveries and left_out > 0:
        older = count_of(left_out, "older delivery", "older deliveries")
        click.echo(f"… {older} not shown (--before {deliveries[-1]['id']})")


@webhook_group.command("redeliver")
@with_client
@click.argument("delivery_id", type=WHOLE_NUMBER_ID)
@json_option
def webhook_redeliver(client: Client, delivery_id: str, as_json: bool) -> None:
    """Make one more attempt of a delivery now, and print its answer (exit 1 when it failed).

    \b
    Example:
      hooklab webhook redeliver 7
    """
    result = client.redeliver(delivery_id)
    if as_json:
        print_json(result)
    else:
        attempt = result.get("attempt") or {}
        ms = attempt.get("duration_ms")
        head = f"Delivery {delivery_id}, attempt {attempt.get('number')}"
        if result.get("ok"):
            took = f" in {ms} ms" if ms is not None else ""
            click.echo(f"✓ {head}: {attempt.get('status_code')}{took}")
        else:
            after = f" after {ms} ms" if ms is not None else ""
            why = attempt.get("error") or attempt.get("status_code") or "no answer"
            click.echo(visible(f"✗ {head} failed{after}: {why}"))
    if not result.get("ok"):
        raise SystemExit(1)


@webhook_group.command("rm")
@with_client
@click.argument(
    "webhook_ids", nargs=-1, required=True, metavar="WEBHOOK_ID...", type=WHOLE_NUMBER_ID
)
def webhook_rm(client: Client, webhook_ids: tuple[str, ...]) -> None:
    """Delete webhooks (the ids found; then says which were not).

    \b
    Example:
      hooklab webhook rm 1 2
    """
    # As `bin rm`: every id is checked first (click), each found one deleted, and the ids of
    # no webhook named at the end (exit 1) rather than stopping at the first.
    ids = list(dict.fromkeys(webhook_ids))
    missing = []
    for webhook_id in ids:
        try:
            client.delete_webhook(webhook_id)
        except HooklabError as exc:
            if exc.code != "webhook_not_found":
                raise
            missing.append(webhook_id)
            continue
        click.echo(f"Deleted webhook {webhook_id}")
    if missing:
        raise HooklabError(
            f"No webhook with id {', '.join(repr(webhook_id) for webhook_id in missing)}."
        )


@click.command("fire")
@with_client
@click.argument("event")
@click.option(
    "--data",
    default=None,
    metavar="JSON|@FILE",
    help="The payload: JSON, @file or @- for stdin (default: the catalog's example).",
)
@click.option(
    "--count",
    type=Number(int, 1, MAX_FIRE_COUNT),
    default=1,
    show_default=True,
    help=f"Fire it this many times (1 to {MAX_FIRE_COUNT}).",
)
@click.option(
    "--idempotency-key",
    default=None,
    callback=lambda ctx, param, value: _header_value(value),
    help="Sent as Idempotency-Key.",
)
@click.option(
    "--no-check",
    is_flag=True,
    help="Send a payload that does not match the event's schema (to test a receiver's checks).",
)
@json_option
def fire_command(
    client: Client,
    event: str,
    data: str | None,
    count: int,
    idempotency_key: str | None,
    no_check: bool,
    as_json: bool,
) -> None:
    """Fire an event: every active webhook subscribed to it gets a delivery.

    \b
    Example:
      hooklab fire payment_received
      hooklab fire "Payment Received" --data '{"amount": 4200, "currency": "EUR"}'
      hooklab fire payment_received --data @payment.json --count 500
      hooklab fire oai.newPet --data '{"id": "x"}' --no-check

    A payload for a user event (added or imported) is checked against its schema first.
    """
    slug = resolve_event(client, event)
    payload = read_json_arg(data, "--data") if data is not None else None
    results: list[dict] = []
    try:
        if count >= PROGRESS_FROM:
            with click.progressbar(range(count), label=f"Firing {slug}", file=sys.stderr) as bar:
                for _ in bar:
                    results.append(client.fire(slug, payload, idempotency_key, not no_check))
        else:
            for _ in range(count):
                results.append(client.fire(slug, payload, idempotency_key, not no_check))
    except KeyboardInterrupt:
        # The call under way when Ctrl-C came may have reached the server or not.
        # (A terminal shows ^C where the cursor was: a progress bar ends its own line.)
        first = "" if count >= PROGRESS_FROM else "\n"
        click.echo(
            first
            + visible(
                f"Stopped (Ctrl-C) after firing {slug} {len(results)} of "
                f"{count_of(count, 'time', 'times')} (the call under way may have fired once more)"
            ),
            err=True,
        )
        raise click.exceptions.Exit(INTERRUPTED) from None
    if as_json:
        print_json(results[0] if count == 1 else results)
        return
    if count == 1:
        result = results[0]
        deliveries = result.get("deliveries", [])
        if deliveries:
            ids = ", ".join(str(d["id"]) for d in deliveries)
            made = f"{count_of(len(deliveries), 'delivery', 'deliveries')} ({ids})"
        else:
            # Say why nothing will arrive anywhere, rather than a bare "0".
            made = f"no deliveries: no active webhook subscribes to {slug}"
        click.echo(visible(f"Fired {slug}: event {result.get('event_id')}, {made}"))
        return
    total = sum(len(r.get("deliveries", [])) for r in results)
    click.echo(visible(f"Fired {slug} {count} times: {count_of(total, 'delivery', 'deliveries')}"))


def _header_value(value: str | None) -> str | None:
    """An option's value sent as a header, refused (exit 2) when no header can carry it."""
    if value is not None and (problem := header_value_problem(value)):
        raise click.BadParameter(f"it {problem}")
    return value


def count_of(n: int, one: str, many: str) -> str:
    """'1 delivery', '2 deliveries': a count with the right form of the word."""
    return f"{n} {one if n == 1 else many}"
