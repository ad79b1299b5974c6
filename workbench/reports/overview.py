"""The data overview: what is in the database, traffic per day, and the experiments logged.

Every function takes a :class:`~workbench.db.connection.Database`, runs SQL from ``sql/overview/``
(aggregated in the database) and returns a small DataFrame whose ``attrs["sql"]`` holds what ran.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from workbench.db.connection import Database
from workbench.db.sql_files import read_sql


def _query(db: Database, name: str, **params) -> pd.DataFrame:
    sql = read_sql(name)
    frame = db.sql(sql, **params)
    frame.attrs["sql"] = sql
    return frame


def table_row_counts(db: Database) -> pd.DataFrame:
    """One row per table of the database's default schema (``main``, ``public``): ``table``, ``rows``."""
    inspector = sa.inspect(db.engine)  # DuckDB's dialect lists every schema's tables unless asked for one
    names = sorted(inspector.get_table_names(schema=inspector.default_schema_name))
    if not names:
        return pd.DataFrame({"table": pd.Series(dtype=str), "rows": pd.Series(dtype="int64")})
    quote = db.dialect.quote
    sql = "\nUNION ALL\n".join(
        f"SELECT :t{i} AS table_name, COUNT(*) AS n_rows FROM {quote(name)}" for i, name in enumerate(names)
    )
    frame = db.sql(sql, **{f"t{i}": name for i, name in enumerate(names)}).rename(
        columns={"table_name": "table", "n_rows": "rows"}
    )
    frame["rows"] = frame["rows"].astype("int64")
    frame = frame.sort_values("table", ignore_index=True)
    frame.attrs["sql"] = sql
    return frame


def data_window_end(db: Database) -> dt.datetime | None:
    """The newest page view's timestamp, or None when there are none."""
    value = _query(db, "overview/last_timestamp.sql")["last_timestamp"].iloc[0]
    return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def traffic_per_day(db: Database, last_days: int = 0) -> pd.DataFrame:
    """Rows per day and series (page views, sessions, events, exposures, orders).

    ``last_days`` > 0 keeps only the last that many days before the newest page view.
    """
    if last_days < 0:
        raise ValueError("last_days must be 0 (all days) or a positive number of days")
    since = dt.datetime(1970, 1, 1)
    end = data_window_end(db)
    if last_days and end is not None:
        since = dt.datetime.combine(end.date() - dt.timedelta(days=last_days - 1), dt.time())
    frame = _query(db, "overview/traffic_per_day.sql", since=since)
    frame["day"] = pd.to_datetime(frame["day"])
    frame["n"] = frame["n"].astype("int64")
    return frame


def experiments_found(db: Database) -> pd.DataFrame:
    """Per experiment and variation: users, anonymous visitors, exposures, first and last exposure."""
    frame = _query(db, "overview/experiments_found.sql")
    for column in ("users", "anonymous_visitors", "exposures"):
        frame[column] = frame[column].astype("int64")
    return frame


def traffic_chart(traffic: pd.DataFrame):
    """A plotly line chart of :func:`traffic_per_day`, one line per series."""
    import plotly.express as px

    fig = px.line(
        traffic,
        x="day",
        y="n",
        color="series",
        markers=False,
        labels={"day": "day (UTC)", "n": "rows per day", "series": ""},
    )
    fig.update_layout(
        title="Traffic per day", hovermode="x unified", height=420, margin={"l": 40, "r": 20, "t": 50, "b": 40}
    )
    return fig


def experiments_chart(experiments: pd.DataFrame):
    """A plotly bar chart of users per variation for each experiment found."""
    import plotly.express as px

    fig = px.bar(
        experiments,
        x="experiment_id",
        y="users",
        color="variation_id",
        barmode="group",
        labels={"experiment_id": "experiment", "users": "distinct users", "variation_id": "variation"},
    )
    fig.update_layout(title="Users per variation", height=420, margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return fig
