"""Commands for getting data in and seeing what is there: ``load``, ``info``, ``overview``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.app import ConfigOption, DatabaseOption, app, fail, opened_database, say
from workbench.errors import WorkbenchError

load_app = typer.Typer(help="Load data sets into the database.", no_args_is_help=True)
app.add_typer(load_app, name="load")


@load_app.command("growthbook-sample")
def load_growthbook_sample_command(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Folder holding experimentViews, purchases, pageViews, sessions and events (.csv or .csv.gz)."
        ),
    ],
    database: DatabaseOption = None,
) -> None:
    """Load GrowthBook's own sample data into experiment_viewed, orders, pages, sessions and events (replacing them)."""
    from workbench.growthbook_sample import load_growthbook_sample

    with opened_database(database, read_only=False) as db:
        counts = load_growthbook_sample(db, directory)
    for table, rows in counts.items():
        say(f"{table:>18}: {rows:>12,} rows")
    say(f"Loaded GrowthBook's sample from {directory} into {db.settings.display_url}")


@app.command("info")
def info_command(database: DatabaseOption = None) -> None:
    """Show which database and config the workbench uses, and the tables it holds."""
    from workbench import paths
    from workbench.reports.overview import table_row_counts

    with opened_database(database) as db:
        say(f"database: {db.settings.display_url} (from {db.settings.source})")
        say(f"config:   {paths.config_path()}{'' if paths.config_path().exists() else ' (absent)'}")
        for row in table_row_counts(db).itertuples():
            say(f"{row.table:>18}: {row.rows:>12,} rows")


@app.command("overview")
def overview_command(
    database: DatabaseOption = None,
    config: ConfigOption = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the executed notebook and HTML (default: reports/overview, whose page links the reports' "
            "shared plotly.js; any other folder gets a standalone page)."
        ),
    ] = None,
) -> None:
    """Run the data overview notebook with papermill and write its executed copy and HTML report."""
    from workbench import paths
    from workbench.reports.notebooks import run_notebook
    from workbench.reports.runs import linked_page_assets

    try:
        out = output_dir or paths.reports_dir() / "overview"
        shared = None if output_dir else linked_page_assets(paths.reports_dir())
        result = run_notebook(
            "overview.ipynb", out, parameters={}, database_url=database, config_path=config, shared_assets=shared
        )
    except WorkbenchError as exc:
        fail(exc)
    say(f"Executed notebook: {result.notebook}")
    say(f"HTML report:       {result.html}")
