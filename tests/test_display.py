"""How results look: values in their metric's units, and GrowthBook's results rows (one per metric ×
variation, the interval drawn inline on one axis per table, chance to win beside the p-value),
parsed back from the HTML and checked against the samples they were computed from."""

from __future__ import annotations

import html.parser
import math

import numpy as np
import pandas as pd
import pytest

from support.stats_oracle import sums_row
from workbench.display import (
    BETTER,
    WORSE,
    Currency,
    Labels,
    ValueFormat,
    change,
    duration,
    money,
    probability,
    results_table_html,
    results_text,
    value,
)
from workbench.stats import AnalysisSettings, experiment_results

PERCENT, SECONDS = ValueFormat("percent"), ValueFormat("duration")
EURO = ValueFormat("currency", Currency("€", 2, symbol_after=True))


@pytest.mark.parametrize(
    "seconds, shown",
    [(0.25, "0.25s"), (42.5, "42.5s"), (59.96, "1m 00s"), (83, "1m 23s"), (83.4, "1m 23s"), (3599.6, "1h 00m"),
     (7500, "2h 05m"), (90_000, "1d 1h"), (-5, "-5s"), (-83, "-1m 23s"), (math.nan, "n/a")],
)  # fmt: skip
def test_durations_read_as_people_write_them(seconds, shown):
    assert duration(seconds) == shown


def test_chances_are_never_rounded_to_certainty():
    assert [probability(x) for x in (0.975, 0.9994, 0.0004, 0.5, None)] == ["97.5%", ">99.9%", "<0.1%", "50.0%", ""]


def test_rates_currency_and_effects_in_the_metrics_units():
    assert (
        value(0.0312, PERCENT) == "3.12%"
        and value(0.4298, PERCENT) == "43.0%"
        and value(0.5, PERCENT) == "50.0%"
        and value(1.0, PERCENT) == "100%"
    )
    assert value(83, SECONDS) == "1m 23s"
    assert money(1234.5, Currency()) == "$1,234.50" and money(-3.2, Currency()) == "-$3.20"
    assert value(1234.5, EURO) == "1,234.50 €" and money(7.0, Currency("¥", 0)) == "¥7"
    assert value(1234.5678, ValueFormat()) == "1235" and value(None, PERCENT) == ""
    # absolute effects: percentage points, signed durations and amounts; relative ones always in %
    assert change(0.012, PERCENT, relative=False) == "+1.2 pp" and change(-0.0034, PERCENT, False) == "-0.34 pp"
    assert change(-2.0, SECONDS, relative=False) == "-2s" and change(90, SECONDS, False) == "+1m 30s"
    assert change(1.5, EURO, relative=False) == "+1.50 €" and change(-1.5, EURO, False) == "-1.50 €"
    assert change(0.05, EURO, relative=True) == "+5.0%" and change(-0.125, PERCENT, True) == "-12.5%"


