"""Commands of the experiment engine: ``experiments`` (discovery) and ``stats`` (sufficient statistics)."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench.cli.app import ConfigOption, DatabaseOption, app, fail, say
from workbench.errors import WorkbenchError


@app.command("experiments")
def experiments_command(
    database: DatabaseOption = None,
    config: ConfigOption = None,
    write_stubs: Annotated[
        bool,
        typer.Option("--write-stubs", help="Append a config entry for each experiment not yet in the config file."),
    ] = False,
) -> None:
    """List the experiments found in the assignment queries: variations, units, first and last exposure."""
    from workbench.db.connection import connect
    from workbench.experiments.config import load_config
    from workbench.experiments.discovery import discover_experiments

    try:
        cfg = load_config(config)
        db = connect(database, config_path=cfg.path)
        found = discover_experiments(db, cfg)
        written = []
        if write_stubs:
            from workbench.experiments.discovery import write_experiment_stubs

            written = write_experiment_stubs(cfg, found)
    except WorkbenchError as exc:
        fail(exc)
    say(
        f"{'assignment query':<18} {'experiment':<24} {'variation':>9} {'units':>9}  {'first exposure':<19}  {'last exposure':<19}  configured"
    )
    for row in found.itertuples():
        say(
            f"{row.assignment_query:<18} {row.experiment_id:<24} {row.variation_id:>9} {row.units:>9,}  {row.first_exposure!s:<19}  {row.last_exposure!s:<19}  {'yes' if row.configured else 'no'}"
        )
    if write_stubs:
        say(
            f"Wrote stubs for {', '.join(written)} to {cfg.path}: add their metrics."
            if written
            else "Every experiment found is already configured."
        )


@app.command("stats")
def stats_command(
    key: Annotated[str, typer.Argument(help="Experiment key as configured in workbench.yml (e.g. checkout-layout).")],
    dimension: Annotated[
        str | None,
        typer.Option("--dimension", help="Break down by this dimension of the assignment query (e.g. browser)."),
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Dimension values shown; the rest are grouped as (other).")] = 20,
    show_sql: Annotated[bool, typer.Option("--show-sql", help="Print the SQL that runs and its parameters.")] = False,
    database: DatabaseOption = None,
    config: ConfigOption = None,
) -> None:
    """Print the experiment's sufficient statistics per metric, dimension value and variation, and its health facts."""
    import pandas as pd

    from workbench.db.connection import connect
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment, experiment_facts

    try:
        cfg = load_config(config)
        exp = experiment(key, cfg)
        db = connect(database, config_path=cfg.path)
        facts = experiment_facts(
            exp, db, dimensions=(dimension,) if dimension is not None else (), top_n=top, show_sql=show_sql
        )
    except WorkbenchError as exc:
        fail(exc)
    units, stats = facts.units, facts.stats
    overall = units[units["dimension"] == "overall"]
    say(
        f"Experiment {key}: " + ", ".join(f"{r.variation} {r.users:,} units ({r.status})" for r in overall.itertuples())
    )
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_rows", 10_000):
        for (metric, metric_type), rows in stats.groupby(["metric", "metric_type"], sort=False):
            shown = rows.drop(columns=["metric", "metric_type"]).dropna(axis=1, how="all")
            say(f"\n{metric} ({metric_type})")
            say(shown.to_string(index=False))
