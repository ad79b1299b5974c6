"""Report commands: ``report`` (one experiment), ``run-reports`` (scheduled runs), ``render`` (any
notebook), ``dashboard`` (Voila), and ``new experiment`` / ``new analysis`` (from the templates in ``templates/``)."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.app import ConfigOption, DatabaseOption, FullRefreshOption, IncrementalOption, app, fail, say
from workbench.errors import WorkbenchError
from workbench.reports.dashboard import CULL_IDLE_MINUTES, MAX_KERNELS, TOKEN_ENV, WARM_KERNELS
from workbench.reports.runs import KEEP_RUNS

DimensionOption = Annotated[
    str,
    typer.Option(
        "--dimension",
        help="Break results down by these assignment-query columns, separated by commas (default: every configured dimension of the experiment; none: overall only).",
    ),
]
KeepOption = Annotated[
    int,
    typer.Option(
        "--keep",
        min=1,
        help="Runs kept per experiment: older timestamped notebooks and pages are deleted (never the last good report).",
    ),
]
new_app = typer.Typer(
    help="Start a new experiment entry or analysis notebook from the templates.", no_args_is_help=True
)
app.add_typer(new_app, name="new")


@app.command("report")
def report_command(
    key: Annotated[str, typer.Argument(help="Experiment key from workbench.yml, e.g. checkout-layout.")],
    dimension: DimensionOption = "",
    config: ConfigOption = None,
    database: DatabaseOption = None,
    standalone: Annotated[
        bool,
        typer.Option(
            "--standalone",
            help="Embed plotly.js and the stylesheet in the page (about 5 MB) so it opens on its own, e.g. as an e-mail attachment.",
        ),
    ] = False,
    keep: KeepOption = KEEP_RUNS,
    incremental: IncrementalOption = False,
    full_refresh: FullRefreshOption = False,
) -> None:
    """Run the experiment report notebook and write reports/<key>/<timestamp>.ipynb and .html, and latest.html."""
    from workbench.reports.runs import report_keys, run_report, write_index

    try:
        report_keys([key], config, dimension=dimension)  # refuses a bad key or dimension before any kernel starts
        refresh = "full" if full_refresh else "incremental" if incremental else ""
        run = run_report(key, database_url=database, config_path=config, dimension=dimension, standalone=standalone,
                         keep=keep, parameters={"refresh": refresh} if refresh else None)  # fmt: skip
        if run.status == "ok":
            write_index()
    except WorkbenchError as exc:
        fail(exc)
    if run.status != "ok":
        with suppress(WorkbenchError):
            write_index()  # shows the failure when the disk has room; the run's error comes first
        fail(run.error)
    say(f"Executed notebook: {run.notebook}")
    say(f"HTML report:       {run.html}")
    say(f"Latest report:     {run.latest}")
    say(f"Took {run.seconds:.1f} s.")


@app.command("run-reports")
def run_reports_command(
    keys: Annotated[
        list[str] | None, typer.Argument(help="Experiment keys (default: every experiment in the config).")
    ] = None,
    all_discovered: Annotated[
        bool,
        typer.Option(
            "--all-discovered",
            help="Also report on experiments found in the data but not configured (health and units only).",
        ),
    ] = False,
    dimension: DimensionOption = "",
    config: ConfigOption = None,
    database: DatabaseOption = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", min=1, help="Reports run at once, each in its own process and kernel (up to one per core)."
        ),
    ] = 1,
    every: Annotated[
        float,
        typer.Option(
            "--every",
            min=0.01,
            help="Hours between scheduled runs (default 24: daily); the index shows an experiment as stale, in red, once its last successful run is older.",
        ),
    ] = 24.0,
    keep: KeepOption = KEEP_RUNS,
) -> None:
    """Run every experiment's report (for cron or a systemd timer); exit 1 if any failed, with one line per failure."""
    from workbench import paths
    from workbench.reports.runs import report_keys, run_reports

    try:
        chosen, config_path = report_keys(list(keys or []), config, all_discovered, database, dimension)
    except WorkbenchError as exc:
        fail(exc)
    try:
        runs = run_reports(
            chosen,
            database_url=database,
            config_path=config_path,
            dimension=dimension,
            jobs=jobs,
            every_hours=every,
            keep=keep,
        )
    except WorkbenchError as exc:  # the index could not be written (a full disk)
        fail(exc)
    for run in runs:
        say(
            f"{'ok    ' if run.status == 'ok' else 'FAILED'} {run.key}: {run.latest if run.status == 'ok' else run.error} ({run.seconds:.1f} s)"
        )
    say(f"Index: {paths.reports_dir() / 'index.html'}")
    failed = [run for run in runs if run.status != "ok"]
    if failed:
        typer.echo(f"error: {len(failed)} of {len(runs)} report(s) failed:", err=True)
        for run in failed:
            typer.echo(f"  {run.key}: {run.error}", err=True)
        raise typer.Exit(1)


def parameter_pairs(args: list[str]) -> list[tuple[str, str]]:
    """The ``(NAME, VALUE)`` pairs of ``-p NAME VALUE`` (or ``--parameter``) in ``args``; anything
    else is refused with one sentence."""
    pairs, rest = [], list(args)
    while rest:
        flag = rest.pop(0)
        if flag not in ("-p", "--parameter"):
            raise WorkbenchError(f"Unexpected argument {flag!r}: set a notebook parameter with -p NAME VALUE.")
        if len(rest) < 2:
            raise WorkbenchError(f"{flag} needs a name and a value: -p NAME VALUE.")
        pairs.append((rest.pop(0), rest.pop(0)))
    return pairs


