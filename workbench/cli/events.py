"""Commands for the event store: ``ingest events`` and ``identities resolve``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.app import DatabaseOption, app, fail, say
from workbench.errors import WorkbenchError

ingest_app = typer.Typer(help="Ingest data streams into the database.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
identities_app = typer.Typer(help="Associate events with profiles.", no_args_is_help=True)
app.add_typer(identities_app, name="identities")


@ingest_app.command("events")
def ingest_events_command(
    file: Annotated[str, typer.Argument(help="JSON lines or CSV file of events, or - for stdin.")],
    producer_key: Annotated[
        str,
        typer.Option(
            "--producer-key",
            envvar="WORKBENCH_EVENTS_API_KEY",
            show_default=False,
            help="The sender's API key, one of events.api_keys in workbench.yml (or $WORKBENCH_EVENTS_API_KEY).",
        ),
    ],
    format: Annotated[str, typer.Option(help="auto, jsonl or csv.")] = "auto",
    quarantine: Annotated[
        Path | None, typer.Option(help="File for rejected records (default: data/quarantine/<file>-<time>.jsonl).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Events stored per transaction.")] = 50_000,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue after the last line committed for this source (refused if those lines changed)."
        ),
    ] = False,
    source_name: Annotated[
        str | None,
        typer.Option(
            help="Name of this input in derived event ids and resume progress (default: the file's name; stdin has none)."
        ),
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Validate and store events; bad records go to a quarantine file, re-sent events are skipped."""
    from workbench.db.connection import connect
    from workbench.events.ingest import ingest
    from workbench.redaction import register_secret

    register_secret(producer_key)
    try:
        db = connect(database, read_only=False)
        counts = ingest(
            db,
            file,
            producer_key,
            format=format,
            quarantine_file=quarantine,
            batch_size=batch_size,
            source_name=source_name,
            resume=resume,
        )
        db.dispose()
    except WorkbenchError as exc:
        fail(exc)
    say(f"Events from {file}: {counts}")


@identities_app.command("resolve")
def resolve_identities_command(
    batch_size: Annotated[int, typer.Option(help="Events associated per transaction.")] = 100_000,
    database: DatabaseOption = None,
) -> None:
    """Associate every event without a profile with one, oldest first, merging profiles as ids link up."""
    from workbench.db.connection import connect
    from workbench.events.identities import resolve_identities

    try:
        db = connect(database, read_only=False)
        counts = resolve_identities(db, batch_size=batch_size)
        db.dispose()
    except WorkbenchError as exc:
        fail(exc)
    say(f"Identity resolution: {counts}")
