"""The `hooklab` command: the server commands, and the client commands of each half."""

from __future__ import annotations

import os
import sys

import click

import hooklab.shared
from hooklab.cli.bins import bin_group, replay_command
from hooklab.cli.common import HooklabGroup, server_options, visible
from hooklab.cli.demo import demo_command
from hooklab.cli.events import events_group
from hooklab.cli.listen import listen_command
from hooklab.cli.probe import probe_command
from hooklab.cli.webhooks import fire_command, webhook_group
from hooklab.shared.settings import SETTINGS, SettingError, Settings, _bool, range_text
from hooklab.shared.store import StoreError

# What `hooklab worker` reads: the database and how deliveries are sent. The server's own
# settings (address, threads, token, capture limits…) would do nothing there.
WORKER_SETTINGS = frozenset(
    {
        "db",
        "delivery_workers",
        "retry_schedule",
        "retry_jitter",
        "disable_after_failures",
        "response_body_cap",
        "claim_timeout_s",
        "retention_days",
        "block_private_targets",
    }
)


def settings_options(func=None, *, only: frozenset[str] | None = None):
    """Add one option per setting (the settings table drives the CLI); `only`: these ones."""
    if func is None:
        return lambda f: settings_options(f, only=only)
    for setting in reversed(SETTINGS):
        if only is not None and setting.name not in only:
            continue
        extra = {}
        if setting.type is _bool:  # `--search-index` alone says true; a value may follow
            extra = {"is_flag": False, "flag_value": "true", "metavar": "[true|false]"}
        ranged = range_text(setting)
        func = click.option(
            setting.option,
            setting.name,
            default=None,
            help=f"{setting.help} [env {setting.env}; default {setting.default}"
            + (f"; {ranged}]" if ranged else "]"),
            show_default=False,
            multiple=setting.multiple,
            **extra,
        )(func)
    return func


def load_settings(options: dict) -> Settings:
    """Settings from defaults, environment and the given options, or a clear CLI error."""
    try:
        # An option not given is None (or () when it may be repeated): the environment decides.
        return Settings({k: v for k, v in options.items() if v not in (None, ())})
    except SettingError as exc:
        raise click.UsageError(str(exc)) from None


@click.group(cls=HooklabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(hooklab.shared.__version__, prog_name="hooklab")
@server_options
@click.pass_context
def cli(ctx: click.Context, server: str | None, token: str | None) -> None:
    """Hooklab: a local webhook lab (a request bin and a webhook sender).

    \b
    Start the server:   hooklab serve
    Then open:          http://127.0.0.1:8000/
    See it all work:    hooklab demo

    The client commands talk to the server at --server (default http://127.0.0.1:8000,
    env HOOKLAB_SERVER), with --token (env HOOKLAB_TOKEN) when it needs one; both may come
    before the command (`hooklab --server URL bin list`) or after it.
    """
    # (Read from the context by the commands below: cli/common.py server_and_token.)


@cli.command()
@settings_options
def serve(**options) -> None:
    """Start the server: bins, webhooks, UI, API and delivery workers in one process.

    \b
    Example:
      hooklab serve --port 8000 --db hooklab.db
    """
    from hooklab.app.server import serve as run_server

    settings = load_settings(options)
    _check_token(settings)
    _check_port(settings)
    _check_store(settings)
    _check_catalog(settings)
    run_server(settings)


@cli.command()
@settings_options(only=WORKER_SETTINGS)
def worker(**options) -> None:
    """Run delivery workers alone against the database (no web server), for more throughput.

    \b
    Example:
      hooklab worker --db hooklab.db --delivery-workers 16
    """
    from hooklab.app.server import run_workers

    settings = load_settings(options)
    if settings.delivery_workers < 1:
        raise click.UsageError("--delivery-workers: `hooklab worker` needs at least 1")
    if not os.path.exists(settings.db):
        # A misspelt --db made an empty database and delivered nothing, without a word: the
        # workers serve a database `hooklab serve` made.
        raise click.ClickException(
            f"there is no database at {settings.db}: give the --db (or HOOKLAB_DB) of the "
            "`hooklab serve` whose deliveries these workers should send"
        )
    _check_store(settings)
    run_workers(settings)


cli.add_command(bin_group)
cli.add_command(webhook_group)
cli.add_command(events_group)
cli.add_command(fire_command)
cli.add_command(replay_command)
cli.add_command(listen_command)
cli.add_command(demo_command)
cli.add_command(probe_command)


def _check_port(settings: Settings) -> None:
    # gunicorn retries a busy port for 5 s, logging each try, after our banner claimed the
    # address: say it once, before anything else is printed. (Settings checked its range.)
    from hooklab.app.server import bind_listener, listen_problem

    try:
        bind_listener(settings.host, settings.port).close()
    except OSError as exc:  # (socket.gaierror too: a --host that names nothing)
        raise click.ClickException(listen_problem(settings.host, settings.port, exc)) from None


def _check_token(settings: Settings) -> None:
    # A token no client could send in its Authorization header would lock the API for good.
    from hooklab.client.http import header_value_problem

    if settings.token and (problem := header_value_problem(settings.token)):
        raise click.UsageError(f"--token (or HOOKLAB_TOKEN): the access token {problem}")


def _check_store(settings: Settings) -> None:
    from hooklab.app.factory import open_store

    try:
        open_store(settings.db).migrate()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


def _check_catalog(settings: Settings) -> None:
    # A bad --catalog file is refused here, in one line, before gunicorn forks the serving process.
    from hooklab.sender.catalog import CatalogError, build_catalog

    try:
        build_catalog(settings.catalog)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None


def main() -> None:
    """Entry point of the `hooklab` script: errors are one line, never a traceback."""
    try:
        cli(prog_name="hooklab", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("HOOKLAB_DEBUG"):
            raise
        # A bug of ours: still one line for the user, the traceback on request.
        click.echo(
            f"Error: unexpected {type(exc).__name__}: {visible(exc, multiline=True)} "
            "(set HOOKLAB_DEBUG=1 for details)",
            err=True,
        )
        sys.exit(1)