class Table(html.parser.HTMLParser):
    """The rows of a results table: each cell's text and each SVG element's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.heads: list[str] = []
        self.rows: list[dict] = []
        self._cell: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "wb-row" in a.get("class", ""):
            self.rows.append({"class": a["class"], "cells": [], "svg": {}, "style": a.get("style", "")})
        elif tag == "th":
            self._in_head, self._cell = True, []
        elif tag == "td":
            self._cell = []
        elif tag in ("svg", "line", "circle") and self.rows:
            key = tag if tag == "svg" else a.get("class", tag)
            self.rows[-1]["svg"][key] = a
        elif tag == "br" and self._cell is not None:
            self._cell.append(" | ")

    def handle_endtag(self, tag):
        if tag == "th":
            self.heads.append("".join(self._cell).strip())
            self._in_head, self._cell = False, None
        elif tag == "td":
            self.rows[-1]["cells"].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def samples():
    """Per-unit values of three arms: a conversion (binomial), revenue (mean, in euros) and time on
    site (duration, seconds); variation 2 converts much worse, variation 1 a little better."""
    rng = np.random.default_rng(7)
    n = 3000
    arms = {
        "0": (rng.random(n) < 0.10, rng.gamma(2, 10, n), rng.gamma(3, 30, n)),
        "1": (rng.random(n) < 0.11, rng.gamma(2, 10.2, n), rng.gamma(3, 30, n)),
        "2": (rng.random(n) < 0.07, rng.gamma(2, 10, n), rng.gamma(3, 28, n)),
    }
    return arms


@pytest.fixture(scope="module")
def results(samples):
    rows = []
    for variation, (bought, revenue, seconds) in samples.items():
        rows += [
            sums_row("purchased", "binomial", variation, bought.astype(float)),
            sums_row("revenue", "mean", variation, revenue),
            sums_row("time_on_site", "duration", variation, seconds),
        ]
    labels = Labels(
        name="Checkout layout",
        hypothesis="Fewer steps, more purchases.",
        variation_names={"0": "Control", "2": "Summary beside form"},
        metric_names={"purchased": "Purchased"},
        formats={"revenue": EURO},
    )
    settings = AnalysisSettings(goal_metrics=("purchased",), secondary_metrics=("revenue", "time_on_site"))
    return experiment_results(pd.DataFrame(rows), settings, experiment="checkout-layout", labels=labels)


def test_a_row_per_metric_and_variation_in_the_metrics_units(results, samples):
    parsed = Table()
    parsed.feed(results_table_html(results))
    assert parsed.heads == ["metric", "variation", "baseline", "variation value", "relative effect", "95% interval",
                            "chance to win", "p-value", "note"]  # fmt: skip
    table = results.table.set_index(["metric", "variation"])
    assert len(parsed.rows) == 6 == len(table)
    index = {"purchased": 0, "revenue": 1, "time_on_site": 2}
    formats = {"purchased": PERCENT, "revenue": EURO, "time_on_site": SECONDS}
    names = {"1": "variation 1", "2": "Summary beside form | id 2"}
    axes = set()
    for row in parsed.rows:
        metric = row["cells"][0].split(" | ")[0]
        variation = "2" if row["cells"][1].startswith("Summary") else "1"
        assert row["cells"][1] == names[variation]
        fmt, t = formats[metric], table.loc[(metric, variation)]
        control, treated = samples["0"][index[metric]], samples[variation][index[metric]]
        # values recomputed from the samples, in the metric's units; units counted below
        assert row["cells"][2] == f"{value(control.mean(), fmt)} | {len(control):,} units"
        assert row["cells"][3] == f"{value(treated.mean(), fmt)} | {len(treated):,} units"
        lift = treated.mean() / control.mean() - 1
        assert row["cells"][4].split(" | ")[0] == f"{lift:+.1%}"
        chance = t["chance_to_win"]
        shown = ">99.9%" if chance > 0.999 else "<0.1%" if chance < 0.001 else f"{chance:.1%}"
        assert row["cells"][6] == shown and row["cells"][7] == f"{t['p_value']:.3g}"
        # the interval drawn: its ends map back to the CI on the axis the whole table shares
        svg, ci = row["svg"]["svg"], row["svg"]["wb-ci"]
        low, high, width = float(svg["data-axis-low"]), float(svg["data-axis-high"]), float(svg["width"])
        axes.add((low, high))
        tolerance = (high - low) / width * 0.01

        def at(x: str, low: float = low, high: float = high, width: float = width) -> float:
            return low + float(x) / width * (high - low)

        assert at(ci["x1"]) == pytest.approx(t["ci_lower"], abs=tolerance)
        assert at(ci["x2"]) == pytest.approx(t["ci_upper"], abs=tolerance)
        assert at(row["svg"]["wb-zero"]["x1"]) == pytest.approx(0, abs=tolerance)
        assert at(row["svg"]["wb-effect"]["cx"]) == pytest.approx(t["relative_effect"], abs=tolerance)
        assert row["cells"][5].endswith(f"[{change(t['ci_lower'], fmt, True)}, {change(t['ci_upper'], fmt, True)}]")
        colour = {"better": BETTER, "worse": WORSE}.get(t["significance"])
        if colour:
            assert ci["stroke"] == colour and f"wb-{t['significance']}" in row["class"]
    assert len(axes) == 1  # one shared axis
    low, high = axes.pop()
    assert low < min(results.table["ci_lower"]) and high > max(results.table["ci_upper"]) and low < 0 < high
    purchased_2 = table.loc[("purchased", "2")]
    assert purchased_2["significance"] == "worse" and purchased_2["chance_to_win"] < 0.001
    assert parsed.rows[0]["cells"][0] == "purchased | Purchased"


def test_the_text_view_and_the_header_say_the_same(results):
    text = results_text(results)
    t = results.table
    assert text.splitlines()[0] == "DECISION: Roll back Summary beside form."
    assert "Checkout layout" in text and "Hypothesis: Fewer steps, more purchases." in text
    for row in t.to_dict("records"):
        chance = row["chance_to_win"]
        shown = ">99.9%" if chance > 0.999 else "<0.1%" if chance < 0.001 else f"{chance:.1%}"
        assert shown in text and f"{row['p_value']:.3g}" in text
    assert "<0.1%" in text  # variation 2's purchases: never rounded to a certain 0.0%
    page = results._repr_html_()
    assert (
        page.index(">Checkout layout</div>")
        < page.index("Decision: Roll back Summary beside form")
        < page.index("<table")
    )
    assert "<b>Hypothesis:</b> Fewer steps, more purchases." in page
    unnamed = experiment_results(results.sufficient_statistics, results.settings)
    assert str(unnamed).splitlines()[0] == "DECISION: Roll back variation 2."
