"""The ``power`` command: units and days a planned experiment needs, from a metric's baseline in the
database, planned as it will be analysed (CUPED, sequential testing, ratio metrics)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from workbench.cli.app import ConfigOption, DatabaseOption, app, fail, say
from workbench.errors import WorkbenchError


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


@app.command("power")
def power_command(
    metric: Annotated[
        str, typer.Argument(help="Metric from workbench.yml (binomial, count, mean, duration or ratio).")
    ],
    start: Annotated[str, typer.Option(help="First day of the baseline window, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option(help="Last day of the baseline window, YYYY-MM-DD (UTC, inclusive).")],
    mde: Annotated[
        float, typer.Option("--mde", help="Smallest relative effect worth detecting (0.05 for +5%).")
    ] = 0.05,
    arms: Annotated[int, typer.Option(help="Variations including the control, equal split.")] = 2,
    alpha: Annotated[float, typer.Option(help="Significance level (split over the comparisons, Bonferroni).")] = 0.05,
    power: Annotated[float, typer.Option("--power", help="Chance of detecting an effect of exactly --mde.")] = 0.8,
    bonferroni: Annotated[
        bool, typer.Option("--bonferroni/--no-bonferroni", help="Test each treatment at alpha/(arms-1).")
    ] = True,
    cuped: Annotated[
        bool,
        typer.Option("--cuped/--no-cuped", help="Plan with CUPED's variance reduction 1-ρ² (default on)."),
    ] = True,
    pre_period_days: Annotated[
        float | None,
        typer.Option(
            "--pre-period-days",
            help="CUPED pre-period whose correlation ρ with the analysis period is measured (default: the metric's lookback).",
        ),
    ] = None,
    cuped_correlation: Annotated[
        float | None,
        typer.Option("--cuped-correlation", help="Use this ρ instead of measuring it (needed for ratio metrics)."),
    ] = None,
    sequential: Annotated[
        bool,
        typer.Option("--sequential/--fixed-horizon", help="Plan for always-valid (sequential) intervals."),
    ] = False,
    sequential_tuning: Annotated[
        float, typer.Option("--sequential-tuning", help="Sequential tuning parameter N* (units where it is tightest).")
    ] = 5000.0,
    traffic_share: Annotated[
        float, typer.Option("--traffic-share", help="Share of the window's new units the experiment will include.")
    ] = 1.0,
    assignment_query: Annotated[
        str | None, typer.Option("--assignment-query", help="Whose units make the population (default: the first).")
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="table (terminal) or json (every field, machine-readable).")
    ] = OutputFormat.table,
    database: DatabaseOption = None,
    config: ConfigOption = None,
) -> None:
    """Plan an experiment: units per variation and days needed to detect --mde, from the metric's baseline."""
    import json

    from workbench.db.connection import connect
    from workbench.experiments.baselines import metric_baseline
    from workbench.experiments.config import load_config
    from workbench.stats.power import plan_sample_size

    if not 0 < traffic_share <= 1:
        fail(f"--traffic-share must be in (0, 1], got {traffic_share!r}.")
    try:
        cfg = load_config(config)
        pre = pre_period_days if cuped and cuped_correlation is None else 0.0
        db = connect(database, config_path=cfg.path)
        try:
            baseline = metric_baseline(metric, db, start, end, config=cfg, assignment_query=assignment_query,
                                       pre_period_days=pre)  # fmt: skip
        finally:
            db.dispose()
        if baseline.units < 2:
            fail(f"only {baseline.units} unit(s) first seen from {start} to {end}; widen the window.")
        rho = (
            (cuped_correlation if cuped_correlation is not None else baseline.cuped_correlation or 0.0)
            if cuped
            else 0.0
        )
        plan = plan_sample_size(
            baseline.mean, baseline.variance, mde, binomial=baseline.binomial, arms=arms, alpha=alpha, power=power,
            bonferroni=bonferroni, cuped_correlation=rho, sequential=sequential, sequential_tuning=sequential_tuning,
        )  # fmt: skip
    except (WorkbenchError, ValueError) as exc:
        fail(exc)
    daily = baseline.units_per_day * traffic_share
    days = plan.total_units / daily if daily > 0 else float("inf")
    if output_format is OutputFormat.json:
        say(json.dumps({
            "metric": metric, "metric_type": baseline.metric_type, "start": start, "end": end,
            "baseline_units": baseline.units, "baseline_mean": baseline.mean, "baseline_variance": baseline.variance,
            "units_per_day": baseline.units_per_day, "pre_period_days": baseline.pre_period_days,
            "cuped_correlation": rho, "variance_reduction": plan.variance_reduction, "unit_variance": plan.unit_variance,
            "relative_mde": mde, "arms": arms, "alpha_per_comparison": plan.alpha, "power": power,
            "sequential": sequential, "sequential_tuning": sequential_tuning if sequential else None,
            "units_per_arm": plan.units_per_arm, "total_units": plan.total_units,
            "fixed_horizon_units_per_arm": plan.fixed_horizon_units_per_arm, "days": days,
        }, indent=2))  # fmt: skip
        return
    say(
        f"{metric} ({baseline.metric_type}) from {start} to {end}: {baseline.units:,} units, mean {baseline.mean:.4g}, "
        f"sd {baseline.sd:.4g}, {baseline.units_per_day:,.0f} new units per day"
    )
    if cuped and rho:
        source = "given" if cuped_correlation is not None else f"{baseline.pre_period_days:g}-day pre-period"
        say(f"CUPED: correlation {rho:.3f} ({source}) removes {plan.variance_reduction:.1%} of the variance")
    elif cuped and baseline.metric_type == "ratio":
        say("CUPED: not planned for this ratio metric; give --cuped-correlation to include it")
    test = f"sequential (N* = {sequential_tuning:g})" if sequential else "fixed-horizon"
    say(
        f"To detect {mde:+.1%} with {power:.0%} power ({test}, alpha {plan.alpha:.4g} per comparison): "
        f"{plan.units_per_arm:,} units per variation ({plan.total_units:,} in all), about {days:.1f} days "
        f"at {daily:,.0f} new units per day"
    )
    if sequential:
        say(f"A fixed-horizon test would need {plan.fixed_horizon_units_per_arm:,} units per variation")
