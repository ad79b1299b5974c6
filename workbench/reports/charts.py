"""The charts of experiment reports and the dashboard, built with their data (so nbconvert and
Voila both render them): the interval chart (abautomator's: relative difference per metric and
variation, 68% bar, 95% whiskers, dashed zero line), the cumulative effect over time, and units
per day.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.display import BETTER, MUTED, NEUTRAL, SERIES, WORSE, Labels

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from workbench.stats import ExperimentResults

INTERVAL_AXIS = "relative difference of variation vs control (%)"


def interval_rows(
    results: ExperimentResults,
    intervals: pd.DataFrame,
    group: str,
    dimension: str = "overall",
    value: str | None = None,
) -> pd.DataFrame:
    """The rows of one interval chart: ``intervals`` of the metrics of ``group`` in ``dimension``
    (``"overall"``: all units) at ``value`` (None: every value, each row's label led by its value),
    with the results' significance, means and units, each variation's ``variation_name``;
    relative figures in percent."""
    import pandas as pd

    keys = ["metric", "dimension", "dimension_value", "variation"]
    if intervals.empty or "relative" not in intervals:
        return pd.DataFrame()
    res = results.table[(results.table["metric_group"] == group) & (results.table["dimension"] == dimension)]
    if value is not None:
        res = res[res["dimension_value"] == value]
    p_column = "p_value_adjusted" if res["p_value_adjusted"].notna().any() else "p_value"
    extra = res[
        [
            *keys,
            "metric_group",
            "significance",
            "mean",
            "baseline_mean",
            "units",
            "baseline_units",
            p_column,
            "chance_to_win",
        ]
    ]
    rows = intervals.merge(extra.rename(columns={p_column: "test_p_value"}), on=keys, how="inner")
    rows = rows[rows["relative"].notna()].copy()
    for column in ("relative", "relative_68_lower", "relative_68_upper", "relative_95_lower", "relative_95_upper"):
        rows[column] = rows[column] * 100
    rows["variation_name"] = rows["variation"].map(results.labels.variation)
    rows["label"] = rows["metric"] + " · " + rows["variation_name"]
    if value is None and dimension != "overall":
        rows["label"] = rows["dimension_value"].astype(str) + " · " + rows["label"]
    return rows.reset_index(drop=True)


def interval_colours(rows: pd.DataFrame, highlight_significant: bool = False) -> list[str]:
    """Each row's colour: green when significantly better, red when worse, grey otherwise, and the
    grey muted when ``highlight_significant``."""
    colours = []
    for significance in rows["significance"]:
        colour = {"better": BETTER, "worse": WORSE}.get(significance, NEUTRAL)
        colours.append(MUTED if highlight_significant and not significance else colour)
    return colours


def interval_hover(rows: pd.DataFrame) -> list[list[str]]:
    """Each row's details, line by line: both differences with their 68% and 95% intervals, the
    p-value, the means and the units."""
    return [
        [
            f"{r.metric}, {r.variation_name} vs control",
            f"relative: {r.relative:+.2f}% (68%: {r.relative_68_lower:+.2f}% to {r.relative_68_upper:+.2f}%; "
            f"95%: {r.relative_95_lower:+.2f}% to {r.relative_95_upper:+.2f}%)",
            f"absolute: {r.absolute:+.4g}",
            f"p-value: {r.test_p_value:.3g}",
            f"mean: {r.mean:.4g} (control {r.baseline_mean:.4g})",
            f"units: {int(r.units):,} (control {int(r.baseline_units):,})",
        ]
        for r in rows.itertuples()
    ]


def interval_chart(rows: pd.DataFrame, title: str = "", highlight_significant: bool = False) -> go.Figure:
    """A horizontal interval chart of :func:`interval_rows`: per metric × variation the 68% interval
    as a bar and the 95% interval as whiskers around the point estimate, a dashed zero line;
    green = significantly better, red = significantly worse. ``highlight_significant`` mutes the
    rest (abautomator's button). The hover shows both differences, the p-value, means and units."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if rows.empty:
        fig.add_annotation(
            text="no comparisons for this selection", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper"
        )
        fig.update_layout(title=title, height=200)
        return fig
    colours = interval_colours(rows, highlight_significant)
    hover = ["<br>".join(lines) for lines in interval_hover(rows)]
    fig.add_trace(
        go.Bar(
            y=rows["label"],
            x=rows["relative_68_upper"] - rows["relative_68_lower"],
            base=rows["relative_68_lower"],
            orientation="h",
            marker_color=colours,
            opacity=0.55,
            name="68% interval",
            hoverinfo="skip",
            width=0.45,
        )
    )
    fig.add_trace(
        go.Scatter(
            y=rows["label"],
            x=rows["relative"],
            mode="markers",
            marker={"color": colours, "size": 10, "symbol": "line-ns-open", "line_width": 3},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": rows["relative_95_upper"] - rows["relative"],
                "arrayminus": rows["relative"] - rows["relative_95_lower"],
                "thickness": 1.5,
                "width": 6,
                "color": "#444",
            },
            name="estimate and 95% interval",
            hovertext=hover,
            hoverinfo="text",
        )
    )
    fig.add_vline(x=0, line_dash="dash", line_color="#444")
    fig.update_layout(
        title=title,
        xaxis_title=INTERVAL_AXIS,
        height=140 + 42 * len(rows),
        showlegend=False,
        margin={"l": 40, "r": 20, "t": 50 if title else 20, "b": 50},
        plot_bgcolor="white",
        yaxis={"autorange": "reversed", "automargin": True},
        xaxis={"gridcolor": "#eee", "zeroline": False},
    )
    return fig


def cumulative_series(
    cumulative: pd.DataFrame, metric: str, relative: bool = True
) -> list[tuple[object, pd.DataFrame]]:
    """Per variation (sorted) its days of ``metric`` with an effect: ``day``, ``effect`` and its
    interval ``lower``–``upper`` (percent when ``relative``; a missing end drawn at the effect, an
    infinite one at ±1e9), ``units`` and ``p_value``."""
    effect = "relative_effect" if relative else "absolute_effect"
    scale = 100 if relative else 1
    rows = cumulative[(cumulative["metric"] == metric) & cumulative[effect].notna()]
    rows = rows.assign(
        effect=rows[effect] * scale,
        lower=rows["ci_lower"].fillna(rows[effect]).clip(lower=-1e9) * scale,
        upper=rows["ci_upper"].fillna(rows[effect]).clip(upper=1e9) * scale,
    )
    return list(rows.groupby("variation", sort=True))


def cumulative_chart(
    cumulative: pd.DataFrame, metric: str, relative: bool = True, labels: Labels | None = None
) -> go.Figure:
    """The effect of each variation on ``metric`` with the data up to each day, and its interval
    as a band: an effect that settles and a band that narrows away from zero is a result to trust.
    The legend names variations by ``labels`` (default: ``variation <id>``)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (variation, part) in enumerate(cumulative_series(cumulative, metric, relative)):
        colour = SERIES[i % len(SERIES)]
        fig.add_trace(
            go.Scatter(
                x=list(part["day"]) + list(part["day"])[::-1],
                y=list(part["upper"]) + list(part["lower"])[::-1],
                fill="toself",
                fillcolor=colour,
                opacity=0.15,
                line_width=0,
                hoverinfo="skip",
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=part["day"],
                y=part["effect"],
                mode="lines+markers",
                line_color=colour,
                name=(labels or Labels()).variation(variation),
                customdata=part[["units", "p_value"]].to_numpy(),
                hovertemplate="%{x|%Y-%m-%d}: %{y:+.2f}"
                + ("%" if relative else "")
                + "<br>units %{customdata[0]:,}<br>p %{customdata[1]:.3g}<extra></extra>",
            )
        )
    fig.add_hline(y=0, line_dash="dash", line_color="#444")
    fig.update_layout(
        title=f"{metric}: cumulative effect",
        xaxis_title="data up to the end of (UTC)",
        yaxis_title=("relative effect (%)" if relative else "absolute effect"),
        height=360,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
        plot_bgcolor="white",
        hovermode="x unified",
    )
    return fig


def units_per_day_chart(units_per_day: pd.DataFrame, labels: Labels | None = None) -> go.Figure:
    """New units per first-exposure day and variation (stacked bars): gaps, spikes or one arm
    drifting away from its share point to logging problems. The legend names variations by
    ``labels`` (default: ``variation <id>``)."""
    import plotly.graph_objects as go

    parts = units_per_day.groupby(units_per_day["variation"].astype(str), sort=True)
    fig = go.Figure(
        [
            go.Bar(
                x=part["day"],
                y=part["users"],
                name=(labels or Labels()).variation(variation),
                marker_color=SERIES[i % len(SERIES)],
            )
            for i, (variation, part) in enumerate(parts)
        ]
    )
    fig.update_layout(
        title="Units per day",
        barmode="stack",
        height=320,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
        plot_bgcolor="white",
        xaxis_title="first exposure day (UTC)",
        yaxis_title="new units",
    )
    return fig