@app.command("render", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def render_command(
    ctx: typer.Context,
    notebook: Annotated[
        Path, typer.Argument(help="The notebook to run, then -p NAME VALUE for each parameter to set (repeatable).")
    ],
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="Where the executed notebook and its page go (default: reports/rendered/)."),
    ] = None,
    config: ConfigOption = None,
    database: DatabaseOption = None,
) -> None:
    """Run NOTEBOOK with papermill in its own folder (-p NAME VALUE sets a parameter, typed as its
    parameters cell declares) and write the executed notebook and a code-free, standalone HTML page."""
    from workbench import paths
    from workbench.reports.notebooks import run_notebook, typed_parameters

    source = notebook.expanduser().absolute()
    try:
        if not source.is_file():
            raise WorkbenchError(f"There is no notebook at {notebook}: give the path of an .ipynb file.")
        parameters = typed_parameters(source, parameter_pairs(ctx.args))
        run = run_notebook(
            source,
            output_dir or paths.reports_dir() / "rendered",
            parameters,
            database_url=database,
            config_path=config,
            cwd=source.parent,
        )
    except WorkbenchError as exc:
        fail(exc)
    say(f"Executed notebook: {run.notebook}")
    say(f"HTML page:         {run.html}")


@app.command("dashboard")
def dashboard_command(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8866,
    ip: Annotated[
        str,
        typer.Option(
            "--ip",
            help=f"Address to bind (default 127.0.0.1: this machine only; any other needs a token, ${TOKEN_ENV} or --new-token).",
        ),
    ] = "127.0.0.1",
    new_token: Annotated[
        bool,
        typer.Option(
            "--new-token",
            help=f"Generate an access token and print it once, in the dashboard's address (instead of ${TOKEN_ENV}).",
        ),
    ] = False,
    max_kernels: Annotated[
        int,
        typer.Option(
            "--max-kernels",
            min=1,
            help="Viewers served at once, one kernel each; one more gets a 'busy' page (HTTP 503).",
        ),
    ] = MAX_KERNELS,
    warm_kernels: Annotated[
        int,
        typer.Option(
            "--warm-kernels",
            min=0,
            help="Kernels kept started ahead of the next viewer, outside --max-kernels (0: none; each viewer then "
            "waits for its kernel's start, several seconds, before the page arrives).",
        ),
    ] = WARM_KERNELS,
    cull_idle_minutes: Annotated[
        float,
        typer.Option(
            "--cull-idle-minutes",
            min=0.25,
            help="Shut a viewer's kernel down after this many idle minutes, even with its page open (a reload starts a new one).",
        ),
    ] = CULL_IDLE_MINUTES,
    database: DatabaseOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve the experiment dashboard (Voila, sources hidden) from the cached report results."""
    import os

    from workbench.db.settings import URL_ENV
    from workbench.experiments.config import load_config
    from workbench.paths import CONFIG_ENV
    from workbench.reports.dashboard import dashboard_token, voila_command, voila_environment

    try:
        token = dashboard_token(ip, new_token)
    except WorkbenchError as exc:
        fail(exc)
    if config:  # every kernel Voila starts reads this config (its database, timeouts, experiments)
        try:
            os.environ[CONFIG_ENV] = str(load_config(config).path.absolute())
        except WorkbenchError as exc:
            fail(exc)
    if database:
        os.environ[URL_ENV] = database
    command = voila_command(
        port, ip, cull_idle_seconds=round(cull_idle_minutes * 60), max_kernels=max_kernels, warm_kernels=warm_kernels
    )
    url = f"http://{ip}:{port}/"
    if new_token:  # the one place the token is shown
        say(f"Dashboard: {url}?token={token} (this token is not shown again; Ctrl-C to stop)")
    elif token:
        say(f"Dashboard: {url}?token=<${TOKEN_ENV}> (Ctrl-C to stop)")
    else:
        say(f"Dashboard: {url} (Ctrl-C to stop)")
    os.execvpe(command[0], command, voila_environment(token=token))


@new_app.command("experiment")
def new_experiment_command(
    key: Annotated[str, typer.Argument(help="Key of the new experiment (its experiment_id in the assignment query).")],
    config: ConfigOption = None,
) -> None:
    """Append an experiment entry from templates/workbench/experiment.yml to the config file (comments kept)."""
    from workbench.scaffold import new_experiment

    try:
        path = new_experiment(key, config)
    except WorkbenchError as exc:
        fail(exc)
    say(f"Added experiment {key!r} to {path}: fill in its variations and metrics, then run `workbench report {key}`.")


@new_app.command("analysis")
def new_analysis_command(
    name: Annotated[str, typer.Argument(help="Notebook name (letters, digits and _), e.g. pricing_deep_dive.")],
) -> None:
    """Create notebooks/<name>.ipynb from templates/notebooks/analysis.ipynb."""
    from workbench.scaffold import new_analysis

    try:
        path = new_analysis(name)
    except WorkbenchError as exc:
        fail(exc)
    say(f"Created {path}: open it with `make lab`.")
