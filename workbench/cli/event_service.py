"""Commands of ``workbench events``: API keys in the database, the HTTP collection service and the
resolution loop that keeps profiles current."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench.cli.app import DatabaseOption, app, opened_database, say

events_app = typer.Typer(help="Collect events over HTTP and manage the API keys that send them.", no_args_is_help=True)
app.add_typer(events_app, name="events")
keys_app = typer.Typer(help="API keys (kept in the api_keys table; only a hash is stored).", no_args_is_help=True)
events_app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def create_key_command(
    name: Annotated[str, typer.Argument(help='The producer\'s name, any text (e.g. "Web API").')],
    database: DatabaseOption = None,
) -> None:
    """Create a key and print it once: the last line of the output is the key alone."""
    from workbench.events.api_keys import create_api_key

    with opened_database(database, read_only=False) as db:
        key = create_api_key(db, name)
    say(f"Created the API key {name!r}; it is shown only now (the database keeps its SHA-256):")
    say(key)


@keys_app.command("list")
def list_keys_command(database: DatabaseOption = None) -> None:
    """Every key's name, when it was created and revoked, and where it is kept (never the key)."""
    from workbench.events.api_keys import list_api_keys

    with opened_database(database, read_only=False) as db:
        keys = list_api_keys(db)
    if keys.empty:
        say("No API keys yet: create one with `workbench events keys create NAME`.")
        return
    say(keys.to_string(index=False))
    if (keys["kept_in"] != "database").any():
        say(
            "Keys kept in workbench.yml still work; to move one into the database, create a key with "
            "`workbench events keys create NAME`, give it to the sender, then delete the old entry."
        )


@keys_app.command("revoke")
def revoke_key_command(
    name: Annotated[str, typer.Argument(help="The name of the key to revoke.")],
    database: DatabaseOption = None,
) -> None:
    """Revoke a key: the service refuses its events from now on."""
    from workbench.events.api_keys import revoke_api_key

    with opened_database(database, read_only=False) as db:
        revoke_api_key(db, name)
    say(f"Revoked the API key {name!r}.")


@events_app.command("serve")
def serve_command(
    host: Annotated[
        str, typer.Option(help="Address to bind; 127.0.0.1 keeps the service on this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8870,
    database: DatabaseOption = None,
) -> None:
    """Accept events over HTTP (POST /api/v1/track, as @grouparoo/client-web sends them) and keep profiles current."""
    from workbench.events.service import serve
    from workbench.events.settings import event_settings

    with opened_database(database, read_only=False) as db:
        settings = event_settings()
        say(f"Collecting events at http://{host}:{port}/api/v1/track into {db} (Ctrl-C stops)")
        serve(db, settings, host, port)


@events_app.command("resolve")
def resolve_command(
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep going: a round every events.resolve_every_seconds until stopped.")
    ] = False,
    database: DatabaseOption = None,
) -> None:
    """Associate events lacking a profile with one and refresh profile_property_values, as the service does."""
    import threading

    from workbench.events.keep_current import keep_profiles_current
    from workbench.events.settings import event_settings

    with opened_database(database, read_only=False) as db:
        settings = event_settings()
        if watch:
            say(f"Resolving every {settings.resolve_every_seconds:g} s (Ctrl-C stops)")
        try:
            keep_profiles_current(db, settings, threading.Event(), threading.Lock(), _report_round, once=not watch)
        except KeyboardInterrupt:
            say("Stopped.")


def _report_round(outcome: object) -> None:
    """One line per round of ``events resolve --watch``: its counts, or why it failed (redacted)."""
    from workbench.redaction import redact

    if isinstance(outcome, Exception):
        say(f"Identity resolution failed, trying again next round: {redact(outcome)}")
    else:
        say(f"Identity resolution: {outcome}")
