"""Baselines for planning an experiment, read from the database: a metric's per-unit mean and
variance over a date window (a binomial metric's rate), the inputs of :mod:`workbench.stats.power`.

The population is every unit the assignment query logged in the window (any experiment), each from
its first appearance; a unit's value is its per-unit value (:mod:`workbench.metric_types`) over the
metric's rows from then to the window's end, within the metric's conversion window, filter and
capping, as the experiment engine computes it. Two more things make the plan match the analysis:

* CUPED: with a pre-period of ``pre_period_days`` (default: the metric's own CUPED lookback), each
  unit's value over ``[first seen - pre-period, first seen)`` too, so that the correlation ρ between
  the pre-period and the analysis period gives CUPED's variance reduction ``1 - ρ²``;
* ratio metrics: the numerator's and denominator's per-unit values, their moments and covariance,
  so the ratio's per-unit variance is the delta method's.

The one query is built here; values are bound, identifiers and SQL come from the validated config,
numbers from the config (windows, caps, the pre-period) are inlined as exact literals.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from workbench import metric_types
from workbench.errors import ConfigError
from workbench.experiments.config import Config, Metric, load_config
from workbench.metric_types import RATIO


@dataclass(frozen=True)
class Baseline:
    """A metric's per-unit ``mean`` (a rate for binomial metrics, ``Σm/Σd`` for ratio metrics),
    ``variance`` (n-1; the delta method's for ratios) and ``sd`` over ``units`` units first seen
    between ``start`` and ``end``; ``sql`` is the query that ran.

    With a pre-period (``pre_period_days``): the ``covariate_mean`` and ``covariate_variance`` of
    the metric over it and its ``covariance`` with the metric, giving :attr:`cuped_correlation`.
    For ratio metrics: the ``numerator_*`` and ``denominator_*`` moments and their covariance."""

    metric: str
    metric_type: str
    units: int
    mean: float
    variance: float
    start: dt.datetime
    end: dt.datetime
    sql: str = ""
    pre_period_days: float | None = None
    covariate_mean: float | None = None
    covariate_variance: float | None = None
    covariance: float | None = None
    numerator_mean: float | None = None
    numerator_variance: float | None = None
    denominator_mean: float | None = None
    denominator_variance: float | None = None
    numerator_denominator_covariance: float | None = None

    @property
    def sd(self) -> float:
        return math.sqrt(self.variance) if self.variance >= 0 else math.nan

    @property
    def binomial(self) -> bool:
        """True for a rate (a proportion), planned with Bernoulli variances."""
        return metric_types.get(self.metric_type).statistic == "proportion"

    @property
    def units_per_day(self) -> float:
        """New units per day in the window (the traffic a planned experiment can expect)."""
        days = max((self.end - self.start).total_seconds() / 86400, 1e-9)
        return self.units / days

    @property
    def cuped_correlation(self) -> float | None:
        """Correlation ρ of a unit's value in the pre-period and in the analysis period (None
        without a pre-period, 0 when either has no variance): CUPED keeps ``1 - ρ²`` of the variance."""
        if self.covariance is None or self.covariate_variance is None:
            return None
        if not (self.variance > 0 and self.covariate_variance > 0):
            return 0.0
        return max(-1.0, min(1.0, self.covariance / math.sqrt(self.variance * self.covariate_variance)))


def _double(x: float) -> str:
    return f"CAST({float(x)!r} AS DOUBLE PRECISION)"


def _shifted(hours: float) -> str:
    """``u.wb_first_seen`` moved by ``hours`` (the experiment engine's interval arithmetic)."""
    seconds = round(hours * 3600)
    if not seconds:
        return "u.wb_first_seen"
    return f"u.wb_first_seen {'+' if seconds > 0 else '-'} INTERVAL '{abs(seconds)}' SECOND"


def _part_ctes(k: int, part: Metric, unit: str, pre_days: float | None) -> tuple[list[str], str, str | None]:
    """CTEs of one per-unit metric (``part_k`` and its percentile cap), and the SQL of its capped
    value and of its capped pre-period value (None without a pre-period), over ``part_k p{k}``."""
    kind = part.kind
    post = [f"s.timestamp >= {_shifted(part.window.delay_hours)}"]
    if part.window.hours is not None:
        post.append(f"s.timestamp <= {_shifted(part.window.delay_hours + part.window.hours)}")
    counted = " AND ".join(post)
    columns = [f"SUM(CASE WHEN {counted} THEN 1 ELSE 0 END) AS wb_rows"]
    if kind.value_aggregate:
        columns.append(
            f"{kind.value_aggregate}(CASE WHEN {counted} THEN CAST(s.value AS DOUBLE PRECISION) END) AS wb_agg"
        )
    lowest = min(part.window.delay_hours, -24 * pre_days if pre_days else 0.0)
    if pre_days:
        pre = f"s.timestamp >= {_shifted(-24 * pre_days)} AND s.timestamp < u.wb_first_seen"
        columns.append(f"SUM(CASE WHEN {pre} THEN 1 ELSE 0 END) AS wb_pre_rows")
        if kind.value_aggregate:
            columns.append(
                f"{kind.value_aggregate}(CASE WHEN {pre} THEN CAST(s.value AS DOUBLE PRECISION) END) AS wb_pre_agg"
            )
    condition = f" AND ({part.filter})" if part.filter else ""
    value = kind.unit_value_sql("COALESCE(wb_rows, 0)", "wb_agg" if kind.value_aggregate else "NULL")
    pre_value = (
        kind.unit_value_sql("COALESCE(wb_pre_rows, 0)", "wb_pre_agg" if kind.value_aggregate else "NULL")
        if pre_days
        else None
    )
    ctes = [
        f"part_{k}_rows AS (\n  SELECT u.wb_unit,\n    " + ",\n    ".join(columns) + "\n  FROM population u\n"
        f"  LEFT JOIN ({part.sql}) s ON s.{unit} = u.wb_unit AND s.timestamp >= {_shifted(lowest)} AND s.timestamp <= :end{condition}\n"
        "  GROUP BY u.wb_unit\n)",
        f"part_{k} AS (\n  SELECT wb_unit, CAST({value} AS DOUBLE PRECISION) AS wb_value"
        + (f", CAST({pre_value} AS DOUBLE PRECISION) AS wb_pre" if pre_value else "")
        + f"\n  FROM part_{k}_rows\n)",
    ]
    cap = part.capping
    if cap is None:
        return ctes, f"p{k}.wb_value", f"p{k}.wb_pre" if pre_days else None
    if cap.type == "percentile":
        nonzero = " WHERE wb_value <> 0" if cap.ignore_zeros else ""
        ctes.append(
            f"cap_{k} AS (\n  SELECT MIN(CASE WHEN wb_rank = CEIL(wb_n * {_double(cap.value)}) THEN wb_value END) AS wb_cap\n"
            f"  FROM (SELECT wb_value, ROW_NUMBER() OVER (ORDER BY wb_value) AS wb_rank, COUNT(*) OVER () AS wb_n FROM part_{k}{nonzero}) r\n)"
        )
        limit = f"(SELECT wb_cap FROM cap_{k})"
    else:
        limit = _double(cap.value)
    return ctes, f"LEAST(p{k}.wb_value, {limit})", f"LEAST(p{k}.wb_pre, {limit})" if pre_days else None


def baseline_query(
    config: Config, metric_name: str, assignment_query: str | None = None, pre_period_days: float | None = None
) -> str:
    """The SQL of :func:`metric_baseline` (parameters ``:start`` and ``:end``): one row with
    ``units``, ``total`` and ``total_squares`` of the per-unit values; with ``pre_period_days``
    also ``covariate_total``, ``covariate_total_squares`` and ``main_covariate_total`` (their
    products with the pre-period values); for a ratio metric also ``denominator_total``,
    ``denominator_total_squares`` and ``main_denominator_total`` (``total`` is the numerator's)."""
    metric = config.metric(metric_name)
    ratio = metric.kind.shape == RATIO
    if not metric.kind.per_unit and not ratio:
        usable = ", ".join(kind.name for kind in metric_types.REGISTRY.values() if kind.per_unit or kind.shape == RATIO)
        raise ConfigError(
            f"{config.path}: metric {metric_name!r} is a {metric.type} metric; a baseline needs one of {usable}."
        )
    if ratio and pre_period_days:
        raise ConfigError(
            f"{config.path}: metric {metric_name!r} is a ratio; a pre-period correlation is planned for per-unit metrics only, give the CUPED correlation instead."
        )
    if pre_period_days is not None and not (math.isfinite(pre_period_days) and pre_period_days >= 0):
        raise ValueError(f"pre_period_days must be a non-negative number of days, got {pre_period_days!r}.")
    aq = config.assignment_query(assignment_query or next(iter(config.assignment_queries)))
    unit = aq.identifier_type
    for part in metric.parts:
        if unit not in part.identifier_types:
            raise ConfigError(
                f"{config.path}: metric {part.name!r} has no {unit} column (it has {list(part.identifier_types)}); pick an assignment query keyed by one of those."
            )
    ctes = [
        f"population AS (\n  SELECT e.{unit} AS wb_unit, MIN(e.timestamp) AS wb_first_seen\n  FROM ({aq.sql}) e\n"
        f"  WHERE e.{unit} IS NOT NULL AND e.timestamp >= :start AND e.timestamp <= :end\n  GROUP BY e.{unit}\n)"
    ]
    values = []
    for k, part in enumerate(metric.parts):
        part_ctes, value, pre = _part_ctes(k, part, unit, None if ratio else pre_period_days)
        ctes += part_ctes
        values.append(f"{value} AS wb_value_{k}")
        if pre:
            values.append(f"{pre} AS wb_pre")
    joins = "".join(f"\n  JOIN part_{k} p{k} ON p{k}.wb_unit = p0.wb_unit" for k in range(1, len(metric.parts)))
    ctes.append("per_unit AS (\n  SELECT " + ",\n    ".join(values) + f"\n  FROM part_0 p0{joins}\n)")
    sums = [
        "COUNT(*) AS units",
        "SUM(wb_value_0) AS total",
        "SUM(wb_value_0 * wb_value_0) AS total_squares",
    ]
    if ratio:
        sums += [
            "SUM(wb_value_1) AS denominator_total",
            "SUM(wb_value_1 * wb_value_1) AS denominator_total_squares",
            "SUM(wb_value_0 * wb_value_1) AS main_denominator_total",
        ]
    elif pre_period_days:
        sums += [
            "SUM(wb_pre) AS covariate_total",
            "SUM(wb_pre * wb_pre) AS covariate_total_squares",
            "SUM(wb_value_0 * wb_pre) AS main_covariate_total",
        ]
    return "WITH " + ",\n".join(ctes) + "\nSELECT " + ", ".join(sums) + " FROM per_unit"


def _moments(n: int, total: float, squares: float) -> tuple[float, float]:
    mean = total / n if n else math.nan
    variance = (squares - total * total / n) / (n - 1) if n > 1 else math.nan
    return mean, variance


def metric_baseline(
    metric: str,
    db,
    start: str | dt.date,
    end: str | dt.date,
    *,
    config: Config | None = None,
    assignment_query: str | None = None,
    pre_period_days: float | None = None,
) -> Baseline:
    """The baseline of ``metric`` over the days ``start`` to ``end`` (inclusive, UTC) on ``db``.

    ``pre_period_days`` (per-unit metrics): the CUPED pre-period whose correlation with the analysis
    period is measured; None takes the metric's own CUPED lookback (none without one), 0 turns it off."""
    from workbench.stats.moments import cell, covariance
    from workbench.stats.power import ratio_unit_variance

    config = config or load_config()
    first = dt.datetime.combine(dt.date.fromisoformat(str(start)), dt.time())
    last = dt.datetime.combine(dt.date.fromisoformat(str(end)), dt.time()) + dt.timedelta(days=1, microseconds=-1)
    if last < first:
        raise ValueError(f"end {end} is before start {start}; give the window's first day first.")
    definition = config.metric(metric)
    ratio = definition.kind.shape == RATIO
    if pre_period_days is None and not ratio:
        pre_period_days = definition.cuped_lookback_days
    sql = baseline_query(config, metric, assignment_query, pre_period_days)
    row = db.sql(sql, limit=None, start=first, end=last).iloc[0]

    def number(column: str) -> float:
        return cell(row, column)

    def unit_covariance(x: str, y: str, xy: str) -> float:
        return covariance(n, number(x), number(y), number(xy)) if n > 1 else math.nan

    n = int(number("units"))
    mean, variance = _moments(n, number("total"), number("total_squares"))
    extra: dict[str, float | None] = {}
    if ratio:
        d_mean, d_variance = _moments(n, number("denominator_total"), number("denominator_total_squares"))
        cov = unit_covariance("total", "denominator_total", "main_denominator_total")
        extra = {"numerator_mean": mean, "numerator_variance": variance, "denominator_mean": d_mean,
                 "denominator_variance": d_variance, "numerator_denominator_covariance": cov}  # fmt: skip
        if n > 1 and d_mean != 0:
            variance = ratio_unit_variance(mean, extra["numerator_variance"], d_mean, d_variance, cov)  # type: ignore[arg-type]
            mean = mean / d_mean
        else:
            mean = variance = math.nan
    elif pre_period_days:
        x_mean, x_variance = _moments(n, number("covariate_total"), number("covariate_total_squares"))
        extra = {"pre_period_days": float(pre_period_days), "covariate_mean": x_mean, "covariate_variance": x_variance,
                 "covariance": unit_covariance("total", "covariate_total", "main_covariate_total")}  # fmt: skip
    return Baseline(metric, definition.type, n, mean, variance, first, last, sql, **extra)  # type: ignore[arg-type]
