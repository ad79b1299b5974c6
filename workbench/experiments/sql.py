"""Compile an experiment of the validated config into SQL: the one SQL-building module of the
experiment engine.

One query per experiment answers the whole analysis in one pass over each source table:

- the units once (distinct identifiers exposed between start and end, ``__multiple__`` when
  several variations, first exposure, each dimension's value at first exposure, top N of each);
- one scan per source table: every metric reading the same table (fact-table metrics, and legacy
  metrics whose SQL is a plain ``SELECT … FROM <table> [WHERE …]``) is one ``CASE`` per metric
  over one join of that table's rows to their units, the identity map joined once per identifier
  type; other metric SQL is scanned once per distinct text;
- one per-unit relation, grouped once with ``GROUPING SETS``: overall, each dimension, the
  post-stratification strata and the first-exposure days (the health facts), for every variation
  (``__multiple__`` and unknown ones too: their units are counted, their sums unused).

Values (experiment key, dates, variations, top N) are bound parameters (``:name``); identifiers
come only from the validated config (plain names); numbers from the config (window hours, caps,
quantile levels) are inlined as float literals. The text is written in the dialect DuckDB and
PostgreSQL both run; :func:`workbench.db.dialects.transpile` turns it into Spark SQL, BigQuery,
Snowflake or Trino.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

from workbench.db.dialects import SOURCE_DIALECT, Dialect
from workbench.errors import ConfigError, did_you_mean, shown
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
# The grouping set of units per first-exposure day (health facts): its rows have ``day``.
DAYS = "__day__"


@dataclass(frozen=True)
class CompiledQuery:
    """SQL text with its bound parameters; ``columns[metric][stat]`` names the result column;
    ``sets[i]`` names the breakdown of result rows with ``wb_set = i`` (``__overall__``, a
    dimension, ``__strata__``, ``__day__``)."""

    sql: str
    params: dict[str, Any]
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    sets: tuple[str, ...] = ()
    # tables to create (with the same bound parameters) before ``sql`` runs, which reads them, and
    # to drop after: (table, query, the columns to ANALYZE)
    stages: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


def _double(x: float) -> str:
    """A float from the validated config as an exact double literal."""
    return f"CAST({float(x)!r} AS DOUBLE PRECISION)"


@dataclass(frozen=True)
class RowSource:
    """A metric's rows in a form scans share: ``relation`` (SQL of the rows, read as ``s``) and
    SQL expressions over ``s``: the identifier column per identifier type (``keys``), the
    ``timestamp``, the ``value`` (None when the type only counts rows) and the ``condition`` a row
    must meet (None: every row)."""

    relation: str
    keys: tuple[tuple[str, str], ...]
    timestamp: str
    value: str | None
    condition: str | None


@functools.lru_cache(maxsize=1024)
def row_source(metric: Metric) -> RowSource:
    """Where ``metric``'s rows come from: its fact table's SQL and the ``column`` and ``row_filter``
    over it, or its own SQL, ``value`` and ``filter``. When that SQL is a plain ``SELECT
    <expressions> FROM <table> [WHERE <condition>]``, the rows are the table itself (``SELECT * FROM
    <table>``) with those expressions and that condition (the filter's output names replaced by
    their expressions), so that every metric over one table shares its scan, whichever style
    defines it; any other SQL is a relation of its own."""
    if metric.fact_table is not None:
        sql, value, condition = metric.fact_table.sql, metric.column, metric.row_filter
    else:
        sql, value, condition = metric.sql or "", "value", metric.filter
    value = value if metric.kind.reads_value else None
    plain = _plain_select(sql)
    if plain is None:
        return RowSource(
            sql,
            tuple((t, f"s.{t}") for t in metric.identifier_types),
            "s.timestamp",
            f"s.{value}" if value else None,
            _over_rows(condition, {}),
        )
    relation, outputs, where = plain
    rendered = {name: _over_rows(node, {}) for name, node in outputs.items()}
    conditions = [c for c in (_over_rows(where, {}), _over_rows(condition, outputs)) if c]
    return RowSource(
        relation,
        tuple((t, rendered[t.lower()]) for t in metric.identifier_types),
        rendered["timestamp"],
        rendered[value.lower()] if value else None,
        " AND ".join(f"({c})" for c in conditions) if len(conditions) > 1 else (conditions[0] if conditions else None),
    )


def _plain_select(sql: str) -> tuple[str, dict[str, Any], Any] | None:
    """``(relation, outputs, where)`` when ``sql`` is ``SELECT <expressions> FROM <table> [WHERE
    <condition>]`` with nothing else (no join, grouping, DISTINCT, LIMIT, window, subquery or
    aggregate): ``relation`` is ``SELECT * FROM <table>``, ``outputs`` maps each output name (lower
    case) to its expression; else None."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read=SOURCE_DIALECT)
    except sqlglot.errors.SqlglotError:
        return None
    if not isinstance(tree, exp.Select) or {k for k, v in tree.args.items() if v} - {"expressions", "from_", "where"}:
        return None
    source = tree.args["from_"].this if tree.args.get("from_") else None
    if not isinstance(source, exp.Table) or not isinstance(source.this, exp.Identifier) or source.args.get("joins"):
        return None
    forbidden = (exp.AggFunc, exp.Window, exp.Subquery, exp.Star, exp.Placeholder, exp.Select)
    if any(node.find(*forbidden) for node in [*tree.selects, tree.args.get("where") or exp.true()]):
        return None
    outputs = {select.alias_or_name.lower(): select.unalias() for select in tree.selects}
    where = tree.args["where"].this if tree.args.get("where") else None
    return f"SELECT * FROM {source.sql(dialect=SOURCE_DIALECT)}", outputs, where


def _over_rows(condition: Any, outputs: dict[str, Any]) -> str | None:
    """``condition`` (SQL text or a parsed expression) over the rows ``s``: each column qualified
    with ``s``; a bare name in ``outputs`` (a metric SQL's output) becomes its expression."""
    if condition is None:
        return None
    import sqlglot
    from sqlglot import exp

    node = sqlglot.parse_one(condition, read=SOURCE_DIALECT) if isinstance(condition, str) else condition.copy()

    def qualify(n):
        if isinstance(n, exp.Column):
            if not n.table and n.name.lower() in outputs:
                return exp.Paren(this=sqlglot.parse_one(_over_rows(outputs[n.name.lower()], {}), read=SOURCE_DIALECT))
            return exp.Column(this=n.this.copy(), table=exp.to_identifier("s"))
        return n

    return node.transform(qualify).sql(dialect=SOURCE_DIALECT)


@dataclass
class _Scan:
    """One join of a source's rows to their units: the metrics (``base``), event-level quantiles
    (``quantiles``, their indexes in the plan) and the activation metric reading it."""

    index: int
    source: RowSource
    key: str  # the identifier expression over s joined to the unit (or to the identity map)
    identity: str | None  # identity-map CTE, None for a direct join
    base: list[Metric] = field(default_factory=list)
    quantiles: list[int] = field(default_factory=list)
    activation: Metric | None = None

    @property
    def members(self) -> list[Metric]:
        return self.base + ([self.activation] if self.activation else [])


