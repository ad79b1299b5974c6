"""Plotly charts of the study's analyses for the report notebook and dashboards."""

from __future__ import annotations

import pandas as pd


def daily_activity_chart(daily: pd.DataFrame, arms: pd.Series | None = None, figure: str = "pages_viewed"):
    """Mean of one recomputed daily figure per day (per arm when ``arms`` maps code → arm) from :func:`daily_activity`."""
    import plotly.express as px

    frame = daily.assign(arm=daily["code"].map(arms) if arms is not None else "all")
    per_day = frame.groupby(["day", "arm"], as_index=False)[figure].mean()
    fig = px.line(
        per_day,
        x="day",
        y=figure,
        color="arm",
        markers=True,
        labels={"day": "day (UTC)", figure: f"{figure.replace('_', ' ')} per active participant", "arm": "arm"},
    )
    fig.update_layout(
        title=f"Daily {figure.replace('_', ' ')}",
        hovermode="x unified",
        height=380,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
    )
    return fig


def arm_comparison_chart(results: pd.DataFrame):
    """Absolute treatment − control effect per metric with its interval, from :func:`arm_comparison`."""
    import plotly.graph_objects as go

    frame = results.dropna(subset=["ci_lower", "ci_upper"])
    fig = go.Figure(
        go.Scatter(
            x=frame["absolute_effect"],
            y=frame["metric"],
            mode="markers",
            error_x={
                "type": "data",
                "symmetric": False,
                "array": frame["ci_upper"] - frame["absolute_effect"],
                "arrayminus": frame["absolute_effect"] - frame["ci_lower"],
            },
        )
    )
    fig.add_vline(x=0, line_dash="dot")
    fig.update_layout(
        title="Treatment − control in the intervention phase (per participant, CUPED where available)",
        xaxis_title="absolute difference of means",
        height=360,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
    )
    return fig
