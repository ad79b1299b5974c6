"""The toolkit's SQL builder: fills the templates of ``sql/toolkit/`` for one event source.

Templates receive only identifiers validated by :mod:`workbench.toolkit.sources` and fixed
fragments chosen here from closed sets (time grains, filters); every value (types, dates, gaps,
steps) is a bound parameter. Each function returns a :class:`Query`: the SQL text and its params.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workbench.db.dialects import IDENTIFIER
from workbench.db.sql_files import read_sql
from workbench.toolkit.sources import EventSource

GRAINS = ("hour", "day", "week", "month")
COHORT_GRAINS = ("day", "week", "month")
_SECONDS = {"day": 86_400, "week": 604_800}


@dataclass(frozen=True)
class Query:
    """SQL text with ``:name`` placeholders and the values bound to them."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


def _template(name: str, **fragments: str) -> str:
    return read_sql(f"toolkit/{name}.sql").format(**fragments)


def duration(value: Any, argument: str) -> dt.timedelta:
    """``value`` ("30min", "1h", "2 days" or a timedelta) as a positive timedelta."""
    import pandas as pd

    try:
        delta = pd.Timedelta(value).to_pytimedelta()
    except (ValueError, TypeError):
        raise ValueError(f"{argument}={value!r} is not a duration: write e.g. '30min', '1h' or '2 days'.") from None
    if delta <= dt.timedelta(0):
        raise ValueError(f"{argument}={value!r} must be a positive duration.")
    return delta


def timestamp(value: Any, argument: str) -> dt.datetime | None:
    """``value`` (a date, datetime or ISO text) as a naive UTC datetime; None stays None."""
    import pandas as pd

    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"{argument}={value!r} is not a date or time: write e.g. '2026-10-01' or '2026-10-01 12:00'."
        ) from None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def event_types(types: str | Iterable[str] | None, argument: str = "types") -> list[str] | None:
    """``types`` as a list of distinct event type values (None: every type)."""
    if types is None:
        return None
    values = [types] if isinstance(types, str) else list(types)
    if not values or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{argument} must be an event type or a non-empty list of them, not {types!r}.")
    return list(dict.fromkeys(values))


def grain(value: str, allowed: tuple[str, ...], argument: str) -> str:
    if value not in allowed:
        raise ValueError(f"{argument}={value!r} is not supported: use one of {', '.join(allowed)}.")
    return value


def _in_list(column: str, prefix: str, values: list[str] | None) -> tuple[str, dict[str, str]]:
    """``column IN (:prefix_0, ...)`` and its params; ``1 = 1`` when ``values`` is None."""
    if values is None:
        return "1 = 1", {}
    params = {f"{prefix}_{i}": v for i, v in enumerate(values)}
    return f"{column} IN ({', '.join(':' + p for p in params)})", params


def events_relation(source: EventSource, start: Any = None, end: Any = None, by: str | None = None) -> Query:
    """The canonical relation (unit, ts, event_type, value, session_id, dim) in ``[start, end)``."""
    if by is not None and not (isinstance(by, str) and IDENTIFIER.match(by)):
        raise ValueError(f"by={by!r} must be a column name of {source.table} (letters, digits, _).")
    start, end = timestamp(start, "start"), timestamp(end, "end")
    conditions, params = [], {}
    if start is not None:
        conditions.append(f"e.{source.timestamp} >= :start")
        params["start"] = start
    if end is not None:
        conditions.append(f"e.{source.timestamp} < :end")
        params["end"] = end
    join = source.unit_join
    sql = _template(
        "events_relation",
        unit=f"j.{source.unit}" if join else f"e.{source.unit}",
        timestamp=source.timestamp,
        event_type=f"CAST(e.{source.type} AS VARCHAR)" if source.type else "CAST(NULL AS VARCHAR)",
        value=f"CAST(e.{source.value} AS DOUBLE PRECISION)" if source.value else "CAST(NULL AS DOUBLE PRECISION)",
        session_id=f"e.{source.session}" if source.session else "CAST(NULL AS VARCHAR)",
        dim=f"e.{by}" if by else "CAST(NULL AS VARCHAR)",
        table=source.table,
        unit_join=f"\nLEFT JOIN {join.table} j ON e.{join.on} = j.{join.key}" if join else "",
        time_filter=" AND ".join(conditions) or "1 = 1",
    )
    return Query(sql.strip(), params)


def _indent(sql: str) -> str:
    return "\n".join("  " + line for line in sql.splitlines())


def events(source: EventSource, types=None, start=None, end=None) -> Query:
    relation = events_relation(source, start, end)
    type_filter, params = _in_list("event_type", "type", event_types(types))
    return Query(_template("events", events=_indent(relation.sql), type_filter=type_filter), relation.params | params)


def event_counts(source: EventSource, by: str = "day", types=None, start=None, end=None) -> Query:
    relation = events_relation(source, start, end)
    type_filter, params = _in_list("event_type", "type", event_types(types))
    sql = _template(
        "event_counts", events=_indent(relation.sql), type_filter=type_filter, grain=grain(by, GRAINS, "by")
    )
    return Query(sql, relation.params | params)


