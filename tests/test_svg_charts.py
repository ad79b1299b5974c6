"""The dashboard's SVG charts: every mark where the data puts it on the drawn axis, the colours
of the report's charts, the details in each mark's tooltip."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from workbench.display import BETTER, MUTED, NEUTRAL, WORSE, Labels
from workbench.reports.svg_charts import (
    LABEL_WIDTH,
    WIDTH,
    cumulative_chart_svg,
    interval_chart_svg,
    nice_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def interval_rows() -> pd.DataFrame:
    """Three comparisons in percent: significantly better, worse, and neither."""
    return pd.DataFrame(
        {
            "metric": ["purchased", "revenue", "sessions"],
            "variation_name": ["B", "B", "B"],
            "label": ["purchased · B", "revenue · B", "sessions · B"],
            "relative": [10.0, -20.0, 2.0],
            "relative_68_lower": [6.0, -25.0, -1.0],
            "relative_68_upper": [14.0, -15.0, 5.0],
            "relative_95_lower": [2.0, -30.0, -4.0],
            "relative_95_upper": [18.0, -10.0, 8.0],
            "absolute": [0.01, -2.0, 0.05],
            "test_p_value": [0.001, 0.0004, 0.4],
            "mean": [0.55, 8.0, 2.55],
            "baseline_mean": [0.5, 10.0, 2.5],
            "units": [1000, 1000, 1000],
            "baseline_units": [990, 990, 990],
            "significance": ["better", "worse", ""],
        }
    )


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0, 10, [0, 2, 4, 6, 8, 10]), (-31.5, 19.9, [-30, -20, -10, 0, 10]), (0.012, 0.049, [0.02, 0.03, 0.04])],
)
def test_ticks_are_round_values_inside_the_range(low, high, expected):
    assert nice_ticks(low, high) == pytest.approx(expected)


def test_interval_chart_draws_each_interval_on_one_linear_axis():
    rows = interval_rows()
    root = parse(interval_chart_svg(rows, "Goal metrics — all units"))
    assert root.find(f"{SVG}text").text == "Goal metrics — all units"
    groups = root.findall(f"{SVG}g")
    assert [g.get("data-significance") for g in groups] == ["better", "worse", ""]
    # The axis: from the smallest to the largest end with zero, padded 5% of the span on each side
    low, high = -30 - 48 * 0.05, 18 + 48 * 0.05
    right = WIDTH - 20

    def px(v: float) -> float:
        return LABEL_WIDTH + (v - low) / (high - low) * (right - LABEL_WIDTH)

    for g, r in zip(groups, rows.itertuples()):
        bar = g.find(f"{SVG}rect")
        assert float(bar.get("x")) == pytest.approx(px(r.relative_68_lower), abs=0.06)
        assert float(bar.get("width")) == pytest.approx(px(r.relative_68_upper) - px(r.relative_68_lower), abs=0.12)
        lines = g.findall(f"{SVG}line")
        whisker, estimate = lines[0], lines[-1]
        assert float(whisker.get("x1")) == pytest.approx(px(r.relative_95_lower), abs=0.06)
        assert float(whisker.get("x2")) == pytest.approx(px(r.relative_95_upper), abs=0.06)
        assert float(estimate.get("x1")) == pytest.approx(px(r.relative), abs=0.06)
        assert g.find(f"{SVG}text").text == r.label
        details = g.find(f"{SVG}title").text
        assert f"relative: {r.relative:+.2f}%" in details and f"p-value: {r.test_p_value:.3g}" in details
    assert [g.find(f"{SVG}rect").get("fill") for g in groups] == [BETTER, WORSE, NEUTRAL]
    zero = [e for e in root.findall(f"{SVG}line") if e.get("stroke-dasharray")]
    assert len(zero) == 1 and float(zero[0].get("x1")) == pytest.approx(px(0), abs=0.06)
    muted = parse(interval_chart_svg(rows, highlight_significant=True)).findall(f"{SVG}g")
    assert [g.find(f"{SVG}rect").get("fill") for g in muted] == [BETTER, WORSE, MUTED]


def test_an_empty_selection_says_so():
    svg = interval_chart_svg(interval_rows().iloc[0:0], "Guardrail metrics")
    assert "no comparisons for this selection" in svg and "wb-bar" not in svg


def test_cumulative_chart_draws_each_variation_day_by_day():
    days = pd.to_datetime(["2026-10-01", "2026-10-02", "2026-10-03"])
    cumulative = pd.DataFrame(
        {
            "day": list(days) * 2,
            "metric": ["purchased"] * 6,
            "variation": ["1"] * 3 + ["2"] * 3,
            "units": [10, 20, 30, 11, 21, 31],
            "relative_effect": [0.5, 0.2, 0.1, -0.4, -0.2, 0.0],
            "absolute_effect": [0.05, 0.02, 0.01, -0.04, -0.02, 0.0],
            "ci_lower": [-0.5, -0.1, 0.0, -1.0, -0.5, -0.1],
            "ci_upper": [1.5, 0.5, 0.2, 0.2, 0.1, 0.1],
            "p_value": [0.5, 0.3, 0.04, 0.4, 0.3, 0.9],
        }
    )
    labels = Labels(variation_names={"1": "Blue", "2": "Green"})
    root = parse(cumulative_chart_svg(cumulative, "purchased", labels=labels))
    series = root.findall(f"{SVG}g")
    assert [g.get("data-variation") for g in series] == ["1", "2"]
    # y: -100% (lowest band end) to 150% (highest), 5% of the 250-point span padded, over pixels 290 (bottom) to 36
    low, high = -100 - 12.5, 150 + 12.5

    def py(v: float) -> float:
        return 290 + (v - low) / (high - low) * (36 - 290)

    for g, variation in zip(series, ["1", "2"]):
        part = cumulative[cumulative["variation"] == variation]
        points = [tuple(map(float, p.split(","))) for p in g.find(f"{SVG}polyline").get("points").split()]
        assert [x for x, _ in points] == pytest.approx([70, 70 + (WIDTH - 90) / 2, WIDTH - 20], abs=0.06)
        assert [y for _, y in points] == pytest.approx([py(100 * v) for v in part["relative_effect"]], abs=0.06)
        band = [tuple(map(float, p.split(","))) for p in g.find(f"{SVG}polygon").get("points").split()]
        assert [y for _, y in band] == pytest.approx(
            [py(100 * v) for v in [*part["ci_upper"], *part["ci_lower"][::-1]]], abs=0.06
        )
        tips = [c.find(f"{SVG}title").text for c in g.findall(f"{SVG}circle")]
        assert tips[0].startswith(f"{labels.variation(variation)}, 2026-10-01: ") and "units " in tips[0]
    legend = [t.text for t in root.findall(f"{SVG}text")]
    assert "Blue" in legend and "Green" in legend and "2026-10-01" in legend and "2026-10-03" in legend
    assert "no effects to draw yet" in cumulative_chart_svg(cumulative, "revenue")
