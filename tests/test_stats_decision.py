"""The decision rule (workbench/stats/decision.py), branch by branch on small constructed results,
then on GrowthBook's sample data: price-display names its revenue harm, checkout-layout is not
trusted because of its sample-ratio mismatch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import workbench as wb
from support.stats_oracle import sums_row
from workbench.cli import app
from workbench.experiments.analysis import analyze
from workbench.experiments.config import load_config
from workbench.experiments.engine import experiment
from workbench.stats import AnalysisSettings, experiment_results, mid_experiment_power
from workbench.stats.moments import ArmMoments
from workbench.stats.results import REQUIRED_COLUMNS

CONFIG = Path(__file__).resolve().parents[1] / "workbench.yml"


def converted(metric: str, variation: str, units: int, conversions: int, **where) -> dict:
    """A binomial metric's row: ``conversions`` of ``units`` converted."""
    return sums_row(metric, "binomial", variation, np.r_[np.ones(conversions), np.zeros(units - conversions)], **where)


def arm(units: int, conversions: int) -> ArmMoments:
    """A binomial arm's moments (variance p(1 - p), gbstats' ProportionStatistic)."""
    p = conversions / units
    return ArmMoments(units, p, p * (1 - p), p)


def days(n: int, variations=("0", "1")) -> pd.DataFrame:
    """Units per day over ``n`` days (the decision only reads the first and last day)."""
    return pd.DataFrame(
        [
            {"day": pd.Timestamp("2026-11-01") + pd.Timedelta(days=d), "variation": v, "users": 10}
            for d in range(n)
            for v in variations
        ]
    )


def decision_of(rows: list[dict], units_per_day: pd.DataFrame | None = None, **settings):
    settings.setdefault("goal_metrics", ("purchased",))
    return experiment_results(pd.DataFrame(rows), AnalysisSettings(**settings), units_per_day=units_per_day).decision


def test_ship_a_variation_better_on_the_goal_and_worse_on_nothing():
    d = decision_of([converted("purchased", "0", 2000, 400), converted("purchased", "1", 2000, 500),
                     converted("clicked", "0", 2000, 600), converted("clicked", "1", 2000, 610)],
                    secondary_metrics=("clicked",))  # fmt: skip
    assert (d.action, d.variations, d.headline) == ("ship", ("1",), "Ship variation 1")
    assert d.reasons[0].startswith("Variation 1 is significantly better on purchased (+25.0%, p = ")


def test_harm_on_a_secondary_metric_rolls_back_and_names_it():
    results = experiment_results(
        pd.DataFrame([converted("purchased", "0", 2000, 400), converted("purchased", "1", 2000, 410),
                      converted("revenue", "0", 2000, 600), converted("revenue", "1", 2000, 400)]),
        AnalysisSettings(goal_metrics=("purchased",), secondary_metrics=("revenue",)),
    )  # fmt: skip
    d, p = results.decision, results.table.set_index("metric").loc["revenue", "p_value"]
    assert (d.action, d.variations, d.label, d.headline) == (
        "roll back",
        ("1",),
        "roll back 1",
        "Roll back variation 1",
    )
    assert p < 1e-10 and d.reasons == (f"Variation 1 is significantly worse on revenue (-33.3%, p = {p:.2g}).",)


def test_a_goal_win_with_a_guardrail_harm_is_no_ship():
    d = decision_of([converted("purchased", "0", 2000, 400), converted("purchased", "1", 2000, 500),
                     converted("stayed", "0", 2000, 1800), converted("stayed", "1", 2000, 1700)],
                    guardrail_metrics=("stayed",))  # fmt: skip
    assert d.action == "roll back" and d.reasons[0].startswith(
        "Variation 1 is significantly worse on stayed (-5.6%, p = "
    )


def test_of_three_arms_ship_the_harmless_winner_and_say_the_other_harms():
    d = decision_of([converted("purchased", "0", 2000, 400), converted("purchased", "1", 2000, 500),
                     converted("purchased", "2", 2000, 300)])  # fmt: skip
    assert (d.action, d.variations) == ("ship", ("1",))
    assert d.reasons[1].startswith("Variation 2 is significantly worse on purchased (-25.0%")


def test_keep_running_gives_the_days_mid_experiment_power_asks_for():
    rows = [converted("purchased", "0", 3000, 600), converted("purchased", "1", 3000, 630)]
    d = decision_of(rows, days(14))
    power = mid_experiment_power(arm(3000, 600), arm(3000, 630), target_mde=0.1)
    assert d.action == "keep running"
    assert d.more_units == pytest.approx(power.additional_units, rel=1e-9)
    assert d.more_days == pytest.approx(power.additional_days(14), rel=1e-9)
    assert 0 < power.scaling_factor <= 3
    assert (
        d.headline
        == f"Keep running: about {int(np.ceil(power.additional_days(14)))} more days for the planned 10% effect"
    )
    assert f"{power.power:.0%} power to detect a 10% effect so far" in d.reasons[0]
    # without days (no units per day), the units still needed
    assert decision_of(rows).label == f"keep running (about {power.additional_units:,.0f} more units)"


