"""Look at the event store: the catalogue of event types, counts over time, one profile's merged
stream and the events still without a profile. Every aggregate is computed in the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workbench.db import Database
from workbench.errors import WorkbenchError, shown
from workbench.events.settings import EventSettings, event_settings
from workbench.events.statements import (
    TIME_BUCKETS,
    busiest_profiles_query,
    catalogue_keys,
    catalogue_types,
    event_counts_query,
    profile_of_identity,
    profile_stream_query,
    unassociated_query,
)


def event_catalogue(db: Database, *, settings: EventSettings | None = None):
    """One row per event type: events, first_seen, last_seen and ``keys`` (payload key -> an
    example value, the smallest as text)."""
    schema = (settings or event_settings()).schema
    types = db.sql(catalogue_types(schema), limit=None)
    keys = db.sql(catalogue_keys(schema), limit=None)
    examples: dict[str, dict[str, str]] = {}
    for row in keys.itertuples(index=False):
        examples.setdefault(row.type, {})[row.key] = row.example
    if types.empty:
        return types.assign(keys=[])
    types["keys"] = [examples.get(t, {}) for t in types["type"]]
    return types


def event_counts(
    db: Database,
    by: str = "day",
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    types: list[str] | None = None,
    *,
    settings: EventSettings | None = None,
):
    """Events per type per ``by`` bucket (minute, hour, day, month) with occurred_at in
    [``start``, ``end``) (UTC); columns bucket, type, events."""
    if by not in TIME_BUCKETS:
        raise WorkbenchError(f"by must be one of {TIME_BUCKETS}, not {by!r}.")
    sql, params = event_counts_query(
        (settings or event_settings()).schema, by, _moment(start, "start"), _moment(end, "end"), types
    )
    frame = db.sql(sql, limit=None, **params)
    frame.attrs["sql"] = sql
    return frame


def event_counts_chart(counts: Any, title: str = "Events per type"):
    """A plotly line chart of :func:`event_counts`' result, one line per type."""
    import plotly.express as px

    figure = px.line(counts, x="bucket", y="events", color="type", markers=True, title=title)
    figure.update_layout(xaxis_title="occurred at (UTC)", yaxis_title="events", legend_title="type")
    return figure


def profile_stream(
    db: Database,
    *,
    profile_id: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    settings: EventSettings | None = None,
):
    """The merged event stream of one profile, named by its id, a user id or an anonymous id:
    one row per event in occurred_at order, its payload as a ``data`` dict."""
    import pandas as pd

    schema = (settings or event_settings()).schema
    given = [(k, v) for k, v in (("user_id", user_id), ("anonymous_id", anonymous_id)) if v is not None]
    if (profile_id is None) == (not given) or len(given) > 1:
        raise WorkbenchError("Name exactly one of profile_id, user_id or anonymous_id.")
    if profile_id is None:
        found = db.sql(profile_of_identity(schema), kind=given[0][0], value=str(given[0][1]))
        if found.empty:
            raise WorkbenchError(
                f"No profile holds {given[0][0]} {shown(given[0][1])} yet: run `workbench identities resolve` first."
            )
        profile_id = found.iloc[0, 0]
    rows = db.sql(profile_stream_query(schema), limit=None, profile_id=profile_id)
    columns = ["id", "type", "occurred_at", "user_id", "anonymous_id", "producer_id"]
    if rows.empty:
        return pd.DataFrame(columns=[*columns, "data"])
    data = (
        rows.dropna(subset=["key"])
        .groupby("id", sort=False)
        .apply(lambda g: dict(zip(g["key"], g["value"])), include_groups=False)
    )
    events = rows.drop_duplicates("id")[columns].reset_index(drop=True)
    events["data"] = [data.get(i, {}) for i in events["id"]]
    return events


def busiest_profiles(db: Database, limit: int = 10, *, settings: EventSettings | None = None):
    """The ``limit`` profiles with the most events: ids, events, anonymous ids merged, first and last seen."""
    return db.sql(busiest_profiles_query((settings or event_settings()).schema), row_limit=int(limit), limit=None)


def unassociated_events(db: Database, limit: int = 100, *, settings: EventSettings | None = None) -> tuple[int, Any]:
    """(how many events have no profile, the oldest ``limit`` of them)."""
    count_sql, rows_sql = unassociated_query((settings or event_settings()).schema)
    return int(db.sql(count_sql).iloc[0, 0]), db.sql(rows_sql, row_limit=int(limit), limit=None)


def _moment(value: str | datetime | None, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise WorkbenchError(f"{name} must be an ISO 8601 date or time like 2026-01-31, not {shown(value)}.") from None