class _Plan:
    """What one experiment needs: units, breakdowns, base metrics, scans, ratios and quantiles."""

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
        self.shift_columns: dict[int, str] = {}  # seconds after first exposure -> column of eligible
        self.top_n = DEFAULT_TOP_N
        self.dimensions: tuple[str, ...] = ()  # breakdowns, each a column wb_dim_<k> of the units
        self.strata: tuple[str, ...] = ()  # dimensions whose values at first exposure make wb_strata
        self.scans: list[_Scan] = []
        self.activation_scan: int | None = None
        self.first_by: str | None = None  # the engine's first-by aggregate (Dialect.first_by), if any
        self.date_bounds = True  # constant date bounds on the metric scans (Dialect.scan_date_bounds)
        self.numbered = False  # units joined by their row numbers (Dialect.numbered_units)
        self.rank_value: str | None = None  # the engine's nearest-rank aggregate (Dialect.rank_value), if any
        # incremental refresh (the section at the end of this module): "build" or "update" while the
        # state is written, and the state table the units and per-unit parts are then read from
        self.refresh: str | None = None
        self.state: str | None = None
        self.state_index: dict[str, int] | None = None  # state column number per base metric, when reading the state

    @property
    def sets(self) -> list[tuple[str, str | None]]:
        """The breakdowns the statistics are grouped by, as (name, unit column): overall (no
        column), each dimension, the strata."""
        return (
            [(OVERALL, None)]
            + [(d, f"wb_dim_{k}") for k, d in enumerate(self.dimensions)]
            + ([(STRATA, "wb_strata")] if self.strata else [])
        )

    def parts_of(self, metric: Metric) -> list[Metric]:
        """The base metrics whose per-unit values ``metric``'s sums read: its parts and the copies
        holding a CUPED ratio's pre-exposure values."""
        names = [part.name for part in metric.parts] + [
            name for (ratio, _), name in self.pre_parts.items() if ratio == metric.name
        ]
        return [self.base[self.index[name]] for name in dict.fromkeys(names) if name in self.index]

    def key_for(self, metric: Metric) -> tuple[str, str | None]:
        """(identifier type the metric's rows are joined by, identity-map CTE or None for a direct join)."""
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

    def plan_scans(self) -> None:
        """Group every row-reading metric (base metrics, event-level quantiles, the activation
        metric) by (relation, join key, identity map, timestamp): one scan each."""
        scans: dict[tuple[str, str, str | None, str], _Scan] = {}

        def scan_of(metric: Metric) -> _Scan:
            source = row_source(metric)
            id_type, identity = self.key_for(metric)
            key = dict(source.keys)[id_type]
            group = (source.relation, key, identity, source.timestamp)
            if group not in scans:
                scans[group] = _Scan(len(scans), source, key, identity)
            return scans[group]

        for metric in self.base:
            scan_of(metric).base.append(metric)
        for j, metric in enumerate(self.quantiles):
            if not metric.kind.unit_values:
                scan_of(metric).quantiles.append(j)
        if self.experiment.activation_metric is not None:
            scan = scan_of(self.experiment.activation_metric)
            scan.activation = self.experiment.activation_metric
            self.activation_scan = scan.index
        self.scans = list(scans.values())


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
    for scan in plan.scans:
        for metric in scan.members + [plan.quantiles[j] for j in scan.quantiles]:
            hours.add(metric.window.delay_hours)
            if metric.window.hours is not None:
                hours.add(metric.window.delay_hours + metric.window.hours)
            if metric.cuped_lookback_days:
                hours.add(-metric.cuped_lookback_days * 24)
    seconds = sorted({round(h * 3600) for h in hours} - {0})
    return {value: f"wb_shift_{i}" for i, value in enumerate(seconds)}


def _counted(metric: Metric, end_bound: bool, columns: dict[int, str]) -> str:
    """Condition for a row of ``metric`` to count after first exposure ``u.wb_first_exposure``."""
    source = row_source(metric)
    ts = source.timestamp
    parts = [f"{ts} >= {_exposure_shift(metric.window.delay_hours, columns)}"]
    if metric.window.hours is not None:
        parts.append(f"{ts} <= {_exposure_shift(metric.window.delay_hours + metric.window.hours, columns)}")
    elif end_bound:
        parts.append(f"{ts} <= :end")
    if source.condition:
        parts.append(f"({source.condition})")
    return " AND ".join(parts)


def _pre_window(metric: Metric, columns: dict[int, str]) -> str:
    """Condition for a row to count in the CUPED covariate: [first exposure − lookback, first exposure)."""
    source = row_source(metric)
    hours = (metric.cuped_lookback_days or 0) * 24
    parts = [f"{source.timestamp} >= {_exposure_shift(-hours, columns)}", f"{source.timestamp} < u.wb_first_exposure"]
    if source.condition:
        parts.append(f"({source.condition})")
    return " AND ".join(parts)


def _included(plan: _Plan, variation: str) -> str:
    """Condition that the unit variation ``variation`` (an SQL expression) is analysed: one of the
    configured variations, else any but ``__multiple__``."""
    if not plan.experiment.variations:
        return f"{variation} <> '{MULTIPLE}'"
    names = []
    for i, v in enumerate(plan.experiment.variations):
        plan.params[f"variation_{i}"] = v
        names.append(f":variation_{i}")
    return f"CASE WHEN {variation} IN ({', '.join(names)}) THEN TRUE ELSE FALSE END"


def _units_ctes(plan: _Plan) -> list[str]:
    """CTEs ``exposures``, ``units`` (every unit exposed: its first exposure, variation or
    ``__multiple__``, and per breakdown its value at first exposure, top N or ``(other)``), the
    identity maps, and ``eligible``: the units with ``wb_included`` (an analysed variation), the
    first-exposure ``wb_day`` and the first-exposure shifts the metric windows compare with."""
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
    dims = list(dict.fromkeys(plan.dimensions + plan.strata))  # each dimension read once
    raw = [f"wb_raw_{k}" for k in range(len(dims))]
    parts = "".join(f", {name}" for name in _state_parts(plan))  # carried with each unit read from the state
    dim_col = "".join(
        f", COALESCE(CAST(e.{d} AS VARCHAR), '{NULL_VALUE}') AS {r}" for d, r in zip(dims, raw, strict=True)
    )
    if plan.refresh == "update":
        where.append("e.timestamp >= :wb_settled_old")  # only the exposures since the settled boundary
    ctes = [
        f"exposures AS (\n  SELECT e.{unit} AS wb_unit, e.timestamp AS wb_ts, CAST(e.variation_id AS VARCHAR) AS wb_variation{dim_col}\n"
        f"  FROM ({aq.sql}) e\n  WHERE {' AND '.join(where)}\n)"
        if plan.state is None
        else _state_exposures(plan, dims)
    ]
    if dims:
        plan.params["top_n"] = plan.top_n
        value = {
            d: f"CASE WHEN r{k}.wb_value_rank <= :top_n THEN f.{r} ELSE '{OTHER}' END"
            for k, (d, r) in enumerate(zip(dims, raw, strict=True))
        }
        columns = [f"{value[d]} AS wb_dim_{k}" for k, d in enumerate(plan.dimensions)]
        if plan.strata:
            columns.append(f" || '{STRATA_SEPARATOR}' || ".join(value[d] for d in plan.strata) + " AS wb_strata")
        variation = f"CASE WHEN MIN(wb_variation) = MAX(wb_variation) THEN MIN(wb_variation) ELSE '{MULTIPLE}' END"
        order = ", ".join(["wb_ts", "wb_variation", *raw])
        if plan.state is not None:  # the state's exposures are one per unit already
            ctes.append(
                f"first_exposures AS (\n  SELECT wb_unit, wb_ts AS wb_first_exposure, wb_variation, {', '.join(raw)}"
                f"{parts}\n  FROM exposures\n)"
            )
        elif plan.first_by:  # one aggregate per unit: each dimension's value at the first exposure
            firsts = ",\n    ".join(f"{plan.first_by.format(value=r, order=order)} AS {r}" for r in raw)
            ctes.append(
                f"first_exposures AS (\n  SELECT wb_unit, MIN(wb_ts) AS wb_first_exposure, {variation} AS wb_variation,\n"
                f"    {firsts}\n  FROM exposures GROUP BY wb_unit\n)"
            )
        else:  # the first exposure ranked by a window (ties broken by variation, then the values)
            ctes += [
                f"ranked_exposures AS (\n  SELECT wb_unit, wb_ts, wb_variation, {', '.join(raw)},\n"
                f"    ROW_NUMBER() OVER (PARTITION BY wb_unit ORDER BY {order}) AS wb_exposure_rank,\n"
                "    MIN(wb_variation) OVER (PARTITION BY wb_unit) AS wb_min_variation,\n"
                "    MAX(wb_variation) OVER (PARTITION BY wb_unit) AS wb_max_variation\n  FROM exposures\n)",
                "first_exposures AS (\n  SELECT wb_unit, wb_ts AS wb_first_exposure,\n"
                f"    CASE WHEN wb_min_variation = wb_max_variation THEN wb_variation ELSE '{MULTIPLE}' END AS wb_variation, "
                + ", ".join(raw)
                + "\n  FROM ranked_exposures WHERE wb_exposure_rank = 1\n)",
            ]
        ctes += [
            *(
                f"dimension_ranks_{k} AS (\n  SELECT {r}, ROW_NUMBER() OVER (ORDER BY COUNT(*) DESC, {r}) AS wb_value_rank\n"
                f"  FROM first_exposures GROUP BY {r}\n)"
                for k, r in enumerate(raw)
            ),
            "units AS (\n  SELECT f.wb_unit, f.wb_first_exposure, f.wb_variation,\n    "
            + ",\n    ".join(columns + [f"f.{name}" for name in _state_parts(plan)])
            + "\n  FROM first_exposures f"
            + "".join(f" JOIN dimension_ranks_{k} r{k} ON r{k}.{r} = f.{r}" for k, r in enumerate(raw))
            + "\n)",
        ]
    elif plan.state is not None:
        ctes.append(f"units AS (\n  SELECT wb_unit, wb_ts AS wb_first_exposure, wb_variation{parts} FROM exposures\n)")
    else:
        variation = f"CASE WHEN MIN(wb_variation) = MAX(wb_variation) THEN MIN(wb_variation) ELSE '{MULTIPLE}' END"
        ctes.append(
            f"units AS (\n  SELECT wb_unit, MIN(wb_ts) AS wb_first_exposure,\n    {variation} AS wb_variation\n"
            "  FROM exposures GROUP BY wb_unit\n)"
        )
    for (j, other), name in plan.identity.items() if plan.state is None else ():  # the state holds the parts
        join = plan.config.identity_joins[j]
        if plan.refresh == "update" and join.timestamp:  # the state's ids and the new pairs (state_refresh_query)
            continue
        ctes.append(f"{name} AS (\n{_identity_pairs(plan, j, other)}\n)")
    plan.shift_columns = _shift_columns(plan)
    shifted = "".join(f", {_exposure_shift(sec / 3600, unit='')} AS {col}" for sec, col in plan.shift_columns.items())
    # wb_key: what the per-unit relations join and group on (the unit's row number or its id)
    key, materialized = ("ROW_NUMBER() OVER ()", " MATERIALIZED") if plan.numbered else ("wb_unit", "")
    ctes.append(
        f"eligible AS{materialized} (\n  SELECT *, {key} AS wb_key, {_included(plan, 'wb_variation')} AS wb_included,\n"
        f"    CAST(wb_first_exposure AS DATE) AS wb_day{shifted}\n  FROM units\n)"
    )
    return ctes


