"""Compile an experiment of the validated config into SQL: the one SQL-building module of the
experiment engine.

One query per experiment builds the units once (distinct identifiers exposed between start and
end, ``__multiple__`` when several variations, first exposure, dimension value at first
exposure), reads each metric source once (metrics with the same ``sql`` share one scan, told apart
by their ``filter``), and returns sufficient statistics per variation × dimension value.

Values (experiment key, dates, variations, top N) are bound parameters (``:name``); identifiers
come only from the validated config (plain names); numbers from the config (window hours, caps,
quantile levels) are inlined as float literals. The text is written in the dialect DuckDB and
PostgreSQL both run; :func:`workbench.db.dialects.transpile` turns it into Spark SQL, BigQuery,
Snowflake or Trino.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ConfigError, shown
from workbench.experiments.config import AssignmentQuery, Config, ExperimentConfig, Metric
from workbench.metric_types import RATIO

OVERALL = "__overall__"
MULTIPLE = "__multiple__"
OTHER = "(other)"
NULL_VALUE = "(null)"
DEFAULT_TOP_N = 20
# Post-stratification: the stratum of a unit is its values of the listed dimensions (each as in
# dimension rows: at first exposure, top N values, NULL as NULL_VALUE) joined with STRATA_SEPARATOR.
STRATA = "__strata__"
STRATA_SEPARATOR = " | "


@dataclass(frozen=True)
class CompiledQuery:
    """SQL text with its bound parameters; ``columns[metric][stat]`` names the result column."""

    sql: str
    params: dict[str, Any]
    columns: dict[str, dict[str, str]] = field(default_factory=dict)


def _double(x: float) -> str:
    """A float from the validated config as an exact double literal."""
    return f"CAST({float(x)!r} AS DOUBLE PRECISION)"


class _Plan:
    """What one experiment needs: units, base metrics (per source), ratios and quantiles."""

    def __init__(self, config: Config, experiment: ExperimentConfig, metrics: tuple[Metric, ...] | None) -> None:
        self.config, self.experiment = config, experiment
        self.assignment = experiment.assignment_query
        self.unit_type = self.assignment.identifier_type
        self.outputs = list(metrics if metrics is not None else experiment.metrics)
        base: dict[str, Metric] = {}
        for metric in self.outputs:
            for part in metric.parts:
                if part.kind.unit_values:
                    base.setdefault(part.name, part)
        # A CUPED ratio's pre-exposure values: each part over the ratio's lookback, from the part
        # itself when its own CUPED lookback is the same, else from a copy of the part (a base
        # metric named "<part>@pre<days>", left out of the per-unit output) with that lookback.
        self.pre_parts: dict[tuple[str, str], str] = {}  # (ratio, "numerator" | "denominator") -> base metric
        self.hidden: set[str] = set()  # those copies
        for metric in self.outputs:
            if metric.kind.shape != RATIO or not metric.cuped_lookback_days:
                continue
            for role, part in zip(("numerator", "denominator"), metric.parts, strict=True):
                if part.cuped_lookback_days != metric.cuped_lookback_days:
                    part = dataclasses.replace(
                        part,
                        name=f"{part.name}@pre{metric.cuped_lookback_days:g}",
                        cuped_lookback_days=metric.cuped_lookback_days,
                    )
                    base.setdefault(part.name, part)
                    self.hidden.add(part.name)
                self.pre_parts[(metric.name, role)] = part.name
        self.base = list(base.values())
        self.index = {m.name: i for i, m in enumerate(self.base)}
        self.quantiles = [m for m in self.outputs if m.kind.quantile_level]
        self.params: dict[str, Any] = {"experiment_key": experiment.key}
        self.identity: dict[tuple[int, str], str] = {}  # (join index, other type) -> CTE name
        self.identity_written: set[str] = set()  # identity-map CTEs already in the query
        self.shift_columns: dict[int, str] = {}  # seconds after first exposure -> column of eligible
        self.top_n = DEFAULT_TOP_N
        self.strata: tuple[str, ...] = ()  # dimensions whose values at first exposure make wb_dim the stratum

    def parts_of(self, metric: Metric) -> list[Metric]:
        """The base metrics whose per-unit values ``metric``'s sums read: its parts and the copies
        holding a CUPED ratio's pre-exposure values."""
        names = [part.name for part in metric.parts] + [
            name for (ratio, _), name in self.pre_parts.items() if ratio == metric.name
        ]
        return [self.base[self.index[name]] for name in dict.fromkeys(names) if name in self.index]

    def key_for(self, metric: Metric) -> tuple[str, str | None]:
        """(identifier column of the metric SQL, identity-map CTE or None for a direct join)."""
        if self.unit_type in metric.identifier_types:
            return self.unit_type, None
        for other in metric.identifier_types:
            for j, join in enumerate(self.config.identity_joins):
                if {self.unit_type, other} <= set(join.identifier_types):
                    return other, self.identity.setdefault((j, other), f"identity_{len(self.identity)}")
        raise ConfigError(
            f"{self.config.path}: metric {metric.name!r} is keyed by {list(metric.identifier_types)} but experiment "
            f"{self.experiment.key!r} counts {self.unit_type} units and no identity join links them; add an identity join."
        )

    def sources(self) -> list[tuple[str, str, str | None, list[Metric]]]:
        """Base metrics grouped by (sql, key column, identity map): one scan each."""
        groups: dict[tuple[str, str, str | None], list[Metric]] = {}
        for metric in self.base:
            column, identity = self.key_for(metric)
            groups.setdefault((metric.sql or "", column, identity), []).append(metric)
        return [(sql, column, identity, metrics) for (sql, column, identity), metrics in groups.items()]


