"""Experiments from ``workbench.yml``, run on the database: sufficient statistics, health facts
and per-unit metrics. Only small aggregates come back to Python.

``db`` is a :class:`workbench.db.Database`: DuckDB, PostgreSQL or Spark SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError
from workbench.experiments import sql as sql_builder
from workbench.experiments.config import (
    Config,
    ExperimentConfig,
    Metric,
    filter_columns,
    load_config,
    select_columns,
)
from workbench.metric_types import STAT_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

STATS_COLUMNS = ["metric", "metric_type", "dimension", "dimension_value", "variation", "users", "count", *STAT_COLUMNS]


@dataclass(frozen=True)
class Experiment:
    """One configured experiment and the config it belongs to."""

    config: Config
    settings: ExperimentConfig

    @property
    def key(self) -> str:
        return self.settings.key

    @property
    def variations(self) -> tuple[str, ...]:
        return self.settings.variations

    @property
    def control(self) -> str | None:
        """The control variation id (default: the first variation)."""
        return self.settings.control or (self.settings.variations[0] if self.settings.variations else None)

    @property
    def weights(self) -> tuple[float, ...]:
        """Configured traffic split (sums to 1), else an equal split over the variations."""
        n = len(self.settings.variations)
        return self.settings.weights or tuple(1 / n for _ in range(n))

    @property
    def metrics(self) -> dict[str, Metric]:
        """The experiment's metrics (goal, secondary, guardrail) by name."""
        return {m.name: m for m in self.settings.metrics}

    @property
    def metric_groups(self) -> dict[str, tuple[str, ...]]:
        """Metric names per group: ``{"goal": (...), "secondary": (...), "guardrail": (...)}``."""
        s = self.settings
        return {
            group: tuple(m.name for m in metrics)
            for group, metrics in (
                ("goal", s.goal_metrics),
                ("secondary", s.secondary_metrics),
                ("guardrail", s.guardrail_metrics),
            )
        }

    @property
    def inverse(self) -> dict[str, bool]:
        """Per metric: True when lower is better."""
        return {name: m.inverse for name, m in self.metrics.items()}

    @property
    def analysis(self) -> dict[str, Any]:
        """The entry's ``analysis:`` mapping (statistics settings) as written."""
        return dict(self.settings.analysis)

    def __repr__(self) -> str:
        return f"<Experiment {self.key!r}: variations {list(self.variations)}, metrics {list(self.metrics)}>"


def experiment(key: str, config: Config | None = None) -> Experiment:
    """The experiment ``key`` of ``config`` (default: the project's ``workbench.yml``)."""
    config = config or load_config()
    return Experiment(config, config.experiment(key))


def experiments(config: Config | None = None) -> list[Experiment]:
    """Every configured experiment, in file order."""
    config = config or load_config()
    return [Experiment(config, e) for e in config.experiments.values()]


def chosen_metrics(experiment: Experiment, metrics: Sequence[Metric | str] | None) -> tuple[Metric, ...]:
    """``metrics`` (metric objects or names of the experiment's config) as metric objects, default
    the experiment's own: names given by a caller are resolved here, once."""
    if metrics is None:
        return experiment.settings.metrics
    return tuple(m if isinstance(m, Metric) else experiment.config.metric(m) for m in metrics)


def _database(db):
    if db is None:
        from workbench.db.connection import connect

        return connect()
    return db