def _pages(source: EventSource, count: str) -> tuple[str, dict[str, str]]:
    if source.page_type == "*":
        return count, {}
    if source.page_type is None:
        return "CAST(NULL AS BIGINT)", {}
    return "SUM(CASE WHEN event_type = :page_type THEN 1 ELSE 0 END)", {"page_type": source.page_type}


def derived_sessions(source: EventSource, inactivity: Any = "30min", start=None, end=None) -> Query:
    """Sessionization in SQL (window functions): see ``sql/toolkit/sessions_derived.sql``."""
    relation = events_relation(source, start, end)
    pages, params = _pages(source, "COUNT(*)")
    sql = _template("sessions_derived", events=_indent(relation.sql), pages=pages)
    return Query(sql, relation.params | params | {"inactivity": duration(inactivity, "inactivity")})


def table_sessions(source: EventSource, start=None, end=None) -> Query:
    """The sessions of ``source.sessions`` (its start, duration and pages), events counted per id."""
    table = source.sessions
    if table is None:
        raise ValueError(f"The event source {source.name!r} maps no sessions table: derive them with from_table=False.")
    relation = events_relation(source, start, end)
    conditions = []
    if relation.params.get("start") is not None:
        conditions.append(f"{table.start} >= :start")
    if relation.params.get("end") is not None:
        conditions.append(f"{table.start} < :end")
    counted = table.id is not None and source.session is not None
    sql = _template(
        "sessions_table",
        events=_indent(relation.sql),
        s_table=table.table,
        s_unit=table.unit,
        s_id=table.id or "CAST(NULL AS VARCHAR)",
        s_start=table.start,
        s_duration=table.duration_seconds,
        s_pages=table.pages or "CAST(NULL AS BIGINT)",
        s_time_filter=" AND ".join(conditions) or "1 = 1",
        s_events="COALESCE(c.events, 0)" if counted else "CAST(NULL AS BIGINT)",
        s_events_join="\nLEFT JOIN per_session c ON c.session_id = s.session" if counted else "",
    )
    return Query(sql, relation.params)


def funnel(
    source: EventSource, steps: list[str], within: Any = "1h", by: str | None = None, start=None, end=None
) -> Query:
    """Units per step number and dimension value: see ``sql/toolkit/funnel.sql``."""
    values = event_types(steps, "steps")
    if values is None or len(values) < 2 or len(values) != len(steps):
        raise ValueError(f"steps must list at least two distinct event types in order, not {steps!r}.")
    relation = events_relation(source, start, end, by=by)
    numbers = range(1, len(values) + 1)
    sql = _template(
        "funnel",
        events=_indent(relation.sql),
        entry_dim="FIRST_VALUE(dim) OVER (PARTITION BY unit ORDER BY ts, dim)" if by else "dim",
        later_steps="".join(_template("funnel_step", k=str(k), previous=str(k - 1)).rstrip() for k in numbers[1:]),
        step_counts="\nUNION ALL\n".join(
            f"SELECT {k} AS step_number, dim, COUNT(*) AS units FROM step_{k} GROUP BY dim" for k in numbers
        ),
    )
    params = {f"step_{k}": v for k, v in enumerate(values, start=1)}
    return Query(sql, relation.params | params | {"within": duration(within, "within")})


def retention(
    source: EventSource, cohort: str = "week", activity=None, periods: int = 8, start=None, end=None
) -> Query:
    """Cohort × period active units: see ``sql/toolkit/retention.sql``."""
    unit = grain(cohort, COHORT_GRAINS, "cohort")
    if isinstance(periods, bool) or not isinstance(periods, int) or periods < 1:
        raise ValueError(f"periods must be a positive whole number, not {periods!r}.")
    if unit == "month":
        index = (
            "CAST((EXTRACT(YEAR FROM a.active_period) - EXTRACT(YEAR FROM c.cohort)) * 12"
            " + EXTRACT(MONTH FROM a.active_period) - EXTRACT(MONTH FROM c.cohort) AS INTEGER)"
        )
    else:
        index = (
            f"CAST(ROUND((EXTRACT(EPOCH FROM a.active_period) - EXTRACT(EPOCH FROM c.cohort)) / {_SECONDS[unit]})"
            " AS INTEGER)"
        )
    relation = events_relation(source, start, end)
    activity_filter, params = _in_list("event_type", "activity", event_types(activity, "activity"))
    sql = _template(
        "retention", events=_indent(relation.sql), grain=unit, period_index=index, activity_filter=activity_filter
    )
    return Query(sql, relation.params | params | {"periods": periods})


def user_metrics(source: EventSource, types=None, start=None, end=None) -> Query:
    """Per unit: events, types, value sum, first/last seen, active days, ``count_<i>`` per type."""
    values = event_types(types)
    relation = events_relation(source, start, end)
    type_filter, params = _in_list("event_type", "type", values)
    counts = "".join(
        f",\n       SUM(CASE WHEN event_type = :type_{i} THEN 1 ELSE 0 END) AS count_{i}" for i in range(len(params))
    )
    sql = _template("user_metrics", events=_indent(relation.sql), type_counts=counts, type_filter=type_filter)
    return Query(sql, relation.params | params)
