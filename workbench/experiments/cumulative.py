"""The effect over time: each goal metric's result as it stood at the end of each day.

The experiment engine answers "as of ``end``" (units exposed by ``end``, metric rows up to
``end``), so the cumulative series is the engine run with successive end dates — one small
aggregate query per point, goal metrics only — each analysed by the statistics engine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from workbench.experiments.config import Metric
    from workbench.experiments.engine import Experiment
    from workbench.stats import AnalysisSettings

DEFAULT_POINTS = 14
CUMULATIVE_COLUMNS = [
    "day",
    "metric",
    "variation",
    "units",
    "baseline_units",
    "mean",
    "baseline_mean",
    "relative_effect",
    "absolute_effect",
    "ci_lower",
    "ci_upper",
    "p_value",
    "chance_to_win",
    "significance",
]


def end_days(first_day: dt.date, last_day: dt.date, points: int = DEFAULT_POINTS) -> list[dt.date]:
    """At most ``points`` days from ``first_day`` to ``last_day`` (both included, evenly spaced)."""
    if points < 1:
        raise ValueError(f"points must be at least 1, got {points!r}.")
    span = (last_day - first_day).days
    if span < 0:
        return []
    if span + 1 <= points:
        return [first_day + dt.timedelta(days=i) for i in range(span + 1)]
    step = span / (points - 1) if points > 1 else span
    days = sorted({first_day + dt.timedelta(days=round(i * step)) for i in range(points)} | {last_day})
    return days


def cumulative_effects(
    experiment: Experiment,
    db,
    settings: AnalysisSettings,
    days: list[dt.date],
    metrics: tuple[Metric, ...] | None = None,
) -> pd.DataFrame:
    """Overall results of ``metrics`` (default: the goal metrics) with data up to the end of each
    of ``days`` (UTC): one row per day × metric × variation, columns ``CUMULATIVE_COLUMNS``."""
    import pandas as pd

    from workbench.experiments.analysis import post_stratification
    from workbench.experiments.engine import sufficient_stats
    from workbench.progress import progress
    from workbench.stats import experiment_results

    metrics = tuple(metrics if metrics is not None else experiment.settings.goal_metrics)
    if not metrics or not days:
        return pd.DataFrame(columns=CUMULATIVE_COLUMNS)
    strata = post_stratification(experiment, settings)  # the same strata rows as the overall results
    frames = []
    for day in progress(days, desc=f"Cumulative {experiment.key}", unit="day"):
        end = dt.datetime.combine(day, dt.time()) + dt.timedelta(days=1, microseconds=-1)
        if experiment.settings.end is not None:
            end = min(end, experiment.settings.end)
        # each day is its own definition (its own end): read from the source tables, never from the
        # experiment's incremental state (a state per day would be rebuilt at every report)
        as_of_settings = dataclasses.replace(experiment.settings, end=end, incremental=False)
        as_of = dataclasses.replace(experiment, settings=as_of_settings)
        stats = sufficient_stats(as_of, None, db, metrics=metrics, strata=strata)
        table = experiment_results(stats, settings, experiment=experiment.key).to_pandas()
        table = table[(table["dimension"] == "overall") & (table["variation"] != settings.control)]
        frames.append(table.assign(day=pd.Timestamp(day)))
    frame = pd.concat(frames, ignore_index=True)
    return frame[CUMULATIVE_COLUMNS].reset_index(drop=True)