def check_columns(experiment: Experiment, db) -> None:
    """Probe (``WHERE 1 = 0``) every SQL whose columns sqlglot could not read, and raise a
    :class:`ConfigError` naming the entry and the missing columns before the real query runs."""
    cfg, s = experiment.config, experiment.settings
    aq = s.assignment_query
    checks: list[tuple[str, str, list[str]]] = [
        (
            f"assignment query {aq.name!r}",
            aq.sql,
            [aq.identifier_type, "timestamp", "experiment_id", "variation_id", *aq.dimensions],
        )
    ]
    for metric in s.metrics + ((s.activation_metric,) if s.activation_metric else ()):
        for m in metric.parts:
            if m.fact_table is not None:  # the fact table's own SQL, with what the metric reads
                needed = [*m.fact_table.identifier_types, "timestamp", *([m.column] if m.column else [])]
                needed += sorted(filter_columns(m.row_filter))
                checks.append((f"fact table {m.fact_table.name!r} (metric {m.name!r})", m.fact_table.sql, needed))
            else:
                checks.append((f"metric {m.name!r}", m.sql or "", m.kind.required_columns(m.identifier_types)))
    checks += [(f"identity_joins[{i}]", j.sql, list(j.identifier_types)) for i, j in enumerate(cfg.identity_joins)]
    for where, sql, needed in checks:
        if select_columns(sql) is not None:
            continue  # already checked statically when the config was loaded
        columns = [c.lower() for c in db.sql(sql_builder.probe_columns_query(sql), limit=None).columns]
        missing = [c for c in needed if c not in columns]
        if missing:
            raise ConfigError(
                f"{cfg.path}: {where}: the SQL returns {columns} but needs {missing}; add them to its SELECT (e.g. `userId AS user_id`)."
            )


def _run(query: sql_builder.CompiledQuery, db, show_sql: bool):
    if show_sql:
        print(query.sql)
        if query.params:
            print("-- parameters:", {k: str(v) for k, v in query.params.items()})
    frame = db.sql(query.sql, limit=None, **query.params)
    frame.attrs["sql"], frame.attrs["params"] = query.sql, dict(query.params)
    return frame


@dataclass(frozen=True)
class Facts:
    """What one query of an experiment returns: ``stats`` (the sufficient-statistics table),
    ``units`` (units per dimension, dimension_value, variation and status) and ``days`` (units per
    first-exposure day and variation)."""

    stats: pd.DataFrame
    units: pd.DataFrame
    days: pd.DataFrame


def experiment_facts(
    experiment: Experiment,
    db=None,
    *,
    dimensions: Sequence[str] = (),
    top_n: int = sql_builder.DEFAULT_TOP_N,
    show_sql: bool = False,
    metrics: Sequence[Metric | str] | None = None,
    strata: Sequence[str] = (),
    incremental: bool | None = None,
    full_refresh: bool = False,
) -> Facts:
    """The sufficient statistics and health facts of ``experiment``, overall, per value of each
    of ``dimensions`` (top ``top_n`` values plus ``(other)``) and per post-stratification stratum,
    from one query (:func:`workbench.experiments.sql.experiment_query`): one pass over each
    source table. ``stats`` holds the overall rows, then the strata rows (``dimension``
    ``"__strata__"``, ``dimension_value`` the stratum key), then each dimension's rows, each block
    metric by metric, as :func:`sufficient_stats`. ``incremental`` (default: the config entry's
    ``incremental``) first brings the experiment's state up to date and reads the units and
    per-unit parts from it (:mod:`workbench.experiments.incremental`); ``full_refresh`` rebuilds
    that state from every row first. ``.attrs["refresh"]`` then says what the refresh did."""

    db = _database(db)
    check_columns(experiment, db)
    metrics = chosen_metrics(experiment, metrics)
    strata = (strata,) if isinstance(strata, str) else tuple(strata)
    state_db = None
    if full_refresh or (experiment.settings.incremental if incremental is None else incremental):
        from workbench.experiments.incremental import open_state, refresh_state

        state_db = open_state(db, experiment)
    try:
        refresh = refresh_state(experiment, state_db, full=full_refresh) if state_db is not None else None
        query = sql_builder.experiment_query(
            experiment.config, experiment.settings, dimensions, top_n, metrics, strata, db.dialect,
            refresh.table if refresh else None,
        )  # fmt: skip
        wide = _run(query, state_db or db, show_sql)
    finally:
        if state_db is not None:
            state_db.dispose()
    wide["variation"] = wide["variation"].astype(str)
    wide["users"] = wide["users"].astype("int64")
    wide["breakdown"] = wide["wb_set"].astype(int).map(dict(enumerate(query.sets)))
    stats = _stats_table(experiment, wide, query, metrics, strata)
    units, days = _health_tables(experiment, wide, query.sets[1:])
    for frame in (stats, units, days):
        frame.attrs = {"sql": query.sql, "params": query.params, "experiment": experiment.key, "refresh": refresh}
    return Facts(stats, units, days)


