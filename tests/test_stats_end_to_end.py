"""The issue's two cases end to end, through ``workbench analyze --format json`` on a real DuckDB file
and the suite's PostgreSQL server: a profit metric whose negative mean rises (an improvement, not a
"worse" result) and an event-level P90 over units with ~6 correlated events each (a clustered
interval, wider than the independent-events one). Expected values come from the raw rows with
pandas and from GrowthBook's engine (the ``oracle`` fixture) on the command's own sums."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import workbench as wb
from workbench.cli import app
from workbench.db.bulk_write import write_tables
from workbench.db.sql_files import TableDefinition

START = dt.datetime(2026, 3, 1)
UNITS = 3000
EXPOSURES = TableDefinition(
    "exposures_e2e",
    (("user_id", "TEXT"), ("timestamp", "TIMESTAMP"), ("experiment_id", "TEXT"), ("variation_id", "TEXT")),
)
ORDERS = TableDefinition(
    "orders_e2e", (("user_id", "TEXT"), ("timestamp", "TIMESTAMP"), ("profit", "DOUBLE PRECISION"))
)
LOADS = TableDefinition(
    "page_loads_e2e", (("user_id", "TEXT"), ("timestamp", "TIMESTAMP"), ("seconds", "DOUBLE PRECISION"))
)
CONFIG = """
identifier_types: [user_id]
assignment_queries:
  - name: exposures
    identifier_type: user_id
    sql: SELECT user_id, timestamp, experiment_id, variation_id FROM exposures_e2e
metrics:
  - name: profit_per_user
    type: mean
    sql: SELECT user_id, timestamp, profit AS value FROM orders_e2e
  - name: load_time_p90
    type: quantile
    quantile: {value: 0.9, level: event}
    inverse: true
    sql: SELECT user_id, timestamp, seconds AS value FROM page_loads_e2e
experiments:
  - key: pricing
    start: 2026-03-01
    end: 2026-03-20
    variations: ["0", "1"]
    goal_metrics: [profit_per_user, load_time_p90]