def _identity_pairs(plan: _Plan, j: int, other: str, condition: str | None = None) -> str:
    """The distinct (``wb_unit``, ``wb_other``) pairs of identity join ``j`` linking the unit's
    type to ``other``, both ids present and, when given, ``condition`` on its rows (alias ``j``)."""
    unit = plan.unit_type
    where = f"j.{unit} IS NOT NULL AND j.{other} IS NOT NULL" + (f"\n    AND {condition}" if condition else "")
    sql = plan.config.identity_joins[j].sql
    return f"  SELECT DISTINCT j.{unit} AS wb_unit, j.{other} AS wb_other FROM ({sql}) j\n  WHERE {where}"


def _date_bounds(plan: _Plan, name: str, metrics: list[Metric], ts: str) -> list[str]:
    """Conditions on the rows' timestamp ``ts`` with the constant bounds of any row ``metrics`` can
    count, bound as ``:rows_from_<name>`` and ``:rows_to_<name>``: from the experiment's start
    minus the longest CUPED lookback (or plus the smallest delay), to its end plus the longest
    conversion window. None when the experiment has no dates. Engines push them into the scan
    (zone maps, date partitions)."""
    start, end = plan.experiment.start, plan.experiment.end
    bounds = []
    if start is not None:
        low_hours = min(-m.cuped_lookback_days * 24 if m.cuped_lookback_days else m.window.delay_hours for m in metrics)
        plan.params[f"rows_from_{name}"] = start + dt.timedelta(hours=low_hours)
        bounds.append(f"{ts} >= :rows_from_{name}")
    if end is not None:
        high_hours = max([0.0] + [m.window.delay_hours + m.window.hours for m in metrics if m.window.hours is not None])
        plan.params[f"rows_to_{name}"] = end + dt.timedelta(hours=high_hours)
        bounds.append(f"{ts} <= :rows_to_{name}")
    return bounds


def _scan_ctes(plan: _Plan, scan: _Scan) -> list[str]:
    """``rows_<k>``: the scan's rows joined to their units, with per metric whether the row
    counts (``m<i>_hit``: 1 or NULL), its value when it does (``m<i>_v``), the same before exposure
    for the CUPED covariate, the activation metric's hit and each event-level quantile's value;
    then ``source_<k>``: those counted and summed per unit (``COUNT`` of the hits: a BIGINT, where
    DuckDB's ``SUM`` of 1s and 0s is a 128-bit integer and 2-5% slower). The per-unit windows live
    in the CASEs only (in WHERE they would become a non-equi join condition that doubles DuckDB's
    join cost); WHERE holds the constant date bounds and, when every metric of the scan has a
    condition, any of them."""
    end_bound, cols, k = plan.experiment.end is not None, plan.shift_columns, scan.index
    double = "DOUBLE PRECISION"
    row_cols, sums = [], []
    for metric in scan.base:
        i, kind, value = plan.index[metric.name], metric.kind, row_source(metric).value
        counted = _counted(metric, end_bound, cols)
        row_cols.append(f"CASE WHEN {counted} THEN 1 END AS m{i}_hit")
        sums.append(f"COUNT(m{i}_hit) AS m{i}_rows")
        if kind.value_aggregate:
            row_cols.append(f"CASE WHEN {counted} THEN CAST({value} AS {double}) END AS m{i}_v")
            sums.append(f"{kind.value_aggregate}(m{i}_v) AS m{i}_value")
        if metric.cuped_lookback_days:
            pre = _pre_window(metric, cols)
            if kind.value_aggregate:
                row_cols.append(f"CASE WHEN {pre} THEN CAST({value} AS {double}) END AS m{i}_pre_v")
                sums.append(f"{kind.value_aggregate}(m{i}_pre_v) AS m{i}_pre")
            else:
                row_cols.append(f"CASE WHEN {pre} THEN 1 END AS m{i}_pre_hit")
                sums.append(f"COUNT(m{i}_pre_hit) AS m{i}_pre")
    if scan.activation is not None:
        row_cols.append(f"CASE WHEN {_counted(scan.activation, end_bound, cols)} THEN 1 END AS wb_act_hit")
        sums.append("COUNT(wb_act_hit) AS wb_act_rows")
    quantiles = [plan.quantiles[j] for j in scan.quantiles]
    for j, metric in zip(scan.quantiles, quantiles, strict=True):
        value = row_source(metric).value
        row_cols.append(f"CASE WHEN {_counted(metric, end_bound, cols)} THEN CAST({value} AS {double}) END AS q{j}_v")
    unit_cols = ["u.wb_key"] + ([_settled_flag(scan.source.timestamp)] if plan.refresh else [])
    if quantiles:  # the quantile rows are grouped by arm and breakdown
        unit_cols += ["u.wb_variation", "u.wb_included"] + [f"u.{c}" for _, c in plan.sets if c]
    members = scan.members + quantiles
    bounds = _date_bounds(plan, str(k), members, scan.source.timestamp) if plan.date_bounds else []
    conditions = list(dict.fromkeys(row_source(m).condition for m in members))
    if None not in conditions:
        bounds.append("(" + " OR ".join(f"({c})" for c in conditions) + ")")
    if scan.identity is None:
        join = f"eligible u\n  JOIN ({scan.source.relation}) s ON {scan.key} = u.wb_unit"
    else:
        join = (
            f"eligible u\n  JOIN {scan.identity} m ON m.wb_unit = u.wb_unit\n"
            f"  JOIN ({scan.source.relation}) s ON {scan.key} = m.wb_other"
        )
    branches = [bounds]
    if plan.refresh == "update":  # the new rows; through an identity map also every row of re-mapped units
        new_rows = _refresh_bounds(scan.source.timestamp)
        branches = (
            [bounds + new_rows]
            if scan.identity is None
            else [[*bounds, *new_rows, "NOT u.wb_remapped"], [*bounds, "u.wb_remapped"]]
        )
    select = f"SELECT {', '.join(unit_cols)},\n    " + ",\n    ".join(row_cols) + f"\n  FROM {join}"
    ctes = [
        f"rows_{k} AS (\n  "
        + "\n  UNION ALL\n  ".join(select + (f"\n  WHERE {' AND '.join(b)}" if b else "") for b in branches)
        + "\n)"
    ]
    if sums:
        by = "wb_key, wb_settled" if plan.refresh else "wb_key"
        ctes.append(f"source_{k} AS (\n  SELECT {by}, {', '.join(sums)}\n  FROM rows_{k} GROUP BY {by}\n)")
    return ctes


