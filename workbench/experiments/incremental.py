"""Incremental refresh: keep an experiment's per-unit state in the database and update it from the
rows that are new since the last run, so that a daily re-run reads about a day of data.

:func:`refresh_state` brings the state up to date (built on the first run, after a definition
changed or when asked, else updated) in one transaction (on Spark, which has none, as a new
generation of the state table that one appended row publishes); the sufficient statistics are then read
from it by the experiment query (:func:`workbench.experiments.sql.experiment_query` with
``state``). The SQL is built by :mod:`workbench.experiments.sql`; the design and its exactness
argument are in docs/experiment-engine.md#incremental-refresh.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from workbench.experiments import sql as sql_builder

if TYPE_CHECKING:
    from workbench.db import Database
    from workbench.experiments.engine import Experiment


class LateRowsWarning(UserWarning):
    """Rows arrived after their time was settled: the incremental state misses them."""


@dataclass(frozen=True)
class Refresh:
    """What a refresh did: the state ``table`` it left, whether it ``built`` it from every row
    (and ``why``), the ``watermark`` (latest exposure seen, UTC) and ``settled_before`` (rows older
    than this are never read again: later arrivals older than it need ``--full-refresh``);
    ``late_rows``: the source rows older than the previous boundary that arrived after their time
    was settled, so are missing from the state (negative: that many were deleted, and the state
    still counts them), counted again at every run until a rebuild (None after a build), and the
    ``warning`` that says so (also given as a :class:`LateRowsWarning`), or None."""

    table: str
    built: bool
    why: str
    watermark: dt.datetime | None
    settled_before: dt.datetime | None
    late_rows: int | None = None
    warning: str | None = None


def state_table(experiment: Experiment) -> str:
    """The qualified name of ``experiment``'s state table: ``<state_schema>.units_<hash of the key>``
    (on a store without transactions, each run's generation ``<n>`` of it is ``…_<n>``)."""
    digest = hashlib.sha256(experiment.key.encode()).hexdigest()[:16]
    return f"{experiment.config.state_schema}.units_{digest}"


def definition_hash(experiment: Experiment, dialect) -> str:
    """A hash of everything the state depends on: the SQL and bound values of a build (assignment
    query, dates, dimensions, every metric's rows, windows, filters and lookbacks)."""
    query = sql_builder.state_refresh_query(experiment.config, experiment.settings, "wb_state", True, dialect)
    text = query.sql + repr(sorted((k, str(v)) for k, v in query.params.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _naive_utc(value: Any) -> dt.datetime | None:
    """A database timestamp as a naive UTC datetime (sessions run in UTC)."""
    if value is None or pd.isna(value):
        return None
    value = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def open_state(db: Database, experiment: Experiment) -> Database:
    """The session an incremental analysis of ``experiment`` on ``db`` runs in
    (:func:`workbench.db.connection.connect_state`)."""
    from workbench.db.connection import connect_state

    return connect_state(db, experiment.config.state_schema)


def _table_exists(state_db: Database, run: Callable[..., list[dict[str, Any]]], table: str) -> bool:
    """Whether the state table ``table`` (``<schema>.<name>``) exists."""
    schema, name = table.split(".", 1)
    if state_db.dialect.state_in_generations:
        return name in state_db.tables(schema, name)
    return bool(run(sql_builder.state_table_exists_sql(), {"schema": schema, "name": name})[0]["n"])


@contextlib.contextmanager
def _statements(state_db: Database) -> Iterator[Callable[..., list[dict[str, Any]]]]:
    """``run(sql, params=None)``: runs one statement with bound ``params``, giving its rows as dicts;
    every statement in one transaction (a failure rolls them all back), except on a store without
    transactions (Spark), where each runs on its own."""
    if state_db.dialect.state_in_generations:
        yield lambda sql, params=None: state_db.sql(sql, limit=None, **(params or {})).to_dict("records")
        return
    with state_db.transaction() as conn:

        def run(sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
            result = conn.execute(sa.text(sql), params or {})
            return [dict(r) for r in result.mappings()] if result.returns_rows else []

        yield run


def refresh_state(experiment: Experiment, state_db: Database, *, full: bool = False) -> Refresh:
    """Bring ``experiment``'s state up to date on ``state_db`` (a session of
    :func:`workbench.db.connection.connect_state`): built from every row on the first run, when
    its definition hash changed, when its table is gone (deleted by hand) or with ``full``; else
    updated from the rows since the settled boundary. A failure or a killed run leaves the
    previous state as it was: the writes are one transaction, or on Spark (no transactions) a new
    generation of the state table, published by appending its bookkeeping row (older generations
    are dropped after)."""
    cfg, settings, dialect = experiment.config, experiment.settings, state_db.dialect
    generations = dialect.state_in_generations
    schema, base = cfg.state_schema, state_table(experiment)
    table = base
    read_row, delete_row, insert_row = sql_builder.state_row_sql(schema, dialect)
    digest = definition_hash(experiment, dialect)
    late = dt.timedelta(hours=settings.late_data_hours)
    key = {"experiment_key": experiment.key}
    suffix = base.rsplit("_", 1)[-1]  # the key's hash: names the run's working tables
    staged = f"{schema}.wb_staged_{suffix}"
    with _statements(state_db) as run:
        if not dialect.embedded:  # on an embedded engine the schema is the attached state file
            run(sql_builder.state_schema_sql(schema))
        run(sql_builder.state_table_sql(schema, dialect))
        row = next(iter(run(read_row, key)), None)
        why = (
            "--full-refresh" if full
            else "first run" if row is None
            else "definition changed" if row["definition_hash"] != digest
            else "state table missing" if not _table_exists(state_db, run, row["units_table"])
            else ""
        )  # fmt: skip
        build = bool(why)
        previous = row["units_table"] if generations and row is not None else table
        generation = int(row["generation"]) + 1 if generations and row is not None else 1
        if generations:  # a new table each run: the one the bookkeeping names stays intact until then
            table = f"{base}_{generation}"
        old_watermark = None if build else _naive_utc(row["watermark"])
        settled_old = None if build else _naive_utc(row["settled_before"])
        mark = sql_builder.watermark_query(settings, since=not build)
        marks = {**mark.params, **({} if build else {"wb_settled_old": settled_old})}
        new = _naive_utc(run(mark.sql, marks)[0]["watermark"])
        watermark = max((w for w in (old_watermark, new) if w is not None), default=None)
        candidates = [s for s in (settled_old, watermark - late if watermark else None) if s is not None]
        settled_new = max(candidates, default=dt.datetime(1970, 1, 1))
        # an engine that plans from table statistics reads the units (and maps) from analysed tables
        units = f"{schema}.wb_units_{suffix}" if dialect.analyze_after_write else None
        query = sql_builder.state_refresh_query(cfg, settings, previous, build, dialect, units)
        params = {**query.params, "wb_settled_new": settled_new}
        if not build:
            lookback = dt.timedelta(hours=sql_builder.lookback_hours(cfg, settings))
            params |= {"wb_settled_old": settled_old, "wb_rows_since": settled_old - lookback}
        counted = sql_builder.settled_rows_query(cfg, settings)
        bounds = {"wb_settled_old": settled_old or settled_new, "wb_settled_new": settled_new}
        counts = run(counted.sql, {**counted.params, **bounds})[0]
        seen, settled_rows = counts["seen"], counts["settled"]
        late_rows = None if build or row["settled_rows"] is None else int(seen) - int(row["settled_rows"])
        # the rows the state holds: late ones are not among them (deleted ones still are), so every
        # run until a rebuild counts them again
        held = int(settled_rows) - (late_rows or 0)
        for statement in sql_builder.state_write_sql(table, previous, staged, build, query, dialect):
            run(statement, params)
        if delete_row is not None:
            run(delete_row, key)
        run(insert_row, {**key, "units_table": table, "definition_hash": digest, "watermark": watermark,
                         "settled_before": settled_new, "late_data_hours": settings.late_data_hours,
                         "settled_rows": held, "generation": generation})  # fmt: skip
        if generations:  # published: the generations before it (and any a killed run left) go
            for old in state_db.tables(schema, f"{base.split('.', 1)[1]}_*"):
                if f"{schema}.{old}" != table:
                    run(f"DROP TABLE IF EXISTS {schema}.{old}")
    warning = _late_rows_sentence(experiment.key, late_rows, settled_old) if late_rows else None
    if warning:
        warnings.warn(warning, LateRowsWarning, stacklevel=2)
    return Refresh(table, build, why, watermark, settled_new, late_rows, warning)


def _late_rows_sentence(key: str, late_rows: int, settled: dt.datetime | None) -> str:
    """What ``late_rows`` (non-zero: arrived late, or negative, deleted) rows older than the
    boundary ``settled`` mean for experiment ``key``'s state, and what to do."""
    plural = abs(late_rows) != 1
    rows = f"{abs(late_rows):,} {'' if late_rows > 0 else 'fewer '}source row{'s' if plural else ''}"
    are = "are" if plural else "is"
    what = (
        f"{rows} older than {settled} (the watermark less late_data_hours) arrived after it was settled and "
        f"{are} not in the incremental state"
        if late_rows > 0
        else f"{rows} {are} older than {settled} than when it was settled (rows were deleted) and the "
        "incremental state still counts them"
    )
    return f"experiment {key!r}: {what}; rebuild it with --full-refresh (or raise late_data_hours)."