def _stats_table(experiment: Experiment, wide, query, metrics: tuple[Metric, ...], strata: tuple[str, ...]):
    """The sufficient-statistics table from the query's rows of the analysed variations."""
    import numpy as np
    import pandas as pd

    known = set(experiment.variations)
    analysed = wide[wide["variation"].isin(known) if known else wide["variation"] != sql_builder.MULTIPLE]
    variations = list(experiment.variations) or sorted(set(analysed["variation"]))
    # the overall rows (with the strata rows, if any) first, then each dimension's rows
    first = [sql_builder.OVERALL, sql_builder.STRATA]
    blocks = [(sql_builder.STRATA if strata else "overall", analysed[analysed["breakdown"].isin(first)])]
    blocks += [(name, analysed[analysed["breakdown"] == name]) for name in query.sets[1:] if name not in first]
    blocks = [(label, rows) for label, rows in blocks if label != sql_builder.DAYS]
    # each column's pieces (block by block, metric by metric), one frame at the end: a frame per
    # piece cost pandas 0.1 s per analysis
    pieces: dict[str, list] = {column: [] for column in STATS_COLUMNS}
    for k, (label, rows) in enumerate(blocks):
        values = set(rows["dimension_value"]) | ({sql_builder.OVERALL} if k == 0 else set())  # zero-filled when empty
        groups = (
            [sql_builder.OVERALL] * (sql_builder.OVERALL in values)
            + sorted(values - {sql_builder.OVERALL, sql_builder.OTHER})
            + [sql_builder.OTHER] * (sql_builder.OTHER in values)
        )
        index = pd.MultiIndex.from_product([groups, variations], names=["dimension_value", "variation"])
        block = rows.set_index(["dimension_value", "variation"]).reindex(index).reset_index()
        n = len(block)
        shared = {
            "dimension": np.where(block["dimension_value"] == sql_builder.OVERALL, "overall", label),
            "dimension_value": block["dimension_value"].replace(sql_builder.OVERALL, "all").to_numpy(),
            "variation": block["variation"].astype(str).to_numpy(),
            "users": block["users"].fillna(0).astype("int64").to_numpy(),
        }
        for metric in metrics:
            cols = query.columns[metric.name]
            stats = {
                stat: pd.to_numeric(block[cols[stat]], errors="coerce").to_numpy("float64", na_value=np.nan)
                if stat in cols
                else np.full(n, np.nan)
                for stat in STAT_COLUMNS
            }
            if metric.kind.quantile_level:  # an arm or slice without values: n = 0, empty sums, no quantile
                for stat in cols:
                    if stat not in ("quantile", "quantile_lower", "quantile_upper", "quantile_level"):
                        stats[stat] = np.where(np.isnan(stats[stat]), 0.0, stats[stat])
                level = stats["quantile_level"]
                stats["quantile_level"] = np.where(np.isnan(level), metric.quantile or 0.5, level)
                count = stats["quantile_n"].astype("int64")
            else:
                for stat in ("main_sum", "main_sum_squares", "main_sum_uncapped", "main_sum_squares_uncapped"):
                    if stat in cols or not stat.endswith("_uncapped"):
                        stats[stat] = np.where(np.isnan(stats[stat]), 0.0, stats[stat])
                count = shared["users"]
            piece = {"metric": [metric.name] * n, "metric_type": [metric.type] * n, **shared, "count": count, **stats}
            for column, value in piece.items():
                pieces[column].append(value)
    if pieces["metric"]:
        result = pd.DataFrame({column: np.concatenate(parts) for column, parts in pieces.items()})
    else:
        result = pd.DataFrame(columns=STATS_COLUMNS)
    for stat in ("quantile_n", "quantile_nstar"):
        result[stat] = result[stat].astype("Int64")
    return result