def _parts_owner(plan: _Plan, k: int) -> str:
    """The relation ``raw_per_unit`` reads scan ``k``'s per-unit parts from: ``source_<k>``
    (joined on ``wb_key``), or with a state each unit's own row (``u``: they ride with the unit)."""
    return "u" if plan.state is not None else f"source_{k}"


def _metric_ctes(plan: _Plan) -> list[str]:
    """The scans, then ``raw_per_unit`` (every unit, after activation), percentile caps (over the
    analysed units) and ``per_unit``."""
    ctes, joins, raw_cols = [], [], []
    for scan in plan.scans:
        src = _parts_owner(plan, scan.index)
        if plan.state is None:
            ctes += _scan_ctes(plan, scan)
        if not scan.base and scan.activation is None:
            continue
        if plan.state is None:
            joins.append(f"LEFT JOIN {src} ON {src}.wb_key = u.wb_key")
        for metric in scan.base:
            i = plan.index[metric.name]
            rows = f"COALESCE({src}.m{i}_rows, 0)"
            main = metric.kind.unit_value_sql(rows, f"{src}.m{i}_value")
            raw_cols += [f"CAST({main} AS DOUBLE PRECISION) AS m{i}_main", f"{rows} AS m{i}_rows"]
            if metric.cuped_lookback_days:
                pre = metric.kind.unit_value_sql(f"COALESCE({src}.m{i}_pre, 0)", f"{src}.m{i}_pre")
                raw_cols.append(f"CAST({pre} AS DOUBLE PRECISION) AS m{i}_pre")
    unit_cols = ["wb_unit", "wb_key", "wb_first_exposure", "wb_variation", "wb_included", "wb_day"] + [
        c for _, c in plan.sets if c
    ]
    activated = (
        f"\n  WHERE COALESCE({_parts_owner(plan, plan.activation_scan)}.wb_act_rows, 0) > 0"
        if plan.activation_scan is not None
        else ""
    )
    ctes.append(
        "raw_per_unit AS (\n  SELECT "
        + ", ".join(f"u.{c}" for c in unit_cols)
        + "".join(f",\n    {c}" for c in raw_cols)
        + "\n  FROM eligible u"
        + "".join(f"\n  {join}" for join in joins)
        + activated
        + "\n)"
    )
    capped, cross = [], []
    for metric in plan.base:
        i = plan.index[metric.name]
        cap = metric.capping
        if cap is not None and cap.type == "percentile":
            nonzero = f" AND m{i}_main <> 0" if cap.ignore_zeros else ""  # GrowthBook's "ignore zeros"
            if plan.rank_value and cap.value >= 0.5:  # the value of rank ceil(n·q) in one aggregate
                ranked = plan.rank_value.format(value=f"m{i}_main", q=_double(cap.value))
                ctes.append(
                    f"cap_{i} AS (\n  SELECT {ranked} AS wb_cap\n  FROM raw_per_unit WHERE wb_included{nonzero}\n)"
                )
            else:
                ctes.append(
                    f"cap_{i} AS (\n  SELECT MIN(CASE WHEN wb_rank = CEIL(wb_n * {_double(cap.value)}) THEN m{i}_main END) AS wb_cap\n"
                    f"  FROM (SELECT m{i}_main, ROW_NUMBER() OVER (ORDER BY m{i}_main) AS wb_rank, COUNT(*) OVER () AS wb_n\n"
                    f"    FROM raw_per_unit WHERE wb_included{nonzero}) r\n)"
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
        "per_unit AS (\n  SELECT "
        + ", ".join(f"r.{c}" for c in unit_cols)
        + "".join(f",\n    {c}" for c in capped)
        + "\n  FROM raw_per_unit r"
        + "".join(f" {c}" for c in cross)
        + "\n)"
    )
    return ctes


def _quantile_ctes(plan: _Plan) -> list[str]:
    """The values of each quantile metric over the analysed units (event level: every counted
    row's non-NULL value, from its scan's rows; unit level: every unit's per-unit value of
    ``per_unit``), ranked per arm and breakdown, reduced to the order statistics; for event level
    also the per-unit cluster sums (:func:`_cluster_ctes`)."""
    sets = plan.sets
    set_cols = [c for _, c in sets if c]
    ctes = []
    for j, metric in enumerate(plan.quantiles):
        q = metric.quantile or 0.5
        carried = "".join(f", {c}" for c in set_cols)
        if metric.kind.unit_values:
            source, value, where = "per_unit", f"m{plan.index[metric.name]}_main", "wb_included"
        else:
            (scan,) = [s for s in plan.scans if j in s.quantiles]
            source, value, where = f"rows_{scan.index}", f"q{j}_v", f"wb_included AND q{j}_v IS NOT NULL"
            if plan.activation_scan is not None:  # only the activated units
                where += " AND wb_key IN (SELECT wb_key FROM per_unit)"
        ctes.append(
            f"quantile_rows_{j} AS (\n  SELECT wb_variation{carried}, wb_key, {value} AS wb_value\n"
            f"  FROM {source} WHERE {where}\n)"
        )
        windows = []
        for s, (_, col) in enumerate(sets):
            partition = "wb_variation" + (f", {col}" if col else "")
            windows += [
                f"ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY wb_value) AS wb_rank_{s}",
                f"COUNT(*) OVER (PARTITION BY {partition}) AS wb_n_{s}",
            ]
        ctes.append(
            f"quantile_ranked_{j} AS (\n  SELECT wb_variation{carried}, wb_value,\n    "
            + ",\n    ".join(windows)
            + f"\n  FROM quantile_rows_{j}\n)"
        )
        selects = [
            f"SELECT wb_variation, {s} AS wb_set, {col or repr(OVERALL)} AS wb_group, {_order_statistics(s, q)}\n"
            f"  FROM quantile_ranked_{j} GROUP BY wb_variation{f', {col}' if col else ''}"
            for s, (_, col) in enumerate(sets)
        ]
        ctes.append(f"quantile_stats_{j} AS (\n  " + "\n  UNION ALL\n  ".join(selects) + "\n)")
        if not metric.kind.unit_values:
            ctes += _cluster_ctes(j, sets)
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


def _cluster_ctes(j: int, sets: list[tuple[str, str | None]]) -> list[str]:
    """``quantile_units_<j>``: per unit with counted events, ``wb_events`` (nᵢ) and, per breakdown
    ``s``, ``wb_below_<s>`` (sᵢ against the quantile of the unit's arm in its slice, GrowthBook's
    ``value <= quantile`` per slice), and ``quantile_clusters_<j>``: the sums over units per arm
    and slice. Units without counted events add 0 to every sum and are left out here; they count
    in ``users`` (the number of clusters), as in GrowthBook's LEFT JOIN of units to events."""
    set_cols = [c for _, c in sets if c]
    below = ",\n    ".join(
        f"CAST(SUM(CASE WHEN r.wb_value <= a{s}.q_value THEN 1 ELSE 0 END) AS DOUBLE PRECISION) AS wb_below_{s}"
        for s in range(len(sets))
    )
    joins = "".join(
        f"\n  JOIN quantile_stats_{j} a{s} ON a{s}.wb_variation = r.wb_variation AND a{s}.wb_set = {s}"
        f" AND a{s}.wb_group = {f'r.{col}' if col else repr(OVERALL)}"
        for s, (_, col) in enumerate(sets)
    )
    by = ", ".join(["r.wb_variation", *(f"r.{c}" for c in set_cols), "r.wb_key"])
    units = (
        f"quantile_units_{j} AS (\n  SELECT {by}, CAST(COUNT(*) AS DOUBLE PRECISION) AS wb_events,\n    {below}\n"
        f"  FROM quantile_rows_{j} r{joins}\n  GROUP BY {by}\n)"
    )
    selects = []
    for s, (_, col) in enumerate(sets):
        sums = ", ".join(f"{expr.format(s=f'wb_below_{s}')} AS c_{stat}" for stat, expr in CLUSTER_SUMS.items())
        selects.append(
            f"SELECT wb_variation, {s} AS wb_set, {col or repr(OVERALL)} AS wb_group, {sums}\n"
            f"  FROM quantile_units_{j} GROUP BY wb_variation{f', {col}' if col else ''}"
        )
    return [units, f"quantile_clusters_{j} AS (\n  " + "\n  UNION ALL\n  ".join(selects) + "\n)"]