def _exposure_shift(hours: float, columns: dict[int, str] | None = None, unit: str = "u.") -> str:
    """First exposure moved by ``hours``: the ``eligible`` column that holds it when ``columns``
    (seconds -> column) has one, computed once per unit instead of on every joined row; else the
    arithmetic."""
    seconds = round(hours * 3600)
    if not seconds:
        return f"{unit}wb_first_exposure"
    if columns and seconds in columns:
        return f"{unit}{columns[seconds]}"
    return f"{unit}wb_first_exposure {'+' if seconds > 0 else '-'} INTERVAL '{abs(seconds)}' SECOND"


def _shift_columns(plan: _Plan) -> dict[int, str]:
    """The first-exposure shifts (seconds, not 0) that the windows and CUPED lookbacks of the plan's
    metrics compare with, each named as a column of ``eligible``."""
    hours = set()
    for metric in plan.base + plan.quantiles:
        hours.add(metric.window.delay_hours)
        if metric.window.hours is not None:
            hours.add(metric.window.delay_hours + metric.window.hours)
        if metric.cuped_lookback_days:
            hours.add(-metric.cuped_lookback_days * 24)
    seconds = sorted({round(h * 3600) for h in hours} - {0})
    return {value: f"wb_shift_{i}" for i, value in enumerate(seconds)}


def _in_window(metric: Metric, end_bound: bool, columns: dict[int, str] | None = None) -> str:
    """Condition on ``s.timestamp`` for a metric row to count after first exposure ``u.wb_first_exposure``."""
    parts = [f"s.timestamp >= {_exposure_shift(metric.window.delay_hours, columns)}"]
    if metric.window.hours is not None:
        parts.append(f"s.timestamp <= {_exposure_shift(metric.window.delay_hours + metric.window.hours, columns)}")
    elif end_bound:
        parts.append("s.timestamp <= :end")
    if metric.filter:
        parts.append(f"({metric.filter})")
    return " AND ".join(parts)


def _pre_window(metric: Metric, columns: dict[int, str] | None = None) -> str:
    """Condition for the CUPED covariate: [first exposure − lookback, first exposure)."""
    hours = (metric.cuped_lookback_days or 0) * 24
    parts = [f"s.timestamp >= {_exposure_shift(-hours, columns)}", "s.timestamp < u.wb_first_exposure"]
    if metric.filter:
        parts.append(f"({metric.filter})")
    return " AND ".join(parts)


def _source_join(plan: _Plan, sql: str, column: str, identity: str | None) -> str:
    if identity is None:
        return f"eligible u\n  JOIN ({sql}) s ON s.{column} = u.wb_unit"
    return f"eligible u\n  JOIN {identity} m ON m.wb_unit = u.wb_unit\n  JOIN ({sql}) s ON s.{column} = m.wb_other"


def _included(plan: _Plan, variation: str) -> str:
    """Condition that the unit variation ``variation`` (an SQL expression) is analysed: one of the
    configured variations, else any but ``__multiple__``."""
    if not plan.experiment.variations:
        return f"{variation} <> '{MULTIPLE}'"
    names = []
    for i, v in enumerate(plan.experiment.variations):
        plan.params[f"variation_{i}"] = v
        names.append(f":variation_{i}")
    # A CASE, not a bare IN: PostgreSQL guesses 0.5% of units pass an IN on a computed column
    # (and then hashes the big metric tables); for a boolean expression it guesses half.
    return f"CASE WHEN {variation} IN ({', '.join(names)}) THEN TRUE ELSE FALSE END"


