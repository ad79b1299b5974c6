"""The ``analyze`` command: an experiment's health and results from the database, as a table or JSON."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from workbench.cli.app import ConfigOption, DatabaseOption, FullRefreshOption, IncrementalOption, app, fail, say
from workbench.errors import WorkbenchError


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


@app.command("analyze")
def analyze_command(
    key: Annotated[str, typer.Argument(help="Experiment key from workbench.yml, e.g. checkout-layout.")],
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="table (terminal) or json (every field, machine-readable).")
    ] = OutputFormat.table,
    dimension: Annotated[
        list[str] | None,
        typer.Option(
            "--dimension",
            help="Break results down by this dimension (repeatable; default: the experiment's configured dimensions).",
        ),
    ] = None,
    overall_only: Annotated[bool, typer.Option("--overall-only", help="Skip the dimension breakdowns.")] = False,
    engine: Annotated[
        str | None, typer.Option(help="frequentist or bayesian (default from the config entry, else frequentist).")
    ] = None,
    alpha: Annotated[float | None, typer.Option(help="Significance level (default 0.05).")] = None,
    difference_type: Annotated[str | None, typer.Option("--difference-type", help="relative or absolute.")] = None,
    sequential: Annotated[
        bool | None,
        typer.Option("--sequential/--fixed-horizon", help="Always-valid (sequential) intervals and p-values."),
    ] = None,
    cuped: Annotated[
        bool | None,
        typer.Option("--cuped/--no-cuped", help="Regression adjustment where covariate sums exist (default on)."),
    ] = None,
    correction: Annotated[str | None, typer.Option(help="Multiple-testing correction: none, holm or bh.")] = None,
    incremental: IncrementalOption = False,
    full_refresh: FullRefreshOption = False,
    database: DatabaseOption = None,
    config: ConfigOption = None,
) -> None:
    """Show an experiment's health (sample ratio, multiple exposures) and then its effects."""
    import json

    from workbench.db.connection import connect
    from workbench.experiments.analysis import analyze
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment

    try:
        cfg = load_config(config)
        exp = experiment(key, cfg)
        db = connect(database, config_path=cfg.path)
        dimensions = () if overall_only else dimension or None
        results = analyze(exp, db, dimensions=dimensions, engine=engine, alpha=alpha, difference_type=difference_type,
                          sequential=sequential, cuped=cuped, correction=correction,
                          incremental=True if incremental else None, full_refresh=full_refresh)  # fmt: skip
        db.dispose()
    except WorkbenchError as exc:
        fail(exc)
    if output_format is OutputFormat.json:
        say(json.dumps(results.to_dict(), indent=2))
    else:
        say(str(results))