def _order_statistics(s: int, q: float) -> str:
    """Nearest-rank quantile (rank ceil(n·q)) and the values at ranks n·q ∓ 1.96·sqrt(n·q·(1−q))
    (floor / ceil, clipped to [1, n]) within breakdown ``s``: the order-statistic confidence
    interval of a quantile."""
    n, rank = f"wb_n_{s}", f"wb_rank_{s}"
    nq = f"{n} * {_double(q)}"
    half = f"{_double(1.96)} * SQRT({nq} * {_double(1 - q)})"
    return (
        f"COUNT(*) AS q_n, MIN(CASE WHEN {rank} = CEIL({nq}) THEN wb_value END) AS q_value,\n"
        f"    MIN(CASE WHEN {rank} = GREATEST(FLOOR({nq} - {half}), 1) THEN wb_value END) AS q_lower,\n"
        f"    MIN(CASE WHEN {rank} = LEAST(CEIL({nq} + {half}), {n}) THEN wb_value END) AS q_upper"
    )


def _sums(a: str, b: str | None, c: str | None, e: str | None) -> dict[str, str]:
    """The sums of a metric's sufficient statistics over per-unit columns: ``a`` its (numerator's)
    value, ``b`` a ratio's denominator, ``c`` the (numerator's) CUPED covariate, ``e`` a CUPED
    ratio's denominator before exposure."""
    sums = {"main_sum": f"SUM({a})", "main_sum_squares": f"SUM({a} * {a})"}
    if b is not None:
        sums |= {
            "denominator_sum": f"SUM({b})",
            "denominator_sum_squares": f"SUM({b} * {b})",
            "main_denominator_sum_product": f"SUM({a} * {b})",
        }
    if c is not None:
        sums |= {
            "covariate_sum": f"SUM({c})",
            "covariate_sum_squares": f"SUM({c} * {c})",
            "main_covariate_sum_product": f"SUM({a} * {c})",
        }
    if e is not None:
        sums |= {
            "denominator_pre_sum": f"SUM({e})",
            "denominator_pre_sum_squares": f"SUM({e} * {e})",
            "main_post_denominator_pre_sum_product": f"SUM({a} * {e})",
            "main_pre_denominator_post_sum_product": f"SUM({c} * {b})",
            "main_pre_denominator_pre_sum_product": f"SUM({c} * {e})",
            "denominator_post_denominator_pre_sum_product": f"SUM({b} * {e})",
        }
    return sums


def _metric_sums(plan: _Plan, metric: Metric) -> dict[str, str]:
    """Every sum of ``metric``'s sufficient statistics over ``per_unit``; for a capped metric
    also each over the values before capping, as ``<stat>_uncapped``."""
    ratio = metric.kind.shape == RATIO
    main = metric.numerator.name if ratio else metric.name
    den = metric.denominator.name if ratio else None
    cov = plan.pre_parts.get((metric.name, "numerator"), main) if metric.cuped_lookback_days else None
    den_pre = plan.pre_parts[(metric.name, "denominator")] if metric.cuped_lookback_days and ratio else None
    capped = {part.name for part in plan.parts_of(metric) if part.capping is not None}

    def column(name: str | None, part: str, uncapped: bool) -> str | None:
        if name is None:
            return None
        return f"m{plan.index[name]}_{part}" + ("_uncapped" if uncapped and name in capped else "")

    def over(uncapped: bool) -> dict[str, str]:
        return _sums(
            *(column(n, p, uncapped) for n, p in ((main, "main"), (den, "main"), (cov, "pre"), (den_pre, "pre")))
        )

    sums = over(False)
    if capped:  # every sum again over the values before capping (GrowthBook's *_uncapped columns)
        sums |= {f"{stat}_uncapped": expr for stat, expr in over(True).items()}
    return sums


def experiment_query(
    config: Config,
    experiment: ExperimentConfig,
    dimensions: tuple[str, ...] = (),
    top_n: int = DEFAULT_TOP_N,
    metrics: tuple[Metric, ...] | None = None,
    strata: tuple[str, ...] = (),
    dialect: Dialect | None = None,
    state: str | None = None,
) -> CompiledQuery:
    """The experiment in one query: per variation (``__multiple__`` and unknown ones included)
    and breakdown (``wb_set``, named by ``sets``: overall, each of ``dimensions``, the
    post-stratification ``strata`` — each unit's values of those dimensions joined with
    :data:`STRATA_SEPARATOR` — and the first-exposure days), ``users`` and, except for days, the
    sufficient statistics of ``metrics`` (default: the experiment's). Capped metrics also get
    each sum before capping as ``<stat>_uncapped``. With the ``dialect`` of the engine it runs on,
    the text may use that engine's aggregates (:attr:`~workbench.db.dialects.Dialect.first_by`,
    :attr:`~workbench.db.dialects.Dialect.rank_value`) and leaves
    out the constant date bounds of the metric scans where they hurt its plans
    (:attr:`~workbench.db.dialects.Dialect.scan_date_bounds`). With ``state`` (the table an
    incremental refresh wrote, :func:`state_refresh_query`) the units and their per-unit parts are
    read from it instead of the source tables; the rest of the query is the same."""
    plan = _plan(config, experiment, dimensions, top_n, metrics, strata)
    if dialect is not None:
        plan.first_by, plan.date_bounds, plan.numbered, plan.rank_value = (
            dialect.first_by,
            dialect.scan_date_bounds,
            dialect.numbered_units,
            dialect.rank_value,
        )
    if state is not None:
        plan.state, plan.numbered = state, False
        plan.state_index = _refresh_plan(config, experiment, dialect).index
        if missing := [m.name for m in plan.base if m.name not in plan.state_index]:
            raise ConfigError(
                f"{config.path}: experiment {experiment.key!r}: the incremental state keeps the experiment's own "
                f"metrics, not {missing}; ask for those without incremental."
            )
    plan.plan_scans()
    ctes = _units_ctes(plan) + _metric_ctes(plan) + _quantile_ctes(plan)
    sets = plan.sets
    columns = [c for _, c in sets if c] + ["wb_day"]
    # The sums per finest cell (variation × every breakdown's value × first-exposure day) in one
    # aggregate over the units, then every breakdown from those few rows: sums add up.
    fine = ["COUNT(*) AS wb_users"]
    totals = [
        "CAST(wb_variation AS VARCHAR) AS variation",
        f"CASE {' '.join(f'WHEN GROUPING({c}) = 0 THEN {s}' for s, c in enumerate(columns, start=1))} ELSE 0 END AS wb_set",
        f"COALESCE({', '.join([*columns[:-1], repr(OVERALL)])}) AS dimension_value",
        "wb_day AS day",
        "CAST(SUM(wb_users) AS BIGINT) AS users",
    ]
    result: dict[str, dict[str, str]] = {}
    for j, metric in enumerate(plan.outputs):
        result[metric.name] = {}
        if metric.kind.quantile_level:  # their columns come from the quantile CTEs below
            continue
        for stat, expr in _metric_sums(plan, metric).items():
            result[metric.name][stat] = f"s{j}_{stat}"
            fine.append(f"{expr} AS s{j}_{stat}")
            totals.append(f"SUM(s{j}_{stat}) AS s{j}_{stat}")
    by = ", ".join(["wb_variation", *columns])
    ctes.append(f"cells AS (\n  SELECT {by},\n    " + ",\n    ".join(fine) + f"\n  FROM per_unit GROUP BY {by}\n)")
    grouping = ", ".join(["(wb_variation)", *(f"(wb_variation, {c})" for c in columns)])
    body = "SELECT " + ",\n  ".join(totals) + f"\nFROM cells\nGROUP BY GROUPING SETS ({grouping})"
    if plan.quantiles:
        ctes.append(f"main_stats AS (\n{body}\n)")
        outer, joins = ["m.*"], []
        for j, metric in enumerate(plan.quantiles):
            k = plan.outputs.index(metric)
            cols = result[metric.name]
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
            on = "ON {a}.wb_variation = m.variation AND {a}.wb_set = m.wb_set AND {a}.wb_group = m.dimension_value"
            joins.append(f"LEFT JOIN quantile_stats_{j} q{j} {on.format(a=f'q{j}')}")
            if not metric.kind.unit_values:  # event level: the per-unit cluster sums
                for stat in CLUSTER_SUMS:
                    cols[stat] = f"s{k}_{stat}"
                    outer.append(f"c{j}.c_{stat} AS {cols[stat]}")
                joins.append(f"LEFT JOIN quantile_clusters_{j} c{j} {on.format(a=f'c{j}')}")
        body = "SELECT " + ", ".join(outer) + "\nFROM main_stats m\n" + "\n".join(joins)
    names = (*(name for name, _ in sets), DAYS)
    return CompiledQuery(_with(ctes, body), dict(plan.params), result, names)