def _health_tables(experiment: Experiment, wide, sets: tuple[str, ...]):
    """``(units, days)`` from the query's rows of every variation; ``sets`` names the breakdowns in
    the order the units table lists them after the overall rows."""
    import pandas as pd

    known = set(experiment.variations)

    def status(v: str) -> str:
        if v == sql_builder.MULTIPLE:
            return "multiple"
        return "included" if not known or v in known else "unknown"

    units = wide[~wide["breakdown"].isin([sql_builder.DAYS, sql_builder.STRATA])].copy()
    units["dimension"] = units["breakdown"].replace(sql_builder.OVERALL, "overall")
    units["dimension_value"] = units["dimension_value"].where(units["dimension"] != "overall", "all")
    units["status"] = units["variation"].map(status)
    order = {name: k for k, name in enumerate(["overall", *sets])}  # overall, then the query's breakdowns
    units = units.sort_values(
        ["dimension", "dimension_value", "variation"],
        key=lambda s: s.map(order) if s.name == "dimension" else s,
    )[["dimension", "dimension_value", "variation", "users", "status"]].reset_index(drop=True)
    days = wide[wide["breakdown"] == sql_builder.DAYS][["day", "variation", "users"]].copy()
    days["day"] = pd.to_datetime(days["day"])
    days = days.sort_values(["day", "variation"]).reset_index(drop=True)
    return units, days


def sufficient_stats(
    experiment: Experiment,
    dimension: str | None = None,
    db=None,
    *,
    top_n: int = sql_builder.DEFAULT_TOP_N,
    show_sql: bool = False,
    metrics: Sequence[Metric | str] | None = None,
    strata: Sequence[str] = (),
) -> pd.DataFrame:
    """The sufficient-statistics table of ``docs/sufficient-statistics.md``: one row per
    (metric, dimension, dimension_value, variation), overall rows always, ``dimension`` rows (top
    ``top_n`` values plus ``(other)``) when asked. With ``strata`` (post-stratification
    dimensions) the strata rows too: ``dimension`` is ``"__strata__"`` and ``dimension_value`` the
    stratum key. ``.attrs["sql"]`` holds the query that ran (:func:`experiment_facts`)."""
    dims = (dimension,) if dimension is not None else ()
    return experiment_facts(
        experiment, db, dimensions=dims, top_n=top_n, show_sql=show_sql, metrics=metrics, strata=strata
    ).stats


def health_facts(
    experiment: Experiment,
    dimension: str | None = None,
    db=None,
    *,
    top_n: int = sql_builder.DEFAULT_TOP_N,
    show_sql: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(units, days)``: units per (dimension, dimension_value, variation) with ``status``
    ``included`` / ``multiple`` / ``unknown``; and units per first-exposure ``day`` and variation
    (:func:`experiment_facts` without metrics)."""
    dims = (dimension,) if dimension is not None else ()
    facts = experiment_facts(experiment, db, dimensions=dims, top_n=top_n, show_sql=show_sql, metrics=())
    return facts.units, facts.days


def unit_metrics(
    experiment: Experiment, db=None, *, show_sql: bool = False, metrics: Sequence[Metric | str] | None = None
) -> pd.DataFrame:
    """One row per unit (``unit, variation, first_exposure``) with ``n_<metric>`` (per-unit value)
    and ``pct_<metric>`` (1 if any row counted) per metric, zero-filled; for small data only."""
    db = _database(db)
    check_columns(experiment, db)
    query = sql_builder.unit_metrics_query(experiment.config, experiment.settings, chosen_metrics(experiment, metrics))
    frame = _run(query, db, show_sql)
    frame["variation"] = frame["variation"].astype(str)
    frame = frame.sort_values("unit", kind="stable").reset_index(drop=True)
    frame.attrs = {"sql": query.sql, "params": query.params, "experiment": experiment.key}
    return frame