def _units_ctes(plan: _Plan, dimension: str | None, included_only: bool) -> list[str]:
    """CTEs ``exposures``, ``units``, ``assigned`` (after activation) and, with ``included_only``,
    ``eligible`` (with the first-exposure shifts). ``units`` holds every variation for the health
    facts, and only the analysed ones with ``included_only``: filtered once, where they are built,
    instead of in every metric scan that reads ``eligible``."""
    aq, exp_cfg, unit = plan.assignment, plan.experiment, plan.unit_type
    where = [
        "e.experiment_id = :experiment_key",
        f"e.{unit} IS NOT NULL",
        "e.timestamp IS NOT NULL",
        "e.variation_id IS NOT NULL",
    ]
    if exp_cfg.start is not None:
        where.append("e.timestamp >= :start")
        plan.params["start"] = exp_cfg.start
    if exp_cfg.end is not None:
        where.append("e.timestamp <= :end")
        plan.params["end"] = exp_cfg.end
    # one dimension (dimension rows) or the post-stratification dimensions (the stratum, one key)
    dims = (dimension,) if dimension else plan.strata
    raw = [f"wb_raw_dim{f'_{k}' if k else ''}" for k in range(len(dims))]
    dim_col = "".join(f", CAST(e.{d} AS VARCHAR) AS {r}" for d, r in zip(dims, raw, strict=True))
    ctes = [
        f"exposures AS (\n  SELECT e.{unit} AS wb_unit, e.timestamp AS wb_ts, CAST(e.variation_id AS VARCHAR) AS wb_variation{dim_col}\n"
        f"  FROM ({aq.sql}) e\n  WHERE {' AND '.join(where)}\n)"
    ]
    if dims:
        plan.params["top_n"] = plan.top_n
        ranks = [f"dimension_ranks{r[len('wb_raw_dim') :]}" for r in raw]
        values = [
            f"CASE WHEN r{k or ''}.wb_value_rank <= :top_n THEN f.{r} ELSE '{OTHER}' END" for k, r in enumerate(raw)
        ]
        key = f" || '{STRATA_SEPARATOR}' || ".join(values)
        ctes += [
            f"ranked_exposures AS (\n  SELECT wb_unit, wb_ts, wb_variation, {', '.join(raw)},\n"
            f"    ROW_NUMBER() OVER (PARTITION BY wb_unit ORDER BY wb_ts, wb_variation, {', '.join(raw)}) AS wb_exposure_rank,\n"
            "    MIN(wb_variation) OVER (PARTITION BY wb_unit) AS wb_min_variation,\n"
            "    MAX(wb_variation) OVER (PARTITION BY wb_unit) AS wb_max_variation\n  FROM exposures\n)",
            "first_exposures AS (\n  SELECT wb_unit, wb_ts AS wb_first_exposure,\n"
            f"    CASE WHEN wb_min_variation = wb_max_variation THEN wb_variation ELSE '{MULTIPLE}' END AS wb_variation,\n"
            + ",\n".join(f"    COALESCE({r}, '{NULL_VALUE}') AS {r}" for r in raw)
            + "\n  FROM ranked_exposures WHERE wb_exposure_rank = 1\n)",
            *(
                f"{rank} AS (\n  SELECT {r}, ROW_NUMBER() OVER (ORDER BY COUNT(*) DESC, {r}) AS wb_value_rank\n"
                f"  FROM first_exposures GROUP BY {r}\n)"
                for rank, r in zip(ranks, raw, strict=True)
            ),
            "units AS (\n  SELECT f.wb_unit, f.wb_first_exposure, f.wb_variation,\n"
            f"    {key} AS wb_dim\n  FROM first_exposures f"
            + "".join(
                f" JOIN {rank} r{k or ''} ON r{k or ''}.{r} = f.{r}"
                for k, (rank, r) in enumerate(zip(ranks, raw, strict=True))
            )
            + (f"\n  WHERE {_included(plan, 'f.wb_variation')}" if included_only else "")
            + "\n)",
        ]
    else:
        variation = f"CASE WHEN MIN(wb_variation) = MAX(wb_variation) THEN MIN(wb_variation) ELSE '{MULTIPLE}' END"
        ctes.append(
            f"units AS (\n  SELECT wb_unit, MIN(wb_ts) AS wb_first_exposure,\n    {variation} AS wb_variation,\n"
            "    CAST(NULL AS VARCHAR) AS wb_dim\n  FROM exposures GROUP BY wb_unit"
            + (f"\n  HAVING {_included(plan, variation)}" if included_only else "")
            + "\n)"
        )
    for (j, other), name in _identity_maps(plan).items():
        join = plan.config.identity_joins[j]
        ctes.append(
            f"{name} AS (\n  SELECT DISTINCT j.{plan.unit_type} AS wb_unit, j.{other} AS wb_other FROM ({join.sql}) j\n"
            f"  WHERE j.{plan.unit_type} IS NOT NULL AND j.{other} IS NOT NULL\n)"
        )
    if exp_cfg.activation_metric:
        metric = exp_cfg.activation_metric
        column, identity = plan.key_for(metric)
        ctes.append(_identity_cte_if_new(plan, identity))
        join = _source_join(plan, metric.sql or "", column, identity).replace("eligible u", "units u", 1)
        conditions = [_in_window(metric, exp_cfg.end is not None), *_date_bounds(plan, "activation", [metric])]
        ctes.append(f"activated AS (\n  SELECT DISTINCT u.wb_unit FROM {join}\n  WHERE {' AND '.join(conditions)}\n)")
        ctes.append("assigned AS (\n  SELECT * FROM units WHERE wb_unit IN (SELECT wb_unit FROM activated)\n)")
    else:
        ctes.append("assigned AS (\n  SELECT * FROM units\n)")
    if included_only:
        plan.shift_columns = _shift_columns(plan)
        shifted = "".join(
            f", {_exposure_shift(sec / 3600, unit='')} AS {col}" for sec, col in plan.shift_columns.items()
        )
        ctes.append(f"eligible AS (\n  SELECT *{shifted} FROM assigned\n)")
    return [c for c in ctes if c]


