"""The ``generate`` command: synthetic data with planted experiments, written into the database."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench.cli.app import DatabaseOption, app, fail, say
from workbench.errors import WorkbenchError


@app.command("generate")
def generate_command(
    users: Annotated[
        int, typer.Option(help="Users to simulate (100 to 100,000,000; about 37 rows each over 60 days).")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed and arguments write identical data.")] = 1,
    days: Annotated[int, typer.Option(help="Length of the period in days.")] = 60,
    start: Annotated[str, typer.Option(help="First day of the period (UTC), like 2026-09-25.")] = "2026-09-25",
    database: DatabaseOption = None,
) -> None:
    """Write synthetic experiment_viewed, orders, pages, sessions and events (replacing them), with
    planted experiments whose true effects are in generator_truth."""
    from workbench.db.connection import connect
    from workbench.generator import checked_arguments, generate

    try:
        checked_arguments(users, seed, days, start)  # before connecting, so bad arguments create no database file
        db = connect(database, read_only=False)
        try:
            counts = generate(db, users=users, seed=seed, days=days, start=start)
        finally:
            db.dispose()
    except WorkbenchError as exc:
        fail(exc)
    for table, rows in counts.items():
        say(f"{table:>18}: {rows:>12,} rows")
    say(f"Generated {users:,} users over {days} days from {start} (seed {seed}) into {db.settings.display_url}")
