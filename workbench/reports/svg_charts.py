"""The dashboard's charts drawn as inline SVG: the interval chart and the cumulative effect of
:mod:`workbench.reports.charts`, from the same rows and colours, without plotly.js. A pick in the
dashboard then only replaces an HTML widget's value, and the page loads no 4.8 MB plotting script
(2026-12-04: picks 0.15-0.53 s with plotly charts). Hover details are each mark's ``<title>``.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from workbench.display import SERIES, Axis, Labels
from workbench.reports.charts import INTERVAL_AXIS, cumulative_series, interval_colours, interval_hover

if TYPE_CHECKING:
    import pandas as pd

WIDTH = 900  # pixels, the whole drawing
LABEL_WIDTH = 300  # pixels left of an interval chart's plot for its rows' labels
ROW_HEIGHT = 36  # pixels per interval chart row
FONT = "font-family:sans-serif;font-size:12px"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values within ``low``–``high``, 1, 2 or 5 × a power of ten apart
    (the one nearest the span / ``count``)."""
    span = high - low
    if not span > 0 or not math.isfinite(span):
        return [low]
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = power * next(m for limit, m in ((1.5, 1), (3, 2), (7, 5), (math.inf, 10)) if raw / power < limit)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 12) for i in range(int((high - first) / step + 1e-9) + 1)]


def text(x: float, y: float, content: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x}" y="{y}" text-anchor="{anchor}" style="{FONT}" {extra}>{html.escape(content)}</text>'


def svg(height: float, body: list[str], css_class: str) -> str:
    return (
        f'<svg class="{css_class}" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" style="max-width:100%;height:auto">{"".join(body)}</svg>'
    )


def interval_chart_svg(rows: pd.DataFrame, title: str = "", highlight_significant: bool = False) -> str:
    """:func:`workbench.reports.charts.interval_chart` as SVG: per row of
    :func:`~workbench.reports.charts.interval_rows` the 68% interval as a bar (``wb-bar``, its
    colour the row's), the 95% interval as whiskers and the estimate as a tick, a dashed zero
    line; relative differences in percent. ``highlight_significant`` mutes the rest."""
    top = 36 if title else 12
    head = [text(8, 20, title, extra='font-weight="bold"')] if title else []
    if rows.empty:
        return svg(
            top + 40,
            [*head, text(WIDTH / 2, top + 20, "no comparisons for this selection", "middle")],
            "wb-interval-chart",
        )
    axis = Axis.spanning([*rows["relative_95_lower"], *rows["relative_95_upper"]], WIDTH - 20 - LABEL_WIDTH)

    def x(v: float) -> float:
        return LABEL_WIDTH + axis.x(v)

    bottom = top + ROW_HEIGHT * len(rows)
    body = list(head)
    for tick in nice_ticks(axis.low, axis.high):
        body.append(f'<line x1="{x(tick)}" y1="{top}" x2="{x(tick)}" y2="{bottom}" stroke="#eee"/>')
        body.append(text(x(tick), bottom + 16, f"{tick:g}", "middle"))
    body.append(text((LABEL_WIDTH + WIDTH - 20) / 2, bottom + 34, INTERVAL_AXIS, "middle"))
    colours = interval_colours(rows, highlight_significant)
    for i, (r, colour, hover) in enumerate(zip(rows.itertuples(), colours, interval_hover(rows))):
        y = top + ROW_HEIGHT * i + ROW_HEIGHT / 2
        bar = x(r.relative_68_upper) - x(r.relative_68_lower)
        body.append(
            f'<g class="wb-chart-row" data-significance="{html.escape(r.significance or "")}">'
            f"<title>{html.escape(chr(10).join(hover))}</title>"
            + text(LABEL_WIDTH - 8, y + 4, r.label if len(r.label) <= 44 else r.label[:43] + "…", "end")
            + f'<rect class="wb-bar" x="{x(r.relative_68_lower)}" y="{y - 8}" width="{max(bar, 1)}" height="16" fill="{colour}" opacity="0.55"/>'
            f'<line x1="{x(r.relative_95_lower)}" y1="{y}" x2="{x(r.relative_95_upper)}" y2="{y}" stroke="#444" stroke-width="1.5"/>'
            + "".join(
                f'<line x1="{x(v)}" y1="{y - 4}" x2="{x(v)}" y2="{y + 4}" stroke="#444" stroke-width="1.5"/>'
                for v in (r.relative_95_lower, r.relative_95_upper)
            )
            + f'<line class="wb-estimate" x1="{x(r.relative)}" y1="{y - 9}" x2="{x(r.relative)}" y2="{y + 9}" stroke="{colour}" stroke-width="3"/>'
            "</g>"
        )
    body.append(f'<line x1="{x(0)}" y1="{top}" x2="{x(0)}" y2="{bottom}" stroke="#444" stroke-dasharray="4,3"/>')
    return svg(bottom + 44, body, "wb-interval-chart")