def _identity_maps(plan: _Plan) -> dict[tuple[int, str], str]:
    """Resolve every metric's key first so that all identity-map CTEs are known."""
    for metric in plan.base + plan.quantiles:
        plan.key_for(metric)
    plan.identity_written = set(plan.identity.values())
    return dict(plan.identity)


def _identity_cte_if_new(plan: _Plan, identity: str | None) -> str:
    """The activation metric may need an identity map no other metric needs."""
    if identity is None or identity in plan.identity_written:
        return ""
    ((j, other),) = [k for k, v in plan.identity.items() if v == identity]
    join = plan.config.identity_joins[j]
    plan.identity_written.add(identity)
    return (
        f"{identity} AS (\n  SELECT DISTINCT j.{plan.unit_type} AS wb_unit, j.{other} AS wb_other FROM ({join.sql}) j\n"
        f"  WHERE j.{plan.unit_type} IS NOT NULL AND j.{other} IS NOT NULL\n)"
    )


def _date_bounds(plan: _Plan, name: str, metrics: list[Metric]) -> list[str]:
    """Conditions on ``s.timestamp`` with the constant bounds of any row ``metrics`` can count, bound
    as ``:rows_from_<name>`` and ``:rows_to_<name>``: from the experiment's start minus the longest
    CUPED lookback (or plus the smallest delay), to its end plus the longest conversion window. None
    when the experiment has no dates. Engines push them into the scan (zone maps, date partitions)."""
    start, end = plan.experiment.start, plan.experiment.end
    bounds = []
    if start is not None:
        low_hours = min(-m.cuped_lookback_days * 24 if m.cuped_lookback_days else m.window.delay_hours for m in metrics)
        plan.params[f"rows_from_{name}"] = start + dt.timedelta(hours=low_hours)
        bounds.append(f"s.timestamp >= :rows_from_{name}")
    if end is not None:
        high_hours = max([0.0] + [m.window.delay_hours + m.window.hours for m in metrics if m.window.hours is not None])
        plan.params[f"rows_to_{name}"] = end + dt.timedelta(hours=high_hours)
        bounds.append(f"s.timestamp <= :rows_to_{name}")
    return bounds


