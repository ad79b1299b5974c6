"""Baselines for planning an experiment, read from the database: a metric's per-unit mean and
variance over a date window (a binomial metric's rate), the inputs of :mod:`workbench.stats.power`.

The population is every unit the assignment query logged in the window (any experiment), each from
its first appearance; a unit's value is its per-unit value (:mod:`workbench.metric_types`) over the
metric's rows from then to the window's end. The one query is built here; values are bound,
identifiers and SQL come from the validated config.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from workbench import metric_types
from workbench.errors import ConfigError
from workbench.experiments.config import Config, load_config


@dataclass(frozen=True)
class Baseline:
    """A metric's per-unit ``mean`` (a rate for binomial metrics), ``variance`` (n-1) and ``sd``
    over ``units`` units first seen between ``start`` and ``end``; ``sql`` is the query that ran."""

    metric: str
    metric_type: str
    units: int
    mean: float
    variance: float
    start: dt.datetime
    end: dt.datetime
    sql: str = ""

    @property
    def sd(self) -> float:
        return math.sqrt(self.variance) if self.variance >= 0 else math.nan

    @property
    def units_per_day(self) -> float:
        """New units per day in the window (the traffic a planned experiment can expect)."""
        days = max((self.end - self.start).total_seconds() / 86400, 1e-9)
        return self.units / days


def baseline_query(config: Config, metric_name: str, assignment_query: str | None = None) -> str:
    """The SQL of :func:`metric_baseline` (parameters ``:start`` and ``:end``)."""
    metric = config.metric(metric_name)
    if not metric.kind.per_unit:
        usable = ", ".join(kind.name for kind in metric_types.REGISTRY.values() if kind.per_unit)
        raise ConfigError(
            f"{config.path}: metric {metric_name!r} is a {metric.type} metric; a baseline needs one of {usable}."
        )
    aq = config.assignment_query(assignment_query or next(iter(config.assignment_queries)))
    unit = aq.identifier_type
    if unit not in metric.identifier_types:
        raise ConfigError(
            f"{config.path}: metric {metric_name!r} has no {unit} column (it has {list(metric.identifier_types)}); pick an assignment query keyed by one of those."
        )
    aggregate = (
        f"{metric.kind.value_aggregate}(CAST(s.value AS DOUBLE PRECISION))" if metric.kind.value_aggregate else "NULL"
    )
    value = metric.kind.unit_value_sql("COUNT(s.timestamp)", aggregate)
    condition = f" AND ({metric.filter})" if metric.filter else ""
    return (
        f"WITH population AS (\n  SELECT e.{unit} AS wb_unit, MIN(e.timestamp) AS wb_first_seen\n  FROM ({aq.sql}) e\n"
        f"  WHERE e.{unit} IS NOT NULL AND e.timestamp >= :start AND e.timestamp <= :end\n  GROUP BY e.{unit}\n),\n"
        f"per_unit AS (\n  SELECT u.wb_unit, {value} AS wb_value\n  FROM population u\n"
        f"  LEFT JOIN ({metric.sql}) s ON s.{unit} = u.wb_unit AND s.timestamp >= u.wb_first_seen AND s.timestamp <= :end{condition}\n"
        "  GROUP BY u.wb_unit\n)\n"
        "SELECT COUNT(*) AS units, SUM(wb_value) AS total, SUM(wb_value * wb_value) AS total_squares FROM per_unit"
    )


def metric_baseline(
    metric: str,
    db,
    start: str | dt.date,
    end: str | dt.date,
    *,
    config: Config | None = None,
    assignment_query: str | None = None,
) -> Baseline:
    """The baseline of ``metric`` over the days ``start`` to ``end`` (inclusive, UTC) on ``db``."""
    config = config or load_config()
    first = dt.datetime.combine(dt.date.fromisoformat(str(start)), dt.time())
    last = dt.datetime.combine(dt.date.fromisoformat(str(end)), dt.time()) + dt.timedelta(days=1, microseconds=-1)
    if last < first:
        raise ValueError(f"end {end} is before start {start}; give the window's first day first.")
    sql = baseline_query(config, metric, assignment_query)
    row = db.sql(sql, limit=None, start=first, end=last).iloc[0]
    n = int(row["units"] or 0)
    total, squares = float(row["total"] or 0), float(row["total_squares"] or 0)
    mean = total / n if n else math.nan
    variance = (squares - total * total / n) / (n - 1) if n > 1 else math.nan
    return Baseline(metric, config.metric(metric).type, n, mean, variance, first, last, sql)