def cumulative_chart_svg(
    cumulative: pd.DataFrame, metric: str, relative: bool = True, labels: Labels | None = None
) -> str:
    """:func:`workbench.reports.charts.cumulative_chart` as SVG: each variation's effect on
    ``metric`` with the data up to each day (a line, ``wb-series``) and its interval as a band, a
    dashed zero line, a legend naming variations by ``labels``; each day's point has its details."""
    import pandas as pd

    series = cumulative_series(cumulative, metric, relative)
    top, bottom, left, right = 36, 290, 70, WIDTH - 20
    body = [text(8, 20, f"{metric}: cumulative effect", extra='font-weight="bold"')]
    if not series:
        return svg(
            top + 40, [*body, text(WIDTH / 2, top + 20, "no effects to draw yet", "middle")], "wb-cumulative-chart"
        )
    days = pd.to_datetime(pd.concat([part["day"] for _, part in series]))
    first, last = days.min(), days.max()
    span = (last - first).total_seconds() or 1.0
    axis = Axis.spanning((v for _, part in series for c in ("lower", "upper", "effect") for v in part[c]), bottom - top)

    def y(v: float) -> float:
        return bottom - axis.x(v)

    def x(day) -> float:
        return round(left + (pd.Timestamp(day) - first).total_seconds() / span * (right - left), 1)

    unit = "%" if relative else ""
    for tick in nice_ticks(axis.low, axis.high):
        body.append(f'<line x1="{left}" y1="{y(tick)}" x2="{right}" y2="{y(tick)}" stroke="#eee"/>')
        body.append(text(left - 6, y(tick) + 4, f"{tick:g}{unit}", "end"))
    for day, anchor in {first: "start", first + (last - first) / 2: "middle", last: "end"}.items():
        body.append(text(x(day), bottom + 16, f"{pd.Timestamp(day):%Y-%m-%d}", anchor))
    body.append(text((left + right) / 2, bottom + 34, "data up to the end of (UTC)", "middle"))
    for i, (variation, part) in enumerate(series):
        colour = SERIES[i % len(SERIES)]
        band = [f"{x(d)},{y(v)}" for d, v in zip(part["day"], part["upper"])]
        band += [f"{x(d)},{y(v)}" for d, v in zip(part["day"][::-1], part["lower"][::-1])]
        line = " ".join(f"{x(d)},{y(v)}" for d, v in zip(part["day"], part["effect"]))
        name = (labels or Labels()).variation(variation)
        points = "".join(
            f'<circle cx="{x(r.day)}" cy="{y(r.effect)}" r="3" fill="{colour}"><title>'
            + html.escape(
                f"{name}, {pd.Timestamp(r.day):%Y-%m-%d}: {r.effect:+.2f}{unit}\nunits {int(r.units):,}\np {r.p_value:.3g}"
            )
            + "</title></circle>"
            for r in part.itertuples()
        )
        body.append(
            f'<g class="wb-series" data-variation="{html.escape(str(variation))}">'
            f'<polygon points="{" ".join(band)}" fill="{colour}" opacity="0.15"/>'
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>{points}</g>'
        )
        body.append(
            f'<rect x="{left + 10 + 170 * i}" y="{bottom + 44}" width="12" height="12" fill="{colour}"/>'
            + text(left + 28 + 170 * i, bottom + 54, name)
        )
    body.append(f'<line x1="{left}" y1="{y(0)}" x2="{right}" y2="{y(0)}" stroke="#444" stroke-dasharray="4,3"/>')
    body.append(
        text(
            16,
            (top + bottom) / 2,
            "relative effect (%)" if relative else "absolute effect",
            "middle",
            f'transform="rotate(-90 16 {(top + bottom) / 2})"',
        )
    )
    return svg(bottom + 64, body, "wb-cumulative-chart")