def _metric_ctes(plan: _Plan) -> list[str]:
    """One aggregate per source (per unit), then ``raw_per_unit``, percentile caps and ``per_unit``."""
    end_bound = plan.experiment.end is not None
    ctes, joins, raw_cols = [], [], []
    for k, (sql, column, identity, metrics) in enumerate(plan.sources()):
        aggregates = []
        for metric in metrics:
            i, kind = plan.index[metric.name], metric.kind
            counted = _in_window(metric, end_bound, plan.shift_columns)
            aggregates.append(f"SUM(CASE WHEN {counted} THEN 1 ELSE 0 END) AS m{i}_rows")
            if kind.value_aggregate:
                aggregates.append(
                    f"{kind.value_aggregate}(CASE WHEN {counted} THEN CAST(s.value AS DOUBLE PRECISION) END) AS m{i}_value"
                )
            if metric.cuped_lookback_days:
                pre = _pre_window(metric, plan.shift_columns)
                if kind.value_aggregate:
                    aggregates.append(
                        f"{kind.value_aggregate}(CASE WHEN {pre} THEN CAST(s.value AS DOUBLE PRECISION) END) AS m{i}_pre"
                    )
                else:
                    aggregates.append(f"SUM(CASE WHEN {pre} THEN 1 ELSE 0 END) AS m{i}_pre")
        # The per-unit windows live in the CASEs above only: in WHERE they would become a non-equi
        # join condition that doubles DuckDB's join cost. WHERE holds the constant date bounds.
        bounds = _date_bounds(plan, str(k), metrics)
        where = f"\n  WHERE {' AND '.join(bounds)}" if bounds else ""
        ctes.append(
            f"source_{k} AS (\n  SELECT u.wb_unit,\n    "
            + ",\n    ".join(aggregates)
            + f"\n  FROM {_source_join(plan, sql, column, identity)}{where}\n  GROUP BY u.wb_unit\n)"
        )
        joins.append(f"LEFT JOIN source_{k} ON source_{k}.wb_unit = u.wb_unit")
        for metric in metrics:
            i = plan.index[metric.name]
            rows = f"COALESCE(source_{k}.m{i}_rows, 0)"
            main = metric.kind.unit_value_sql(rows, f"source_{k}.m{i}_value")
            raw_cols += [f"CAST({main} AS DOUBLE PRECISION) AS m{i}_main", f"{rows} AS m{i}_rows"]
            if metric.cuped_lookback_days:
                pre = metric.kind.unit_value_sql(f"COALESCE(source_{k}.m{i}_pre, 0)", f"source_{k}.m{i}_pre")
                raw_cols.append(f"CAST({pre} AS DOUBLE PRECISION) AS m{i}_pre")
    ctes.append(
        "raw_per_unit AS (\n  SELECT u.wb_unit, u.wb_first_exposure, u.wb_variation, u.wb_dim"
        + "".join(f",\n    {c}" for c in raw_cols)
        + "\n  FROM eligible u\n  "
        + "\n  ".join(joins)
        + "\n)"
    )
    capped, cross = [], []
    for metric in plan.base:
        i = plan.index[metric.name]
        cap = metric.capping
        if cap is not None and cap.type == "percentile":
            nonzero = f" WHERE m{i}_main <> 0" if cap.ignore_zeros else ""  # GrowthBook's "ignore zeros"
            ctes.append(
                f"cap_{i} AS (\n  SELECT MIN(CASE WHEN wb_rank = CEIL(wb_n * {_double(cap.value)}) THEN m{i}_main END) AS wb_cap\n"
                f"  FROM (SELECT m{i}_main, ROW_NUMBER() OVER (ORDER BY m{i}_main) AS wb_rank, COUNT(*) OVER () AS wb_n FROM raw_per_unit{nonzero}) r\n)"
            )
            cross.append(f"CROSS JOIN cap_{i}")
            limit = f"cap_{i}.wb_cap"
        elif cap is not None:
            limit = _double(cap.value)
        else:
            limit = None
        for col in (f"m{i}_main", f"m{i}_pre") if metric.cuped_lookback_days else (f"m{i}_main",):
            capped.append(f"LEAST(r.{col}, {limit}) AS {col}" if limit else f"r.{col}")
            if limit:  # the value before capping too: the *_uncapped sums
                capped.append(f"r.{col} AS {col}_uncapped")
        capped.append(f"r.m{i}_rows")
    ctes.append(
        "per_unit AS (\n  SELECT r.wb_unit, r.wb_first_exposure, r.wb_variation, r.wb_dim,\n    "
        + ",\n    ".join(capped)
        + "\n  FROM raw_per_unit r"
        + "".join(f" {c}" for c in cross)
        + "\n)"
    )
    return ctes


def _quantile_ctes(plan: _Plan, dimension: str | None) -> list[str]:
    """The values of each quantile metric (event level: every counted row's non-NULL value; unit
    level: every unit's per-unit value of ``per_unit``), ranked, reduced to the order statistics;
    for event level also the per-unit cluster sums (:func:`_cluster_ctes`)."""
    end_bound = plan.experiment.end is not None
    ctes = []
    for j, metric in enumerate(plan.quantiles):
        q = metric.quantile or 0.5
        if metric.kind.unit_values:
            ctes.append(
                f"quantile_rows_{j} AS (\n  SELECT wb_variation, wb_dim, wb_unit, m{plan.index[metric.name]}_main AS wb_value\n"
                "  FROM per_unit\n)"
            )
        else:
            column, identity = plan.key_for(metric)
            ctes.append(
                f"quantile_rows_{j} AS (\n  SELECT u.wb_variation, u.wb_dim, u.wb_unit, CAST(s.value AS DOUBLE PRECISION) AS wb_value\n"
                f"  FROM {_source_join(plan, metric.sql or '', column, identity)}\n"
                f"  WHERE {' AND '.join([_in_window(metric, end_bound, plan.shift_columns), *_date_bounds(plan, f'q{j}', [metric])])} AND s.value IS NOT NULL\n)"
            )
        windows = [
            "ROW_NUMBER() OVER (PARTITION BY wb_variation ORDER BY wb_value) AS wb_rank_all",
            "COUNT(*) OVER (PARTITION BY wb_variation) AS wb_n_all",
        ]
        if dimension:
            windows += [
                "ROW_NUMBER() OVER (PARTITION BY wb_variation, wb_dim ORDER BY wb_value) AS wb_rank_dim",
                "COUNT(*) OVER (PARTITION BY wb_variation, wb_dim) AS wb_n_dim",
            ]
        ctes.append(
            f"quantile_ranked_{j} AS (\n  SELECT wb_variation, wb_dim, wb_value,\n    "
            + ",\n    ".join(windows)
            + f"\n  FROM quantile_rows_{j}\n)"
        )
        selects = [
            f"SELECT wb_variation, '{OVERALL}' AS wb_group, {_order_statistics('all', q)}\n  FROM quantile_ranked_{j} GROUP BY wb_variation"
        ]
        if dimension:
            selects.append(
                f"SELECT wb_variation, wb_dim AS wb_group, {_order_statistics('dim', q)}\n  FROM quantile_ranked_{j} GROUP BY wb_variation, wb_dim"
            )
        ctes.append(f"quantile_stats_{j} AS (\n  " + "\n  UNION ALL\n  ".join(selects) + "\n)")
        if not metric.kind.unit_values:
            ctes += _cluster_ctes(j, dimension)
    return ctes