"""


def generated() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Units split evenly; one order per unit with profit around −2.0 (control) and −1.5
    (treatment); ~6 page loads per unit sharing the unit's own speed (strongly correlated)."""
    rng = np.random.default_rng(2026)
    units = [f"u{k:05d}" for k in range(UNITS)]
    variation = np.array(["0", "1"] * (UNITS // 2))
    first = [START + dt.timedelta(seconds=int(s)) for s in rng.integers(0, 15 * 86400, UNITS)]
    exposures = pd.DataFrame(
        {"user_id": units, "timestamp": first, "experiment_id": "pricing", "variation_id": variation}
    )
    profit = np.where(variation == "0", -2.0, -1.5) + rng.normal(0, 2.5, UNITS)
    orders = pd.DataFrame({"user_id": units, "timestamp": [t + dt.timedelta(hours=1) for t in first], "profit": profit})
    speed = rng.lognormal(0.0, 0.6, UNITS)
    rows = []
    for unit, t, s in zip(units, first, speed, strict=True):
        for j in range(int(rng.poisson(5)) + 1):
            rows.append((unit, t + dt.timedelta(minutes=5 * (j + 1)), float(s * rng.lognormal(0, 0.15))))
    loads = pd.DataFrame(rows, columns=["user_id", "timestamp", "seconds"])
    return exposures, orders, loads


@pytest.fixture(scope="module")
def project(backend, tmp_path_factory):
    exposures, orders, loads = generated()
    url = backend.new_url("stats_end_to_end")
    writer = wb.connect(url, read_only=False)
    tables = ((EXPOSURES, exposures), (ORDERS, orders), (LOADS, loads))
    write_tables(writer, [(d, [pa.Table.from_pandas(f, preserve_index=False)]) for d, f in tables])
    writer.dispose()
    config = tmp_path_factory.mktemp("e2e") / "workbench.yml"
    config.write_text(CONFIG, encoding="utf-8")
    return url, config, exposures, orders, loads


@pytest.fixture(scope="module")
def analysed(project):
    url, config, *_ = project
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_CONFIG", str(config))
        out = CliRunner().invoke(app, ["analyze", "pricing", "--format", "json", "--database", url])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    results = {r["metric"]: r for r in data["results"]}
    sums = {(r["metric"], r["variation"]): r for r in data["sufficient_statistics"]}
    return results, sums


def test_a_rising_negative_profit_is_an_improvement(project, analysed, oracle):
    _, _, exposures, orders, _ = project
    results, sums = analysed
    merged = orders.merge(exposures, on="user_id")
    means = merged.groupby("variation_id")["profit"].mean()
    row = results["profit_per_user"]
    assert means["0"] < 0 and means["1"] > means["0"]
    assert row["relative_effect"] == pytest.approx((means["1"] - means["0"]) / abs(means["0"]), rel=1e-9)
    assert row["relative_effect"] > 0.15 and row["ci_lower"] > 0 and row["p_value"] < 1e-6

    from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
    from gbstats.models.statistics import SampleMeanStatistic

    a, b = (sums[("profit_per_user", v)] for v in ("0", "1"))
    stats = [
        tuple(SampleMeanStatistic(n=r["count"], sum=r["main_sum"], sum_squares=r["main_sum_squares"]) for r in (a, b))
    ]
    reference = TwoSidedTTest(stats, FrequentistConfig()).compute_result()
    assert row["relative_effect"] == pytest.approx(reference.expected, rel=1e-6)
    assert (row["ci_lower"], row["ci_upper"]) == pytest.approx(reference.ci, rel=1e-6)
    assert row["p_value"] == pytest.approx(reference.pValue, rel=1e-6, abs=1e-300)


def test_an_event_quantile_over_correlated_events_gets_the_clustered_interval(project, analysed, oracle):
    _, _, exposures, _, loads = project
    results, sums = analysed
    merged = loads.merge(exposures, on="user_id")
    for variation in ("0", "1"):
        values = np.sort(merged.loc[merged["variation_id"] == variation, "seconds"].to_numpy())
        row = sums[("load_time_p90", variation)]
        assert row["quantile_n"] == len(values)
        assert row["quantile"] == pytest.approx(values[math.ceil(0.9 * len(values)) - 1], rel=1e-12)
        assert row["users"] == UNITS // 2

    from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
    from gbstats.models.statistics import QuantileClusteredStatistic, QuantileStatistic

    def statistic(r: dict, clustered: bool):
        common = {"n": r["quantile_n"], "n_star": r["quantile_nstar"], "nu": 0.9, "quantile_hat": r["quantile"],
                  "quantile_lower": r["quantile_lower"], "quantile_upper": r["quantile_upper"]}  # fmt: skip
        if not clustered:
            return QuantileStatistic(**common)
        return QuantileClusteredStatistic(**common, main_sum=r["main_sum"], main_sum_squares=r["main_sum_squares"],
                                          denominator_sum=r["denominator_sum"], denominator_sum_squares=r["denominator_sum_squares"],
                                          main_denominator_sum_product=r["main_denominator_sum_product"], n_clusters=r["users"])  # fmt: skip

    a, b = (sums[("load_time_p90", v)] for v in ("0", "1"))
    clustered = TwoSidedTTest([(statistic(a, True), statistic(b, True))], FrequentistConfig()).compute_result()
    independent = TwoSidedTTest([(statistic(a, False), statistic(b, False))], FrequentistConfig()).compute_result()
    row = results["load_time_p90"]
    assert row["relative_effect"] == pytest.approx(clustered.expected, rel=1e-6)
    assert (row["ci_lower"], row["ci_upper"]) == pytest.approx(clustered.ci, rel=1e-6)
    assert row["p_value"] == pytest.approx(clustered.pValue, rel=1e-6)
    # a unit's page loads share its speed: the honest interval is much wider than the iid one
    width = row["ci_upper"] - row["ci_lower"]
    assert width > 1.8 * (independent.ci[1] - independent.ci[0])
    assert row["note"] is None
