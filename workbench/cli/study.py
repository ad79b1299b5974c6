"""Commands for the YouTube personalization study (seed 002): ``study generate``, ``study report``,
``study check`` and ``study api …`` (the study server's HTTP API)."""

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


api_app = typer.Typer(
    help="The study server's HTTP API ($YTDPNL_API_URL and $YTDPNL_API_TOKEN): read and administer the study.",
    no_args_is_help=True,
)
study_app.add_typer(api_app, name="api")


def _api_call(method: str, *args, **kwargs) -> None:
    """Call ``ApiClient.method`` with the URL and token from the environment and print its answer:
    a frame as CSV, anything else as JSON; an error as one redacted sentence and exit status 1."""
    import json
    import os

    from workbench.studies.ytdpnl.api_client import ApiClient

    url, token = os.environ.get("YTDPNL_API_URL"), os.environ.get("YTDPNL_API_TOKEN")
    if not url or not token:
        fail("Set $YTDPNL_API_URL (the study server's address) and $YTDPNL_API_TOKEN (an admin API token).")
    try:
        result = getattr(ApiClient(url, token), method)(*args, **kwargs)
    except WorkbenchError as exc:
        fail(exc)
    if hasattr(result, "to_csv"):
        say(result.to_csv(index=False).rstrip("\n"))
    else:
        say(json.dumps(result, indent=2, default=str))


def _arm(value: str) -> str | int:
    return int(value) if value in ("0", "1") else value


@api_app.command("participants")
def api_participants_command() -> None:
    """Every participant, as CSV."""
    _api_call("participants")


@api_app.command("summary")
def api_summary_command(code: Annotated[str, typer.Argument(help="Participant code.")]) -> None:
    """The sessions of participant CODE, as CSV."""
    _api_call("participant_summary", code)


@api_app.command("events")
def api_events_command(session_uuid: Annotated[str, typer.Argument(help="Session uuid.")]) -> None:
    """The events of one session, newest first, as CSV."""
    _api_call("session_events", session_uuid)


@api_app.command("report")
def api_report_command(
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if fetched within the hour.")] = False,
) -> None:
    """The participants report (transition times in Unix milliseconds), as CSV."""
    _api_call("participants_report", force=force)


@api_app.command("create-participant")
def api_create_participant_command(
    code: Annotated[str, typer.Argument(help="The new participant's code.")],
    arm: Annotated[str, typer.Option(help="control or treatment (or 0 or 1).")] = "control",
    paid: Annotated[bool, typer.Option("--paid", help="A paid participant.")] = False,
) -> None:
    """Create participant CODE."""
    _api_call("create_participant", code, arm=_arm(arm), is_paid=paid)


@api_app.command("update-participant")
def api_update_participant_command(
    code: Annotated[str, typer.Argument(help="The participant's code.")],
    phase: Annotated[int | None, typer.Option(help="0, 1 or 2.")] = None,
    arm: Annotated[str | None, typer.Option(help="control or treatment (or 0 or 1).")] = None,
    paid: Annotated[
        bool | None, typer.Option("--paid/--unpaid", help="Change the paid state (default: keep it).")
    ] = None,
    channel_source_id: Annotated[int | None, typer.Option(help="Channel source id.")] = None,
    pos_in_channel_source: Annotated[int | None, typer.Option(help="Position in the channel source.")] = None,
) -> None:
    """Update participant CODE; the paid state is kept unless --paid or --unpaid."""
    _api_call(
        "update_participant",
        code,
        phase=phase,
        arm=None if arm is None else _arm(arm),
        is_paid=paid,
        channel_source_id=channel_source_id,
        pos_in_channel_source=pos_in_channel_source,
    )


@api_app.command("upload-participants")
def api_upload_participants_command(
    path: Annotated[Path, typer.Argument(help="CSV with columns code, arm and optionally isPaid, phase.")],
) -> None:
    """Create and update participants from a CSV file."""
    _api_call("upload_participants_csv", path)


@api_app.command("add-vouchers")
def api_add_vouchers_command(codes: Annotated[list[str], typer.Argument(help="Voucher codes.")]) -> None:
    """Add voucher codes."""
    _api_call("add_vouchers", codes)


@api_app.command("create-channel-source")
def api_create_channel_source_command(
    channel_ids: Annotated[list[str], typer.Argument(help="YouTube channel ids, in rotation order.")],
    title: Annotated[str | None, typer.Option(help="A title for the source.")] = None,
    default: Annotated[bool, typer.Option("--default", help="Make it the default source.")] = False,
) -> None:
    """Create a channel source of CHANNEL_IDS (the first source ever created is the default); its record as JSON."""
    _api_call("create_channel_source", channel_ids, title=title, is_default=default)


@api_app.command("update-channel-source")
def api_update_channel_source_command(
    source_id: Annotated[int, typer.Argument(help="The channel source's id.")],
    channel_ids: Annotated[list[str], typer.Argument(help="Its new YouTube channel ids (they replace the old ones).")],
    title: Annotated[str | None, typer.Option(help="A new title (production keeps it only with --default).")] = None,
    default: Annotated[
        bool | None, typer.Option("--default/--not-default", help="Change the default flag (default: keep it).")
    ] = None,
    reset_positions: Annotated[
        bool, typer.Option("--reset-positions", help="Put the source's participants back at position 0.")
    ] = False,
) -> None:
    """Replace the channels of channel source SOURCE_ID; its record as JSON."""
    _api_call(
        "update_channel_source",
        source_id,
        channel_ids,
        title=title,
        is_default=default,
        reset_participant_positions=reset_positions,
    )


@api_app.command("rotation-speed")
def api_rotation_speed_command(
    set_hours: Annotated[float | None, typer.Option("--set", help="Set the rotation speed to this many hours.")] = None,
) -> None:
    """Print the channel rotation speed in hours (24 when never set), or set it with --set."""
    if set_hours is None:
        _api_call("channel_rotation_speed")
    else:
        _api_call("set_channel_rotation_speed", set_hours)