# The per-unit cluster sums of an event-level quantile (GrowthBook's QuantileClusteredStatistic):
# sᵢ = the unit's counted events at or below its arm's (slice's) sample quantile, nᵢ = its events.
CLUSTER_SUMS = {
    "main_sum": "SUM({s})",
    "main_sum_squares": "SUM({s} * {s})",
    "denominator_sum": "SUM(wb_events)",
    "denominator_sum_squares": "SUM(wb_events * wb_events)",
    "main_denominator_sum_product": "SUM({s} * wb_events)",
}


def _cluster_ctes(j: int, dimension: str | None) -> list[str]:
    """``quantile_units_<j>``: per unit with counted events, ``wb_events`` (nᵢ) and ``wb_below_all``
    (sᵢ against the arm's quantile; ``wb_below_dim`` against its dimension value's within the arm,
    GrowthBook's ``value <= quantile`` per slice), and ``quantile_clusters_<j>``: the sums over units
    per arm and slice. Units without counted events add 0 to every sum and are left out here; they
    count in ``users`` (the number of clusters), as in GrowthBook's LEFT JOIN of units to events."""
    levels = [("all", f"a.wb_group = '{OVERALL}'")] + ([("dim", "a_dim.wb_group = r.wb_dim")] if dimension else [])
    below = ",\n    ".join(
        f"CAST(SUM(CASE WHEN r.wb_value <= a{'' if level == 'all' else '_dim'}.q_value THEN 1 ELSE 0 END) AS DOUBLE PRECISION) AS wb_below_{level}"
        for level, _ in levels
    )
    joins = "".join(
        f"\n  JOIN quantile_stats_{j} a{'' if level == 'all' else '_dim'} ON a{'' if level == 'all' else '_dim'}.wb_variation = r.wb_variation AND {on}"
        for level, on in levels
    )
    units = (
        f"quantile_units_{j} AS (\n  SELECT r.wb_variation, r.wb_dim, r.wb_unit, CAST(COUNT(*) AS DOUBLE PRECISION) AS wb_events,\n    {below}\n"
        f"  FROM quantile_rows_{j} r{joins}\n  GROUP BY r.wb_variation, r.wb_dim, r.wb_unit\n)"
    )
    selects = []
    for level, _ in levels:
        sums = ", ".join(f"{expr.format(s=f'wb_below_{level}')} AS c_{stat}" for stat, expr in CLUSTER_SUMS.items())
        group, by = (f"'{OVERALL}'", "wb_variation") if level == "all" else ("wb_dim", "wb_variation, wb_dim")
        selects.append(f"SELECT wb_variation, {group} AS wb_group, {sums}\n  FROM quantile_units_{j} GROUP BY {by}")
    return [units, f"quantile_clusters_{j} AS (\n  " + "\n  UNION ALL\n  ".join(selects) + "\n)"]


def _order_statistics(level: str, q: float) -> str:
    """Nearest-rank quantile (rank ceil(n·q)) and the values at ranks n·q ∓ 1.96·sqrt(n·q·(1−q))
    (floor / ceil, clipped to [1, n]): the order-statistic confidence interval of a quantile."""
    n, rank = f"wb_n_{level}", f"wb_rank_{level}"
    nq = f"{n} * {_double(q)}"
    half = f"{_double(1.96)} * SQRT({nq} * {_double(1 - q)})"
    return (
        f"COUNT(*) AS q_n, MIN(CASE WHEN {rank} = CEIL({nq}) THEN wb_value END) AS q_value,\n"
        f"    MIN(CASE WHEN {rank} = GREATEST(FLOOR({nq} - {half}), 1) THEN wb_value END) AS q_lower,\n"
        f"    MIN(CASE WHEN {rank} = LEAST(CEIL({nq} + {half}), {n}) THEN wb_value END) AS q_upper"
    )