def test_inconclusive_when_already_powered_or_too_far_from_it():
    powered = decision_of(
        [converted("purchased", "0", 30000, 6000), converted("purchased", "1", 30000, 6030)], days(14)
    )
    assert powered.action == "inconclusive" and "would most likely have shown" in powered.reasons[0]
    far = decision_of([converted("purchased", "0", 100, 20), converted("purchased", "1", 100, 21)], days(3))
    power = mid_experiment_power(arm(100, 20), arm(100, 21), target_mde=0.1)
    assert power.scaling_factor > 3
    assert far.action == "inconclusive" and far.reasons[-1].startswith(
        "80% power for a 10% effect needs more than 3 times"
    )
    no_goal = decision_of(
        [converted("clicked", "0", 100, 20), converted("clicked", "1", 100, 21)],
        goal_metrics=(),
        secondary_metrics=("clicked",),
    )
    assert no_goal.action == "inconclusive" and "no goal metrics are configured" in no_goal.reasons[0]
    absolute = decision_of([converted("purchased", "0", 100, 20), converted("purchased", "1", 100, 21)],
                           difference_type="absolute")  # fmt: skip
    assert absolute.action == "inconclusive" and "power could not be computed" in absolute.reasons[0]


def test_failed_health_is_never_a_ship():
    rows = [converted("purchased", "0", 2000, 400), converted("purchased", "1", 2600, 650)]
    d = decision_of(rows)
    assert d.action == "don't trust yet" and d.tone == "worse"
    assert d.headline == "Don't trust yet: the health checks failed" and d.reasons[0].startswith(
        "Sample ratio mismatch"
    )


def test_no_units_is_no_data_but_units_without_metrics_are_not():
    d = decision_of([converted("purchased", "0", 0, 0), converted("purchased", "1", 0, 0)])
    assert (d.action, d.headline, d.label) == ("no data", "No data yet", "no data yet")
    # a discovered experiment's stub entry: units (the health facts), no metrics
    counts = pd.DataFrame(
        {"dimension": "overall", "dimension_value": "all", "variation": ["0", "1"], "users": [500, 510]}
    )
    stub = experiment_results(
        pd.DataFrame(columns=list(REQUIRED_COLUMNS)), AnalysisSettings(variations=("0", "1")), unit_counts=counts
    )
    assert stub.health.units == 1010
    assert (stub.decision.action, stub.decision.reasons) == (
        "inconclusive",
        ("Nothing decides this experiment: no metrics are configured.",),
    )


def test_the_decision_is_first_in_the_text_and_json():
    results = experiment_results(
        pd.DataFrame([converted("purchased", "0", 2000, 400), converted("purchased", "1", 2000, 500)]),
        AnalysisSettings(goal_metrics=("purchased",)),
        experiment="demo",
    )
    assert str(results).splitlines()[0] == "DECISION: Ship variation 1."
    payload = results.to_dict()
    json.dumps(payload, allow_nan=False)
    assert payload["decision"]["action"] == "ship" and payload["decision"]["variations"] == ["1"]


# -- GrowthBook's sample data ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample(growthbook_url):
    db = wb.connect(growthbook_url)
    config = load_config(CONFIG)
    yield lambda key: analyze(experiment(key, config), db, dimensions=())
    db.dispose()


def test_price_display_is_rolled_back_for_its_revenue_harm(sample):
    results = sample("price-display")
    d = results.decision
    t = results.table.set_index("metric")
    assert t.loc["revenue_per_user", "significance"] == "worse" and t.loc["purchased", "significance"] == ""
    assert (d.action, d.variations) == ("roll back", ("1",))
    assert "revenue_per_user (-33.0%" in d.reasons[0] and "average_order_value (-36.0%" in d.reasons[0]


def test_checkout_layout_is_not_trusted_for_its_sample_ratio_mismatch(sample):
    results = sample("checkout-layout")
    assert results.health.srm_flagged
    assert results.decision.action == "don't trust yet"
    assert any(r.startswith("Sample ratio mismatch") for r in results.decision.reasons)


def test_cli_states_the_decision_first(growthbook_url, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CONFIG", str(CONFIG))
    out = CliRunner().invoke(app, ["analyze", "price-display", "--overall-only", "--database", growthbook_url])
    assert out.exit_code == 0, out.output
    first, second = out.output.splitlines()[:2]
    assert first == "DECISION: Roll back All-in prices."  # the variation's name in workbench.yml
    assert second.startswith("- All-in prices is significantly worse on revenue_per_user (-33.0%")
    out = CliRunner().invoke(
        app, ["analyze", "price-display", "--overall-only", "--format", "json", "--database", growthbook_url]
    )
    payload = json.loads(out.output)  # JSON keeps the ids, and says the names
    assert payload["decision"]["variations"] == ["1"] and {r["variation"] for r in payload["results"]} == {"1"}
    assert payload["variation_names"] == {"0": "Control", "1": "All-in prices"}
