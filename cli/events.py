"""`hooklab events …`: the event catalog from the command line (list, show, check, import)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml

from hooklab.cli.common import (
    json_option,
    json_text,
    json_wanted,
    print_json,
    print_table,
    printable,
    read_json_arg,
    resolve_event,
    with_client,
)
from hooklab.client.http import Client, HooklabError

# An import lists this many slugs; the rest are counted.
LISTED = 50


@click.group("events", invoke_without_command=True)
@with_client
@json_option
@click.pass_context
def events_group(ctx: click.Context, client: Client, as_json: bool) -> None:
    """List the event catalog: what `fire` and webhooks can use.

    --server, --token and --json given here apply to the command after it as well.

    \b
    Example:
      hooklab events
      hooklab events --json | jq '.[] | select(.slug == "payment_received").payload'
      hooklab events show payment_received
      hooklab events rm shop.order_paid
      hooklab events import github-webhooks.yaml --prefix github.
    """
    if ctx.invoked_subcommand is not None:
        return
    catalog = client.events()
    if as_json:
        print_json(catalog)
        return
    print_table(
        [[e["slug"], e.get("name"), e.get("description")] for e in catalog],
        ["SLUG", "NAME", "DESCRIPTION"],
        "The catalog is empty.",
        cut=("NAME",),
    )


@events_group.command("show")
@with_client
@click.argument("event")
@json_option
def events_show(client: Client, event: str, as_json: bool) -> None:
    """Show one event: its example payload and its JSON Schema.

    \b
    Example:
      hooklab events show payment_received
      hooklab events show "Payment Received" --json | jq .schema
    """
    found = client.event(resolve_event(client, event))
    if json_wanted(as_json):
        print_json(found)
        return
    kind = "built-in" if found.get("builtin") else "user event"
    click.echo(printable(f"{found['name']} ({found['slug']}, {kind})"))
    if found.get("description"):
        click.echo(printable(found["description"]))
    click.echo("\nExample payload:")
    click.echo(json_text(found["payload"], indent=2))
    click.echo("\nSchema:")
    click.echo(json_text(found.get("schema"), indent=2))


@events_group.command("check")
@with_client
@click.argument("event")
@click.option("--data", required=True, metavar="JSON|@FILE", help="The payload to check.")
@json_option
def events_check(client: Client, event: str, data: str, as_json: bool) -> None:
    """Check a payload against an event's schema (exit 1 when it does not match).

    \b
    Example:
      hooklab events check payment_received --data @payload.json
    """
    from hooklab.cli.bins import format_check

    result = client.check_payload(resolve_event(client, event), read_json_arg(data, "--data"))
    if json_wanted(as_json):
        print_json(result)
    else:
        click.echo(format_check(result, "the payload"))
    if not result.get("valid"):
        raise click.exceptions.Exit(1)


@events_group.command("rm")
@with_client
@click.argument("slug")
def events_rm(client: Client, slug: str) -> None:
    """Delete an event you added or imported (built-in events stay).

    An event that webhooks subscribe to is not deleted: the error names them.

    \b
    Example:
      hooklab events rm shop.order_paid
    """
    if json_wanted(False):
        raise click.UsageError("--json: `events rm` prints no JSON (it says what it deleted)")
    client.delete_event(slug)
    click.echo(printable(f"Deleted event {slug}"))


@events_group.command("import")
@with_client
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--prefix", default="", help="Put before each webhook's name to make its slug (github.)."
)
@click.option("--dry-run", is_flag=True, help="Say what would be added or updated; change nothing.")
@json_option
def events_import(client: Client, file: str, prefix: str, dry_run: bool, as_json: bool) -> None:
    """Import an OpenAPI 3.1 document's webhooks (YAML or JSON) as events.

    Each webhook's post request body gives the schema and example; importing again updates
    the same slugs. A document that cannot be imported as a whole adds nothing.

    \b
    Example:
      hooklab events import petstore.yaml --prefix oai. --dry-run
      hooklab events import petstore.yaml --prefix oai.
      hooklab fire oai.newPet
    """
    document = read_document(file)
    result = client.import_events(document, prefix, dry_run)
    if json_wanted(as_json):
        print_json(result)
        return
    click.echo(import_report(result, file))


def read_document(file: str) -> Any:
    """An OpenAPI document from a YAML or JSON file, or a HooklabError saying what is wrong."""
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HooklabError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise HooklabError(f"{file} is not UTF-8 text") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            if path.suffix.lower() == ".json":
                raise HooklabError(f"{file} is not valid JSON: {exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise HooklabError(f"{file} is not valid YAML or JSON{where}: {problem}") from None
    except RecursionError:
        raise HooklabError(f"{file} is nested too deeply") from None


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe YAML loader (libyaml's when present), keeping dates as the strings they are.

    A provider's document repeats the same scalars (`type`, `string`, `properties`) hundreds
    of thousands of times; resolving each one's tag anew took a third of the load time.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._tags: dict[tuple[str, Any], str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        """The tag of a node; a scalar's is remembered (it depends on its text alone)."""
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = self._tags[key] = super().resolve(kind, value, implicit)
        return tag


_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: node.value)


def import_report(result: dict, file: str) -> str:
    """What an import did (or would do), for people."""
    added, updated = result.get("added") or [], result.get("updated") or []
    verb = "Would import" if result.get("dry_run") else "Imported"
    prefix = f' under prefix "{result["prefix"]}"' if result.get("prefix") else ""
    total = len(added) + len(updated)
    lines = [
        f"{verb} {total} event{'' if total == 1 else 's'} from {file}{prefix}: "
        f"{len(added)} new, {len(updated)} updated"
    ]
    listed = [("+", s) for s in added] + [("~", s) for s in updated]
    lines += [f"  {mark} {printable(slug)}" for mark, slug in listed[:LISTED]]
    if len(listed) > LISTED:
        lines.append(f"  … and {len(listed) - LISTED} more (--json lists them all)")
    generated = result.get("generated_examples") or []
    if generated:
        lines.append(
            f"{len(generated)} example{'' if len(generated) == 1 else 's'} generated from "
            "the schema (none in the document)"
        )
    for skipped in result.get("skipped") or []:
        lines.append(f"Skipped {printable(skipped['name'])}: {printable(skipped['reason'])}")
    for note in result.get("notes") or []:
        lines.append(f"Note: {printable(note['slug'])}: {printable(note['note'])}")
    if result.get("dry_run"):
        lines.append("Nothing was changed (dry run).")
    return "\n".join(lines)