def unit_metrics_query(
    config: Config, experiment: ExperimentConfig, metrics: tuple[Metric, ...] | None = None
) -> CompiledQuery:
    """One row per analysed unit: ``unit, variation, first_exposure`` and per base metric
    ``n_<metric>`` (per-unit value after capping) and ``pct_<metric>`` (1 if any row counted)."""
    plan = _plan(config, experiment, (), DEFAULT_TOP_N, metrics)
    plan.plan_scans()
    ctes = _units_ctes(plan) + _metric_ctes(plan)
    cols = ["wb_unit AS unit", "wb_variation AS variation", "wb_first_exposure AS first_exposure"]
    for metric in plan.base:
        if metric.name in plan.hidden:
            continue
        i = plan.index[metric.name]
        cols += [f"m{i}_main AS n_{metric.name}", f"CASE WHEN m{i}_rows > 0 THEN 1 ELSE 0 END AS pct_{metric.name}"]
    body = "SELECT " + ",\n  ".join(cols) + "\nFROM per_unit WHERE wb_included"
    return CompiledQuery(_with(ctes, body), dict(plan.params))


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
    dimensions: tuple[str, ...],
    top_n: int,
    metrics: tuple[Metric, ...] | None,
    strata: tuple[str, ...] = (),
) -> _Plan:
    aq = experiment.assignment_query
    dimensions = (dimensions,) if isinstance(dimensions, str) else tuple(dimensions)
    strata = (strata,) if isinstance(strata, str) else tuple(strata)
    for name in dimensions + strata:
        if name not in aq.dimensions:
            raise ConfigError(
                f"{config.path}: {shown(name)} is not a dimension of assignment query {aq.name!r} used by experiment "
                f"{experiment.key!r}; choose one of {list(aq.dimensions)}." + did_you_mean(name, aq.dimensions)
            )
    if len(set(strata)) != len(strata) or len(set(dimensions)) != len(dimensions):
        raise ConfigError(
            f"dimensions {list(dimensions)} and post-stratification strata {list(strata)} must each be distinct."
        )
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise ConfigError(f"top_n must be a positive integer, not {top_n!r}.")
    plan = _Plan(config, experiment, metrics)
    plan.top_n = top_n
    plan.dimensions = dimensions
    plan.strata = strata
    return plan


def _with(ctes: list[str], body: str) -> str:
    return "WITH " + ",\n".join(ctes) + "\n" + body


# -- Incremental refresh: the state of an experiment and the queries that keep it ----------------
# The state is one row per unit (its first exposure, variation or __multiple__, every dimension
# of the assignment query at first exposure, wb_raw_<k> in the query's order) with each base
# metric's per-unit parts p<i>_rows, p<i>_value, p<i>_pre (i: the metric's index in the plan of all
# the experiment's metrics) and the activation metric's wb_act_rows: once over every row so far,
# and once (suffix _s, "settled") over the rows older than the settled boundary, which a later
# run never reads again. docs/experiment-engine.md#incremental-refresh gives the argument.
SETTLED = "_s"


def _parts(plan: _Plan, scans: list[_Scan]) -> list[tuple[str, str, tuple[int, str]]]:
    """Per part of the scans' metrics: (state column, SQL type, (scan index, its ``source_<k>``
    column)). State columns are numbered by the plan of all the experiment's metrics."""
    index = plan.state_index if plan.state_index is not None else plan.index
    parts = []
    for scan in scans:
        for metric in scan.base:
            i, j = plan.index[metric.name], index[metric.name]
            parts.append((f"p{j}_rows", "BIGINT", (scan.index, f"m{i}_rows")))
            if metric.kind.value_aggregate:
                parts.append((f"p{j}_value", "DOUBLE PRECISION", (scan.index, f"m{i}_value")))
            if metric.cuped_lookback_days:
                kind = "DOUBLE PRECISION" if metric.kind.value_aggregate else "BIGINT"
                parts.append((f"p{j}_pre", kind, (scan.index, f"m{i}_pre")))
        if scan.activation is not None:
            parts.append(("wb_act_rows", "BIGINT", (scan.index, "wb_act_rows")))
    return parts


def _refresh_plan(config: Config, experiment: ExperimentConfig, dialect: Dialect | None) -> _Plan:
    """The plan of all the experiment's metrics with every dimension of its assignment query,
    refusing (one sentence) what the state cannot yet keep exactly."""
    plan = _plan(config, experiment, experiment.assignment_query.dimensions, DEFAULT_TOP_N, None)
    plan.first_by = dialect.first_by if dialect is not None else None
    plan.plan_scans()
    where = f"{config.path}: experiment {experiment.key!r}"
    for metric in plan.quantiles:
        if not metric.kind.unit_values:
            raise ConfigError(
                f"{where}: incremental refresh does not keep the event-level quantile metric {metric.name!r} yet "
                "(its rows, not per-unit parts, make the statistic); analyse it without --incremental."
            )
    return plan


def _state_parts(plan: _Plan) -> list[str]:
    """The per-unit parts an analysis reads from the state (each named as a scan names it,
    ``m<i>_rows`` …), carried with each unit from ``exposures`` on; none without a state."""
    return [] if plan.state is None else [name for _, _, (_, name) in _parts(plan, plan.scans)]


def _state_exposures(plan: _Plan, dims: list[str]) -> str:
    """``exposures`` read from the state: one row per unit at its first exposure, with its
    variation (``__multiple__`` stays so), the stored values of ``dims`` and the per-unit parts of
    the scans (read from the unit's own row: no join back by unit id)."""
    columns = plan.assignment.dimensions
    raw = "".join(f", s.wb_raw_{columns.index(d)} AS wb_raw_{k}" for k, d in enumerate(dims))
    parts = "".join(f", s.{column} AS {name}" for column, _, (_, name) in _parts(plan, plan.scans))
    return (
        f"exposures AS (\n  SELECT s.wb_unit, s.wb_first_exposure AS wb_ts, s.wb_variation{raw}{parts}\n"
        f"  FROM {plan.state} s\n)"
    )


def _settled_flag(ts: str) -> str:
    """1 for a row older than the new settled boundary (it is summed into the settled parts)."""
    return f"CASE WHEN {ts} < :wb_settled_new THEN 1 ELSE 0 END AS wb_settled"


def _refresh_bounds(ts: str) -> list[str]:
    """The rows an update reads: those since the last settled boundary, and for units whose parts
    are rebuilt (``wb_fresh``: first exposed since that boundary) also their CUPED lookback."""
    return [f"{ts} >= :wb_rows_since", f"({ts} >= :wb_settled_old OR u.wb_fresh)"]


