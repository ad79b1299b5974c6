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


def arm_comparison_chart(
    results: pd.DataFrame,
    title: str = "Treatment − control in the intervention phase (per participant, CUPED where available)",
):
    """Absolute treatment − control effect per metric with its interval, from :func:`arm_comparison`
    or :func:`home_page_comparison` (a dimension's rows are labelled ``metric · dimension value``)."""
    import plotly.graph_objects as go

    frame = results.dropna(subset=["ci_lower", "ci_upper"])
    label = frame["metric"].where(
        frame["dimension"] == "overall", frame["metric"] + " · " + frame["dimension"] + " " + frame["dimension_value"]
    )
    fig = go.Figure(
        go.Scatter(
            x=frame["absolute_effect"],
            y=label,
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
        title=title,
        xaxis_title="absolute difference of means",
        height=360,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
    )
    return fig


def home_page_chart(home: pd.DataFrame):
    """Per phase and arm: home pages shown per participant and injected-tile clicks per home page
    shown, from :func:`home_page`."""
    measures = {
        "home_shown_per_participant": "home pages shown per participant",
        "click_through": "injected-tile clicks per home page",
    }
    fig = _phase_bars(home, measures, name="measure", color="arm", title="The home page per arm and phase")
    fig.update_layout(barmode="group")
    fig.update_yaxes(matches=None, showticklabels=True)
    return fig


def home_tiles_chart(home: pd.DataFrame):
    """Share of shown home-page tiles from the default list, the replacement pool and neither, per
    arm and phase, from :func:`home_page`."""
    sources = {"default_tiles": "default", "replacement_tiles": "replacement pool", "other_tiles": "neither list"}
    shares = home[list(sources)].div(home["shown_tiles"].where(home["shown_tiles"] > 0), axis=0)
    fig = _phase_bars(
        home[["arm", "phase"]].join(shares),
        sources,
        name="tile from",
        color="tile from",
        title="Where the shown home-page tiles came from (share of shown tiles)",
    )
    fig.update_layout(barmode="stack")
    return fig


def _phase_bars(frame: pd.DataFrame, columns: dict[str, str], *, name: str, color: str, title: str):
    """Bars per phase of each of ``columns`` (column → label, melted into ``name``), coloured by
    ``color``, one panel per arm or per column (whichever ``color`` is not)."""
    import plotly.express as px

    long = frame.melt(id_vars=["arm", "phase"], value_vars=list(columns), var_name=name, value_name="value")
    long[name] = long[name].map(columns)
    fig = px.bar(
        long,
        x="phase",
        y="value",
        color=color,
        facet_col=name if color == "arm" else "arm",
        labels={"phase": "phase (all = every phase)", "value": ""},
    )
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_layout(title=title, height=380, margin={"l": 40, "r": 20, "t": 70, "b": 40})
    return fig


def channel_positions_chart(positions: pd.DataFrame):
    """Treatment participants per channel-source position (unusable channels marked), from
    :func:`channel_positions`."""
    import plotly.express as px

    frame = positions.assign(
        source=positions["title"].fillna("source").astype(str)
        + " ("
        + positions["channel_source_id"].astype(str)
        + ")",
        channel=positions["youtube_channel_id"].fillna("no channel").astype(str)
        + positions["unusable_since"].notna().map({True: " (unusable)", False: ""}),
    )
    fig = px.bar(
        frame,
        x="position",
        y="participants",
        color="source",
        hover_data=["channel", "participants_due", "last_moved_at"],
        labels={"position": "position in the channel source", "participants": "treatment participants"},
    )
    fig.update_layout(
        title="Where treatment participants stand in their channel sources",
        height=360,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
    )
    return fig


def pool_channels_chart(pools: pd.DataFrame, top: int = 8):
    """Home pages per day whose replacement pool held each channel (the ``top`` channels by home
    pages, the rest as "other channels"), from :func:`pool_channels`: the rotation as seen."""
    import plotly.express as px

    channel = pools["youtube_channel_id"].fillna("no metadata")
    leaders = pools.groupby(channel)["home_shown"].sum().nlargest(top).index
    frame = pools.assign(channel=channel.where(channel.isin(leaders), "other channels"))
    per_day = frame.groupby(["day", "channel"], as_index=False)["home_shown"].sum()
    fig = px.bar(
        per_day,
        x="day",
        y="home_shown",
        color="channel",
        labels={"day": "day (UTC)", "home_shown": "home pages with the channel in their pool", "channel": "channel"},
    )
    fig.update_layout(
        title="Channels in the replacement pools, day by day",
        height=380,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
    )
    return fig
