"""Commands for the YouTube personalization study (seed 002): ``study generate``, ``study report``, ``study check``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.app import ConfigOption, DatabaseOption, app, fail, say
from workbench.errors import WorkbenchError

study_app = typer.Typer(
    help="The YouTube personalization study (seed 002): generate data, run its report, check its data.",
    no_args_is_help=True,
)
app.add_typer(study_app, name="study")

SchemaOption = Annotated[
    str,
    typer.Option("--schema", help="Schema holding the study's tables ('public' on a real copy of the study database)."),
]


@study_app.command("generate")
def generate_command(
    size: Annotated[
        str, typer.Option(help="Study size: tiny, pilot (50 participants), medium (500) or large (5,000, ~10M events).")
    ] = "pilot",
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same study.")] = 0,
    schema: SchemaOption = "ytdpnl",
    inject_faults: Annotated[
        bool, typer.Option("--inject-faults", help="Plant known faults for the sanity checks to find.")
    ] = False,
    database: DatabaseOption = None,
) -> None:
    """Replace the study's tables in SCHEMA with a generated study (both arms, phases 0 → 1 → 2)."""
    from workbench.db.connection import connect
    from workbench.studies.ytdpnl.generator import generate_study

    try:
        db = connect(database, read_only=False)
        result = generate_study(db, size, seed=seed, schema=schema, inject_faults=inject_faults)
        db.dispose()
    except WorkbenchError as exc:
        fail(exc)
    for table, rows in result.rows.items():
        say(f"{table:>32}: {rows:>12,} rows")
    if result.faults is not None:
        for check, ids in result.faults.as_dict().items():
            say(f"planted {check}: {ids}")
    say(f"Generated the {size} study in {schema} of {db.settings.display_url} in {result.seconds:.1f} s")


@study_app.command("report")
def report_command(
    source: Annotated[
        str, typer.Option(help="'database' or 'api' ($YTDPNL_API_URL and $YTDPNL_API_TOKEN).")
    ] = "database",
    schema: SchemaOption = "ytdpnl",
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD (default: from the first event).")] = "",
    end: Annotated[str, typer.Option(help="Last day included, YYYY-MM-DD (default: to the last event).")] = "",
    codes: Annotated[str, typer.Option(help="Comma-separated participant codes (default: everyone).")] = "",
    min_pages: Annotated[int, typer.Option(help="Overview: participants with at least this many distinct pages.")] = 10,
    database: DatabaseOption = None,
    config: ConfigOption = None,
    output_dir: Annotated[
        Path | None, typer.Option(help="Folder for the executed notebook and HTML (default: reports/ytdpnl).")
    ] = None,
) -> None:
    """Run the study report notebook with papermill and write its executed copy and HTML report."""
    from workbench import paths
    from workbench.reports.notebooks import run_notebook

    if source not in ("database", "api"):
        fail(f"--source must be 'database' or 'api', got {source!r}.")
    parameters = {
        "source": source,
        "schema": schema,
        "start": start,
        "end": end,
        "min_pages": min_pages,
        "codes": [c.strip() for c in codes.split(",") if c.strip()],
    }
    try:
        result = run_notebook(
            "ytdpnl_study_report.ipynb",
            output_dir or paths.reports_dir() / "ytdpnl",
            parameters=parameters,
            database_url=database,
            config_path=config,
        )
    except WorkbenchError as exc:
        fail(exc)
    say(f"Executed notebook: {result.notebook}")
    say(f"HTML report:       {result.html}")


@study_app.command("check")
def check_command(
    schema: SchemaOption = "ytdpnl",
    max_rows: Annotated[int, typer.Option(help="Offending rows shown per check.")] = 5,
    database: DatabaseOption = None,
) -> None:
    """Run the seed's sanity checks; exit status 1 when any check finds offending rows."""
    from workbench.db.connection import connect
    from workbench.studies.ytdpnl.sanity_checks import sanity_checks

    try:
        db = connect(database)
        results = sanity_checks(db, schema=schema, max_rows=max_rows)
        db.dispose()
    except WorkbenchError as exc:
        fail(exc)
    for row in results.summary.itertuples():
        say(f"{row.check:>36}: {row.n_offending:>8,}  {row.description}")
        if row.n_offending:
            say("    ids: " + ", ".join(str(i) for i in results.offending_ids(row.check)))
    if results.summary["n_offending"].sum():
        raise typer.Exit(1)