def state_refresh_query(
    config: Config, experiment: ExperimentConfig, state: str, build: bool, dialect: Dialect, units: str | None = None
) -> CompiledQuery:
    """The state rows a refresh writes. ``build``: every unit, from every row (the table
    ``state`` is not read). Else an update of ``state``: the rows of the units that have an
    exposure or a metric row since the settled boundary ``:wb_settled_old``, reading only the
    exposures since it and the metric rows since ``:wb_rows_since`` (that boundary less the
    longest CUPED lookback); bind also ``:wb_settled_new``, the boundary this run settles. Units
    first exposed since the old boundary get their parts rebuilt from their rows; the others add
    the new rows to their settled parts, except that a unit whose ids in an identity map changed
    (``wb_remapped``) gets the parts of the scans through that map rebuilt from every row. A map
    whose SQL returns a ``timestamp`` is read since the old boundary (every row for the units
    first exposed since), its older pairs taken from the units' stored ids.

    With ``units`` (a table name in the state's schema), an update stages the units
    (``eligible``) in that table and each identity map the scans join in ``<units>_map_<n>`` (a
    map read whole before the units, which read it too; one with a timestamp after them, as
    their ids unnested) (:attr:`CompiledQuery.stages`), and the query reads them: an engine that
    plans from table statistics (:attr:`~workbench.db.dialects.Dialect.analyze_after_write`) then
    knows their sizes."""
    plan = _refresh_plan(config, experiment, dialect)
    plan.refresh = "build" if build else "update"
    units_ctes = _units_ctes(plan)
    assert units_ctes[-1].startswith("eligible AS")
    units_ctes.pop()  # replaced by the units of the state below
    raw = [f"wb_raw_{k}" for k in range(len(plan.dimensions))]
    unit_cols = ["wb_unit", "wb_first_exposure", "wb_variation", *raw]
    source = "first_exposures" if plan.dimensions else "units"
    parts = _parts(plan, plan.scans)
    ids = [f"wb_ids_{n}" for n in range(len(plan.identity))]  # per identity map, the unit's ids in it
    # the stored settled parts and ids ride along with each unit (o_<column>), so the rows written
    # need no second join to the state
    carried = [f"{column}{SETTLED}" for column, _, _ in parts] + ids
    units_ctes.append(f"recomputed AS (\n  SELECT {', '.join(unit_cols)} FROM {source}\n)")
    if build:
        units_ctes.append("merged AS (\n  SELECT *, TRUE AS wb_fresh, TRUE AS wb_touched FROM recomputed\n)")
    else:
        # A unit first exposed before the old boundary keeps its first exposure and dimension
        # values (its exposures since are later); its variation becomes __multiple__ if a new one
        # differs. Any other unit has all its exposures since the boundary: recomputed is whole.
        settled = "o.wb_first_exposure < :wb_settled_old"
        kept = [f"CASE WHEN {settled} THEN o.{c} ELSE r.{c} END AS {c}" for c in ["wb_first_exposure", *raw]]
        variation = (
            f"CASE WHEN {settled} AND r.wb_variation <> o.wb_variation THEN '{MULTIPLE}' "
            f"WHEN {settled} THEN o.wb_variation ELSE r.wb_variation END AS wb_variation"
        )
        kept.insert(1, variation)
        units_ctes.append(
            f"merged AS (\n  SELECT r.wb_unit, {', '.join(kept)},\n"
            f"    CASE WHEN {settled} THEN FALSE ELSE TRUE END AS wb_fresh, TRUE AS wb_touched"
            + "".join(f", o.{c} AS o_{c}" for c in carried)
            + f"\n  FROM recomputed r LEFT JOIN {state} o ON o.wb_unit = r.wb_unit\n  UNION ALL\n"
            f"  SELECT {', '.join(f'o.{c}' for c in unit_cols)}, FALSE, FALSE"
            + "".join(f", o.{c}" for c in carried)
            + f" FROM {state} o\n"
            "  WHERE NOT EXISTS (SELECT 1 FROM recomputed r WHERE r.wb_unit = o.wb_unit)\n)"
        )
    shifted = "".join(f", {_exposure_shift(sec / 3600)} AS {col}" for sec, col in plan.shift_columns.items())
    # A unit whose set of ids in an identity map changed since the last run (a pair added or gone)
    # is re-mapped: the scans through that map rebuild its parts from every row.
    # A map whose SQL returns a timestamp is read only since the old boundary (and whole for the
    # fresh units, which are rebuilt): a unit's ids are its stored ones and those new pairs, and
    # the map the scans join is the units' ids unnested.
    current, remapped, maps = "", [], []
    for n, ((j, other), name) in enumerate(plan.identity.items()):
        if build or not config.identity_joins[j].timestamp:
            units_ctes.append(
                f"ids_{n} AS (\n  SELECT m.wb_unit, {dialect.sorted_array.format(value='m.wb_other')} AS wb_ids\n"
                f"  FROM {name} m WHERE m.wb_unit IN (SELECT wb_unit FROM merged)\n  GROUP BY m.wb_unit\n)"
            )
            ids_now = f"i{n}.wb_ids"
        else:
            since = (
                f"(j.timestamp >= :wb_settled_old OR j.{plan.unit_type} IN (SELECT wb_unit FROM merged WHERE wb_fresh))"
            )
            units_ctes += [
                f"pairs_{n} AS (\n{_identity_pairs(plan, j, other, since)}\n)",
                f"ids_{n} AS (\n  SELECT p.wb_unit, {dialect.sorted_array.format(value='p.wb_other')} AS wb_ids FROM (\n"
                f"    SELECT wb_unit, wb_other FROM pairs_{n} WHERE wb_unit IN (SELECT wb_unit FROM merged)\n"
                f"    UNION\n    SELECT wb_unit, UNNEST(o_wb_ids_{n}) AS wb_other FROM merged\n"
                f"    WHERE NOT wb_fresh AND wb_unit IN (SELECT wb_unit FROM pairs_{n})\n  ) p\n  GROUP BY p.wb_unit\n)",
            ]
            ids_now = f"CASE WHEN u.wb_fresh THEN i{n}.wb_ids ELSE COALESCE(i{n}.wb_ids, u.o_wb_ids_{n}) END"
            maps.append((name, f"SELECT wb_unit, UNNEST(wb_ids_{n}) AS wb_other FROM {{units}}"))
        current += f", {ids_now} AS wb_ids_{n}"
        remapped.append(f"u.o_wb_ids_{n} IS DISTINCT FROM {ids_now}")
    if remapped and not build:  # a build reads every row of every unit: nothing to re-map
        current += f", NOT u.wb_fresh AND ({' OR '.join(remapped)}) AS wb_remapped"
    units_ctes.append(
        f"eligible AS (\n  SELECT u.*, u.wb_unit AS wb_key{shifted}{current}\n  FROM merged u"
        + "".join(f"\n  LEFT JOIN ids_{n} i{n} ON i{n}.wb_unit = u.wb_unit" for n in range(len(ids)))
        + "\n)"
    )
    stages: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    if units is None or build:
        ctes = units_ctes + [f"{name} AS (\n  {select.format(units='eligible')}\n)" for name, select in maps]
    else:  # staged, read through NOT MATERIALIZED CTEs: each reference plans with the table's statistics
        tables = {name: f"{units}_map_{n}" for n, name in enumerate(plan.identity.values())}
        unnested = dict(maps)
        # the maps read whole come first: the units' query reads them too, from their tables
        whole = {name: key for key, name in plan.identity.items() if name not in unnested}
        units_ctes = [
            _read_table(name, tables[name]) if (name := cte.split(" AS (", 1)[0]) in whole else cte
            for cte in units_ctes
        ]
        analysed = ("wb_unit", "wb_key", "wb_fresh", *(["wb_remapped"] if ids else []))
        stages = (
            *(
                (tables[name], _identity_pairs(plan, j, other), ("wb_unit", "wb_other"))
                for name, (j, other) in whole.items()
            ),
            (units, _with(units_ctes, "SELECT * FROM eligible"), analysed),
            *((tables[name], select.format(units=units), ("wb_unit", "wb_other")) for name, select in maps),
        )
        ctes = [_read_table("eligible", units), *(_read_table(name, table) for name, table in tables.items())]
    for scan in plan.scans:
        ctes += _scan_ctes(plan, scan)
        names = [name for _, _, (k, name) in parts if k == scan.index]
        sums = ", ".join(f"SUM(CASE WHEN wb_settled = 1 THEN {n} END) AS {n}{SETTLED}, SUM({n}) AS {n}" for n in names)
        ctes.append(f"delta_{scan.index} AS (\n  SELECT wb_key, {sums}\n  FROM source_{scan.index} GROUP BY wb_key\n)")
    cols = [f"u.{c}" for c in unit_cols + ids]
    for column, kind, (k, name) in parts:
        rebuilt = "u.wb_fresh" if plan.scans[k].identity is None else "u.wb_fresh OR u.wb_remapped"
        settled = "" if build else f"CASE WHEN {rebuilt} THEN 0 ELSE u.o_{column}{SETTLED} END + "
        cols += [
            f"CAST({settled}COALESCE(d{k}.{name}{SETTLED}, 0) AS {kind}) AS {column}{SETTLED}",
            f"CAST({settled}COALESCE(d{k}.{name}, 0) AS {kind}) AS {column}",
        ]
    joins = "".join(f"\nLEFT JOIN delta_{s.index} d{s.index} ON d{s.index}.wb_key = u.wb_key" for s in plan.scans)
    body = f"SELECT {', '.join(cols)}\nFROM eligible u" + joins
    if not build:
        changed = [
            "u.wb_touched",
            *(["u.wb_remapped"] if ids else []),
            *(f"d{s.index}.wb_key IS NOT NULL" for s in plan.scans),
        ]
        body += f"\nWHERE {' OR '.join(changed)}"
    return CompiledQuery(_with(ctes, body), dict(plan.params), stages=stages)


