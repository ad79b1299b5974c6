"""What the toolkit's queries return: DataFrames that also carry ``.sql`` and draw ``.plot()``.

Each class is a :class:`pandas.DataFrame` (so every pandas operation works; derived frames are
plain DataFrames) whose ``.sql`` is the SQL that ran and ``.params`` the values bound to it.
``.plot()`` returns the usual plotly figure for that result (a :class:`~workbench.toolkit.charts.Chart`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd


class ToolkitFrame(pd.DataFrame):
    """A query result: the rows, ``.sql`` (what ran) and ``.params`` (what was bound)."""

    @property
    def _constructor(self):
        return pd.DataFrame

    @classmethod
    def of(cls, frame: pd.DataFrame, sql: str, params: dict[str, Any]) -> ToolkitFrame:
        result = cls(frame)
        result.attrs = dict(frame.attrs) | {"sql": sql, "params": dict(params)}
        return result

    @property
    def sql(self) -> str:
        return self.attrs.get("sql", "")

    @property
    def params(self) -> dict[str, Any]:
        return self.attrs.get("params", {})

    def plot(self):
        raise NotImplementedError


def _layout(fig, title: str):
    """``fig`` titled and laid out as every toolkit chart, as a :class:`~workbench.toolkit.charts.Chart`
    (a static image beside it survives a plain nbconvert export)."""
    from workbench.toolkit.charts import Chart

    chart = Chart(fig)
    chart.update_layout(title=title, height=420, margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return chart


class Events(ToolkitFrame):
    """One row per event: unit, ts, event_type, value."""

    def plot(self):
        """Events per day, stacked by type (a histogram over time)."""
        import plotly.express as px

        fig = px.histogram(self, x="ts", color="event_type", labels={"ts": "time (UTC)", "event_type": ""})
        return _layout(fig, "Events over time")


class EventCounts(ToolkitFrame):
    """Per period and event type: events, units."""

    def plot(self):
        """A time series of events per period, one line per type."""
        import plotly.express as px

        fig = px.line(
            self, x="period", y="events", color="event_type", labels={"period": "period (UTC)", "event_type": ""}
        )
        return _layout(fig, "Events per period")


class Sessions(ToolkitFrame):
    """One row per session: unit, session, session_start, session_end, duration_s, events, pages."""

    def plot(self):
        """The distribution of session durations (seconds)."""
        import plotly.express as px

        fig = px.histogram(self, x="duration_s", nbins=60, labels={"duration_s": "session duration (s)"})
        return _layout(fig, "Session duration")


class Funnel(ToolkitFrame):
    """Per step (and dimension): units, conversion from the first step and from the previous one."""

    def plot(self):
        """A funnel chart of units per step (one colour per dimension value)."""
        import plotly.express as px

        color = self.attrs.get("by")
        fig = px.funnel(self, x="units", y="step", color=color)
        return _layout(fig, "Funnel")


class Retention(ToolkitFrame):
    """Per cohort and period: cohort_units, units active, retention (units / cohort_units)."""

    def matrix(self) -> pd.DataFrame:
        """Retention as a cohort × period table."""
        return self.pivot(index="cohort", columns="period", values="retention")

    def plot(self):
        """A retention heatmap: cohorts down, periods across, share of the cohort active."""
        import plotly.express as px

        table = self.matrix()
        table.index = [pd.Timestamp(c).strftime("%Y-%m-%d") for c in table.index]
        fig = px.imshow(
            table,
            text_auto=".0%",
            color_continuous_scale="Blues",
            aspect="auto",
            zmin=0,
            zmax=1,
            labels={"x": f"{self.attrs.get('cohort', 'period')}s since first seen", "y": "cohort", "color": "retained"},
        )
        return _layout(fig, "Cohort retention")


class UserMetrics(ToolkitFrame):
    """Per unit: events, event_types, value_sum, first_seen, last_seen, active_days, counts per type."""

    def plot(self, column: str = "events"):
        """The distribution of ``column`` across units."""
        import plotly.express as px

        fig = px.histogram(self, x=column, labels={column: f"{column} per unit"})
        return _layout(fig, f"{column} per unit")