def sufficient_stats_query(
    config: Config,
    experiment: ExperimentConfig,
    dimension: str | None = None,
    top_n: int = DEFAULT_TOP_N,
    metrics: tuple[Metric, ...] | None = None,
    strata: tuple[str, ...] = (),
) -> CompiledQuery:
    """One query returning, per variation and dimension value (``__overall__`` for the whole
    experiment), ``users`` and the sufficient statistics of every metric of ``experiment``. With
    ``strata`` (dimensions, no ``dimension``) the values are the post-stratification strata
    instead: each unit's values of those dimensions joined with :data:`STRATA_SEPARATOR`. Capped
    metrics also get each sum before capping as ``<stat>_uncapped``."""
    plan = _plan(config, experiment, dimension, top_n, metrics, strata)
    grouped = dimension or (STRATA if plan.strata else None)
    ctes = _units_ctes(plan, dimension, included_only=True) + _metric_ctes(plan) + _quantile_ctes(plan, grouped)
    selects = [
        "CAST(wb_variation AS VARCHAR) AS variation",
        f"COALESCE(wb_dim, '{OVERALL}') AS dimension_value",
        "COUNT(*) AS users",
    ]
    columns: dict[str, dict[str, str]] = {}
    for j, metric in enumerate(plan.outputs):
        cols: dict[str, str] = {}
        if metric.kind.quantile_level:  # their columns come from the quantile CTEs below
            columns[metric.name] = cols
            continue
        main, den = (
            (metric.numerator.name, metric.denominator.name) if metric.kind.shape == RATIO else (metric.name, None)
        )
        a = f"m{plan.index[main]}_main"
        sums = {"main_sum": f"SUM({a})", "main_sum_squares": f"SUM({a} * {a})"}
        if den is not None:
            b = f"m{plan.index[den]}_main"
            sums |= {
                "denominator_sum": f"SUM({b})",
                "denominator_sum_squares": f"SUM({b} * {b})",
                "main_denominator_sum_product": f"SUM({a} * {b})",
            }
        if metric.cuped_lookback_days:
            c = f"m{plan.index[plan.pre_parts.get((metric.name, 'numerator'), main)]}_pre"
            sums |= {
                "covariate_sum": f"SUM({c})",
                "covariate_sum_squares": f"SUM({c} * {c})",
                "main_covariate_sum_product": f"SUM({a} * {c})",
            }
            if den is not None:  # a CUPED ratio: the denominator's pre-exposure value too
                e = f"m{plan.index[plan.pre_parts[(metric.name, 'denominator')]]}_pre"
                sums |= {
                    "denominator_pre_sum": f"SUM({e})",
                    "denominator_pre_sum_squares": f"SUM({e} * {e})",
                    "main_post_denominator_pre_sum_product": f"SUM({a} * {e})",
                    "main_pre_denominator_post_sum_product": f"SUM({c} * {b})",
                    "main_pre_denominator_pre_sum_product": f"SUM({c} * {e})",
                    "denominator_post_denominator_pre_sum_product": f"SUM({b} * {e})",
                }
        uncapped = {plan.index[part.name] for part in plan.parts_of(metric) if part.capping is not None}
        if uncapped:  # every sum again over the values before capping (GrowthBook's *_uncapped columns)
            sums |= {f"{stat}_uncapped": _before_capping(expr, uncapped) for stat, expr in sums.items()}
        for stat, expr in sums.items():
            cols[stat] = f"s{j}_{stat}"
            selects.append(f"{expr} AS {cols[stat]}")
        columns[metric.name] = cols
    group = "GROUPING SETS ((wb_variation), (wb_variation, wb_dim))" if grouped else "wb_variation, wb_dim"
    body = "SELECT " + ",\n  ".join(selects) + f"\nFROM per_unit\nGROUP BY {group}"
    if plan.quantiles:
        ctes.append(f"main_stats AS (\n{body}\n)")
        outer, joins = ["m.*"], []
        for j, metric in enumerate(plan.quantiles):
            k = plan.outputs.index(metric)
            cols = columns[metric.name]
            # quantile_nstar: the sample size the interval's ranks were taken at, n itself
            for stat, col in (
                ("quantile_n", "q_n"),
                ("quantile_nstar", "q_n"),
                ("quantile", "q_value"),
                ("quantile_lower", "q_lower"),
                ("quantile_upper", "q_upper"),
            ):
                cols[stat] = f"s{k}_{stat}"
                outer.append(f"q{j}.{col} AS {cols[stat]}")
            cols["quantile_level"] = f"s{k}_quantile_level"
            outer.append(f"{_double(metric.quantile or 0.5)} AS {cols['quantile_level']}")
            joins.append(
                f"LEFT JOIN quantile_stats_{j} q{j} ON q{j}.wb_variation = m.variation AND q{j}.wb_group = m.dimension_value"
            )
            if not metric.kind.unit_values:  # event level: the per-unit cluster sums
                for stat in CLUSTER_SUMS:
                    cols[stat] = f"s{k}_{stat}"
                    outer.append(f"c{j}.c_{stat} AS {cols[stat]}")
                joins.append(
                    f"LEFT JOIN quantile_clusters_{j} c{j} ON c{j}.wb_variation = m.variation AND c{j}.wb_group = m.dimension_value"
                )
        body = "SELECT " + ", ".join(outer) + "\nFROM main_stats m\n" + "\n".join(joins)
    return CompiledQuery(_with(ctes, body), dict(plan.params), columns)