def _read_table(name: str, table: str) -> str:
    """CTE ``name`` reading ``table``, inlined at each reference (its statistics plan every join)."""
    return f"{name} AS NOT MATERIALIZED (\n  SELECT * FROM {table}\n)"


def lookback_hours(config: Config, experiment: ExperimentConfig) -> float:
    """The longest CUPED lookback (hours) of the experiment's metrics: how far before the settled
    boundary an update reads, for units first exposed since it."""
    plan = _refresh_plan(config, experiment, None)
    return max([0.0, *((m.cuped_lookback_days or 0) * 24.0 for m in plan.base)])


def watermark_query(experiment: ExperimentConfig, since: bool) -> CompiledQuery:
    """The latest exposure of the experiment (``watermark``), with ``since``: among those at or
    after ``:wb_settled_old``."""
    aq = experiment.assignment_query
    where = ["e.experiment_id = :experiment_key", "e.timestamp IS NOT NULL"]
    params: dict[str, Any] = {"experiment_key": experiment.key}
    if experiment.start is not None:
        where.append("e.timestamp >= :start")
        params["start"] = experiment.start
    if experiment.end is not None:
        where.append("e.timestamp <= :end")
        params["end"] = experiment.end
    if since:
        where.append("e.timestamp >= :wb_settled_old")
    sql = f"SELECT MAX(e.timestamp) AS watermark FROM ({aq.sql}) e\nWHERE {' AND '.join(where)}"
    return CompiledQuery(sql, params)


def settled_rows_query(config: Config, experiment: ExperimentConfig) -> CompiledQuery:
    """The number of source rows (the experiment's exposures, every row of each relation its
    metrics read and of each identity join with a timestamp they are reached through) older than
    ``:wb_settled_old`` (``seen``) and than ``:wb_settled_new`` (``settled``), in one pass over each.
    ``settled`` is stored with the new boundary; at the next run ``seen`` less the stored number is
    the rows that arrived too late to be read (or, negative, that were deleted)."""
    plan = _refresh_plan(config, experiment, None)
    aq = plan.assignment
    counted = [(f"({aq.sql}) e", "e.timestamp", "e.experiment_id = :experiment_key")]
    relations = dict.fromkeys((scan.source.relation, scan.source.timestamp) for scan in plan.scans)
    counted += [(f"({rel}) s", ts, None) for rel, ts in relations]
    joins = dict.fromkeys(plan.config.identity_joins[j] for j, _ in plan.identity)
    counted += [(f"({join.sql}) j", "j.timestamp", None) for join in joins if join.timestamp]
    sums = []
    for source, ts, where in counted:
        both = ", ".join(f"COUNT(CASE WHEN {ts} < :wb_settled_{b} THEN 1 END) AS {b}" for b in ("old", "new"))
        sums.append(f"SELECT {both} FROM {source}" + (f" WHERE {where}" if where else ""))
    body = "\n  UNION ALL\n  ".join(sums)
    sql = f"SELECT SUM(old) AS seen, SUM(new) AS settled FROM (\n  {body}\n) c"
    return CompiledQuery(sql, {"experiment_key": experiment.key})


def state_schema_sql(schema: str) -> str:
    """The schema of the state on a server (a validated lower-case name), created if missing."""
    return f"CREATE SCHEMA IF NOT EXISTS {schema}"


# the bookkeeping columns of an experiment's refresh, after experiment_key (then refreshed_at)
_BOOKKEEPING = [
    ("units_table", "VARCHAR(100)"),
    ("definition_hash", "VARCHAR(64)"),
    ("watermark", "TIMESTAMP"),
    ("settled_before", "TIMESTAMP"),
    ("late_data_hours", "DOUBLE PRECISION"),
    ("settled_rows", "BIGINT"),
]


def state_table_sql(schema: str, dialect: Dialect) -> str:
    """The table of every experiment's refresh bookkeeping in ``schema`` (created if missing): one
    row per experiment; on a store without transactions a log, to which each run appends a row
    with its ``generation`` (the newest row is the state: the append publishes a run)."""
    log = dialect.state_in_generations
    key = "experiment_key VARCHAR(200)" + ("" if log else " PRIMARY KEY")
    columns = [f"{name} {kind}" for name, kind in _BOOKKEEPING] + (["generation BIGINT"] if log else [])
    return (
        f"CREATE TABLE IF NOT EXISTS {schema}.experiment_state (\n  {key}, {', '.join(columns[:2])},\n"
        f"  {', '.join(columns[2:])}, refreshed_at TIMESTAMP\n)" + (" USING PARQUET" if log else "")
    )


def state_table_exists_sql() -> str:
    """One row whose ``n`` is 1 when the state table ``:name`` exists in ``:schema``: a schema on
    PostgreSQL, the attached state file on DuckDB (a catalog, its tables in ``main``)."""
    return (
        "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name = :name\n"
        "  AND (table_schema = :schema OR (table_catalog = :schema AND table_schema = 'main'))"
    )


def state_row_sql(schema: str, dialect: Dialect) -> tuple[str, str | None, str]:
    """(read, delete, insert) of one experiment's row of ``experiment_state``, bound by
    ``:experiment_key`` (and the columns, to insert; ``:generation`` too on a store without
    transactions, which reads the newest row and deletes none: ``delete`` is None)."""
    table = f"{schema}.experiment_state"
    log = dialect.state_in_generations
    columns = [name for name, _ in _BOOKKEEPING] + (["generation"] if log else [])
    newest = " ORDER BY generation DESC LIMIT 1" if log else ""
    return (
        f"SELECT {', '.join(columns)} FROM {table} WHERE experiment_key = :experiment_key{newest}",
        None if log else f"DELETE FROM {table} WHERE experiment_key = :experiment_key",
        f"INSERT INTO {table} (experiment_key, {', '.join(columns)}, refreshed_at) VALUES "
        f"(:experiment_key, {', '.join(':' + c for c in columns)}, CURRENT_TIMESTAMP)",
    )


def state_write_sql(
    table: str, previous: str, staged: str, build: bool, refresh: CompiledQuery, dialect: Dialect
) -> list[str]:
    """The statements writing the rows of ``refresh`` (:func:`state_refresh_query`) into the
    state ``table``: a build replaces it; an update stages its rows in the table ``staged`` (in
    the state's schema: DuckDB writes one attached database per transaction) and replaces the
    rows of those units in ``previous`` (the state the update read). With transactions
    ``previous`` is ``table``, changed in place; without, ``table`` is a new generation: the rows
    of ``previous`` that were not staged and the staged ones. The tables the query reads
    (:attr:`CompiledQuery.stages`) are created first and dropped at the end. Where the dialect
    :attr:`~workbench.db.dialects.Dialect.analyze_after_write`, the new tables get planner
    statistics (an update changes a small share of the state's rows: the server's own autovacuum
    keeps its statistics)."""
    analyze = dialect.analyze_after_write
    if build:
        return [f"DROP TABLE IF EXISTS {table}", f"CREATE TABLE {table} AS\n{refresh.sql}"] + (
            [f"ANALYZE {table}"] if analyze else []
        )
    before = [
        statement
        for name, query, columns in refresh.stages
        for statement in [f"DROP TABLE IF EXISTS {name}", f"CREATE TABLE {name} AS\n{query}"]
        + ([f"ANALYZE {name} ({', '.join(columns)})"] if analyze else [])
    ]
    after = [f"DROP TABLE {name}" for name, _, _ in refresh.stages]
    stage = [*before, f"DROP TABLE IF EXISTS {staged}", f"CREATE TABLE {staged} AS\n{refresh.sql}"]
    if dialect.state_in_generations:
        kept = f"SELECT * FROM {previous} o WHERE NOT EXISTS (SELECT 1 FROM {staged} s WHERE s.wb_unit = o.wb_unit)"
        return [*stage, f"DROP TABLE IF EXISTS {table}",
                f"CREATE TABLE {table} AS\n{kept}\nUNION ALL\nSELECT * FROM {staged}", f"DROP TABLE {staged}", *after]  # fmt: skip
    return [
        *stage,
        *([f"ANALYZE {staged} (wb_unit)"] if analyze else []),  # the column the DELETE plans with
        f"DELETE FROM {table} WHERE wb_unit IN (SELECT wb_unit FROM {staged})",
        f"INSERT INTO {table} SELECT * FROM {staged}",
        f"DROP TABLE {staged}",
        *after,
    ]
