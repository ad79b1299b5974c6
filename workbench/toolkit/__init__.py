"""The researcher's toolkit: canonical event queries pushed down as SQL, one event source at a time.

    import workbench as wb
    from workbench.toolkit import Toolkit

    db = wb.connect()
    tk = Toolkit(db, source="growthbook_pages")   # or an EventSource, or a name from workbench.yml
    tk.event_counts(by="day").plot()
    tk.funnel(["/", "/search", "/checkout", "/success"], within="1h", by="country")

Every method runs one query in the database (templates in ``sql/toolkit/``) and returns a
DataFrame subclass with ``.sql`` (what ran), ``.params`` (what was bound) and ``.plot()``.
Events without a unit count in :meth:`Toolkit.events` and :meth:`Toolkit.event_counts` and are
skipped by every per-unit query. Times are UTC; ``start`` is inclusive, ``end`` exclusive.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.db.connection import DEFAULT_ROW_LIMIT, SqlDatabase
from workbench.toolkit import queries
from workbench.toolkit.frames import (
    EventCounts,
    Events,
    Funnel,
    Retention,
    Sessions,
    ToolkitFrame,
    UserMetrics,
)
from workbench.toolkit.sources import EventSource, available_sources, event_source, resolve_source

__all__ = ["EventSource", "Toolkit", "available_sources", "event_source"]

Types = str | Iterable[str] | None
NULL_LABEL = "(null)"  # the funnel's dimension value for units whose entry event has NULL there
ALL_UNITS = "(all)"


class Toolkit:
    """The canonical queries over ``source`` (a built-in or configured name, or an EventSource)."""

    def __init__(
        self, db: SqlDatabase, source: str | EventSource = "growthbook_pages", config_path: Path | None = None
    ) -> None:
        self.db = db
        self.source = resolve_source(source, config_path)

    def __repr__(self) -> str:
        return f"<Toolkit {self.source.name} ({self.source.table}) on {self.db.settings.display_url}>"

    def _run(self, query: queries.Query, cls: type[ToolkitFrame], limit: int | None = None) -> pd.DataFrame:
        frame = self.db.sql(query.sql, limit=limit, **query.params)
        return cls.of(frame, query.sql, query.params)

    def events(
        self, types: Types = None, start: Any = None, end: Any = None, limit: int | None = DEFAULT_ROW_LIMIT
    ) -> Events:
        """The events (unit, ts, event_type, value) of ``types`` in ``[start, end)``, oldest first."""
        result = self._run(queries.events(self.source, types, start, end), Events, limit)
        result["ts"] = pd.to_datetime(result["ts"])
        result["value"] = result["value"].astype("float64")
        return result

    def event_counts(self, by: str = "day", types: Types = None, start: Any = None, end: Any = None) -> EventCounts:
        """Events and distinct units per ``by`` ("hour", "day", "week", "month") and event type."""
        result = self._run(queries.event_counts(self.source, by, types, start, end), EventCounts)
        result["period"] = pd.to_datetime(result["period"])
        result[["events", "units"]] = result[["events", "units"]].astype("int64")
        return result

    def sessions(
        self,
        inactivity: Any = "30min",
        from_table: bool | None = None,
        start: Any = None,
        end: Any = None,
        limit: int | None = DEFAULT_ROW_LIMIT,
    ) -> Sessions:
        """One row per session: unit, session, session_start, session_end, duration_s, events, pages.

        Sessions are derived in SQL (a new one after ``inactivity`` without events) unless the
        source maps a sessions table and ``from_table`` is not False (None: use it when mapped).
        """
        use_table = self.source.sessions is not None if from_table is None else from_table
        query = (
            queries.table_sessions(self.source, start, end)
            if use_table
            else queries.derived_sessions(self.source, inactivity, start, end)
        )
        result = self._run(query, Sessions, limit)
        result["session_start"] = pd.to_datetime(result["session_start"])
        result["session_end"] = pd.to_datetime(result["session_end"])
        result["duration_s"] = result["duration_s"].astype("float64")
        result[["events", "pages"]] = result[["events", "pages"]].astype("Int64")
        result.attrs["derived"] = not use_table
        return result

    def funnel(
        self, steps: list[str], within: Any = "1h", by: str | None = None, start: Any = None, end: Any = None
    ) -> Funnel:
        """Units reaching each step in order within ``within`` of entering, per ``by`` column value.

        ``conversion`` is units / units at step 1; ``step_conversion`` units / units at the step before.
        """
        query = queries.funnel(self.source, steps, within, by, start, end)
        counts = self.db.sql(query.sql, limit=None, **query.params)
        numbers = range(1, len(steps) + 1)
        counts["dim"] = counts["dim"].astype(object).where(counts["dim"].notna(), NULL_LABEL) if by else ALL_UNITS
        units = counts.pivot_table(index="dim", columns="step_number", values="units", aggfunc="sum")
        units = units.reindex(index=units.index if by else [ALL_UNITS], columns=numbers).fillna(0).astype("int64")
        table = units.stack().rename("units").rename_axis(["dim", "step_number"]).reset_index()
        table.insert(2, "step", [steps[n - 1] for n in table["step_number"]])
        first = table.groupby("dim")["units"].transform("first")
        previous = table.groupby("dim")["units"].shift(1).fillna(table["units"])
        table["conversion"] = (table["units"] / first).where(first > 0)
        table["step_conversion"] = (table["units"] / previous).where(previous > 0)
        table = table.rename(columns={"dim": by}) if by else table.drop(columns="dim")
        result = Funnel.of(table, query.sql, query.params)
        result.attrs["by"] = by
        return result

    def retention(
        self, cohort: str = "week", activity: Types = None, periods: int = 8, start: Any = None, end: Any = None
    ) -> Retention:
        """Per cohort (``cohort`` of first event) and period 0..periods-1: units active, retention."""
        query = queries.retention(self.source, cohort, activity, periods, start, end)
        raw = self.db.sql(query.sql, limit=None, **query.params)
        raw["cohort"] = pd.to_datetime(raw["cohort"])
        sizes = raw.drop_duplicates("cohort").set_index("cohort")["cohort_units"].astype("int64")
        active = raw.dropna(subset=["period"]).astype({"period": "int64", "units": "int64"})
        grid = pd.MultiIndex.from_product([sizes.index, range(periods)], names=["cohort", "period"])
        table = active.set_index(["cohort", "period"])["units"].reindex(grid, fill_value=0).reset_index()
        table.insert(1, "cohort_units", table["cohort"].map(sizes))
        table["retention"] = table["units"] / table["cohort_units"]
        result = Retention.of(table, query.sql, query.params)
        result.attrs["cohort"] = cohort
        return result

    def user_metrics(
        self, types: Types = None, start: Any = None, end: Any = None, limit: int | None = DEFAULT_ROW_LIMIT
    ) -> UserMetrics:
        """Per unit: events, event_types, value_sum, first_seen, last_seen, active_days, ``count_<type>``."""
        values = queries.event_types(types)
        result = self._run(queries.user_metrics(self.source, values, start, end), UserMetrics, limit)
        names = {f"count_{i}": f"count_{t}" for i, t in enumerate(values or [])}
        result.columns = [names.get(c, c) for c in result.columns]
        for column in ["events", "event_types", "active_days", *(f"count_{t}" for t in values or [])]:
            result[column] = result[column].astype("int64")
        result["value_sum"] = result["value_sum"].astype("float64")
        result["first_seen"] = pd.to_datetime(result["first_seen"])
        result["last_seen"] = pd.to_datetime(result["last_seen"])
        return result