def health_query(
    config: Config, experiment: ExperimentConfig, dimension: str | None = None, top_n: int = DEFAULT_TOP_N
) -> CompiledQuery:
    """Units per variation (``__multiple__`` and unknown ones included) overall, per dimension
    value and per first-exposure day, in one grouped query over the units."""
    plan = _plan(config, experiment, dimension, top_n, metrics=())
    ctes = _units_ctes(plan, dimension, included_only=False)
    sets = ["(wb_variation)", "(wb_variation, wb_day)"] + (["(wb_variation, wb_dim)"] if dimension else [])
    body = (
        f"SELECT wb_variation AS variation, {'wb_dim' if dimension else 'CAST(NULL AS VARCHAR)'} AS dimension_value, wb_day AS day, COUNT(*) AS users\n"
        "FROM (SELECT wb_variation, wb_dim, CAST(wb_first_exposure AS DATE) AS wb_day FROM assigned) a\n"
        f"GROUP BY GROUPING SETS ({', '.join(sets)})"
    )
    return CompiledQuery(_with(ctes, body), dict(plan.params))


def unit_metrics_query(
    config: Config, experiment: ExperimentConfig, metrics: tuple[Metric, ...] | None = None
) -> CompiledQuery:
    """One row per included unit: ``unit, variation, first_exposure`` and per base metric
    ``n_<metric>`` (per-unit value after capping) and ``pct_<metric>`` (1 if any row counted)."""
    plan = _plan(config, experiment, None, DEFAULT_TOP_N, metrics)
    ctes = _units_ctes(plan, None, included_only=True) + _metric_ctes(plan)
    cols = ["wb_unit AS unit", "wb_variation AS variation", "wb_first_exposure AS first_exposure"]
    for metric in plan.base:
        if metric.name in plan.hidden:
            continue
        i = plan.index[metric.name]
        cols += [f"m{i}_main AS n_{metric.name}", f"CASE WHEN m{i}_rows > 0 THEN 1 ELSE 0 END AS pct_{metric.name}"]
    return CompiledQuery(_with(ctes, "SELECT " + ",\n  ".join(cols) + "\nFROM per_unit"), dict(plan.params))


def discovery_query(aq: AssignmentQuery) -> CompiledQuery:
    """Experiments in one assignment query: per experiment and variation, distinct units and the
    first and last exposure."""
    sql = (
        f"SELECT CAST(e.experiment_id AS VARCHAR) AS experiment_id, CAST(e.variation_id AS VARCHAR) AS variation_id,\n"
        f"  COUNT(DISTINCT e.{aq.identifier_type}) AS units, MIN(e.timestamp) AS first_exposure, MAX(e.timestamp) AS last_exposure\n"
        f"FROM ({aq.sql}) e\nWHERE e.experiment_id IS NOT NULL AND e.variation_id IS NOT NULL\n"
        "GROUP BY CAST(e.experiment_id AS VARCHAR), CAST(e.variation_id AS VARCHAR)\nORDER BY 1, 2"
    )
    return CompiledQuery(sql, {})


def probe_columns_query(sql: str) -> str:
    """A query returning no rows but the columns of ``sql`` (to check them before the real query)."""
    return f"SELECT * FROM ({sql}) q WHERE 1 = 0"


def _plan(
    config: Config,
    experiment: ExperimentConfig,
    dimension: str | None,
    top_n: int,
    metrics: tuple[Metric, ...] | None,
    strata: tuple[str, ...] = (),
) -> _Plan:
    aq = experiment.assignment_query
    strata = (strata,) if isinstance(strata, str) else tuple(strata)
    for name in ([dimension] if dimension is not None else []) + list(strata):
        if name not in aq.dimensions:
            raise ConfigError(
                f"{config.path}: {shown(name)} is not a dimension of assignment query {aq.name!r} used by experiment "
                f"{experiment.key!r}; choose one of {list(aq.dimensions)}."
            )
    if strata and (dimension is not None or len(set(strata)) != len(strata)):
        raise ConfigError(
            f"post-stratification strata {list(strata)} must be distinct dimensions and come without a dimension "
            "breakdown (strata rows belong to the overall query)."
        )
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise ConfigError(f"top_n must be a positive integer, not {top_n!r}.")
    plan = _Plan(config, experiment, metrics)
    plan.top_n = top_n
    plan.strata = strata
    return plan


def _before_capping(expr: str, capped: set[int]) -> str:
    """``expr`` over the per-unit values before capping: ``m<i>_main`` / ``m<i>_pre`` of the capped
    base metrics ``capped`` become their ``_uncapped`` columns of ``per_unit``."""
    return re.sub(r"\bm(\d+)_(main|pre)\b", lambda m: f"{m[0]}_uncapped" if int(m[1]) in capped else m[0], expr)


def _with(ctes: list[str], body: str) -> str:
    return "WITH " + ",\n".join(ctes) + "\n" + body
