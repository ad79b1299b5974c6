"""Capping that ignores zeros, the ``*_uncapped`` sums, post-stratification strata rows and
per-metric priors: the SQL side on DuckDB and PostgreSQL (GrowthBook's sample data), each against a
brute-force pandas computation from the raw CSV files (tests/support/experiment_reference.py)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import workbench as wb
from support import experiment_reference as ref
from workbench.db.dialects import transpile
from workbench.errors import ConfigError
from workbench.experiments import sql as sql_builder
from workbench.experiments.analysis import analysis_settings, analyze
from workbench.experiments.config import load_config, parse_config
from workbench.experiments.engine import experiment, sufficient_stats

ROOT = Path(__file__).resolve().parents[1]
START, END = dt.datetime(2026, 9, 25), dt.datetime(2026, 11, 22, 23, 59, 59, 999999)
ORDERS = "SELECT userId AS user_id, anonymousId AS anonymous_id, timestamp, amount AS value FROM orders"
SUMS = ["users", "count", "main_sum", "main_sum_squares", "covariate_sum", "covariate_sum_squares"]
SUMS += ["main_covariate_sum_product", "denominator_sum", "denominator_sum_squares", "main_denominator_sum_product"]


def config_data(**experiment_changes) -> dict:
    """The repository's workbench.yml with two more metrics (a percentile cap over non-zero values
    with CUPED and a prior; a ratio with that numerator) and checkout-layout only."""
    data = yaml.safe_load((ROOT / "workbench.yml").read_text())
    data["metrics"] += [
        {
            "name": "revenue_nz_capped",
            "type": "mean",
            "sql": ORDERS,
            "capping": {"type": "percentile", "value": 0.9, "ignore_zeros": True},
            "cuped": {"lookback_days": 14},
            "prior": {"mean": 0.01, "stddev": 0.2},
        },
        {"name": "aov_nz_capped", "type": "ratio", "numerator": "revenue_nz_capped", "denominator": "orders_per_user"},
    ]
    entry = next(e for e in data["experiments"] if e["key"] == "checkout-layout")
    entry |= {"goal_metrics": ["revenue_nz_capped", "aov_nz_capped"], "secondary_metrics": []}
    entry |= {"guardrail_metrics": ["session_duration"], **experiment_changes}
    data["experiments"] = [entry]
    return data


@pytest.fixture(scope="module")
def db(growthbook_url):
    database = wb.connect(growthbook_url)
    yield database
    database.dispose()


def included_units(sample_dir) -> pd.DataFrame:
    u = ref.units(sample_dir, "checkout-layout", START, END)
    return u[u["variation"] != ref.MULTIPLE].reset_index(drop=True)


def uncapped_revenue(sample_dir, u: pd.DataFrame, monkeypatch) -> pd.DataFrame:
    """Per unit: revenue after first exposure (``main``) and over the 14 days before (``pre``), uncapped."""
    monkeypatch.setitem(ref.BASE, "revenue_per_user_cuped", ("mean", 0, None, None, None, 14))
    return ref.per_unit(sample_dir, "revenue_per_user_cuped", u, END)


# -- config --------------------------------------------------------------------------------------
def test_new_keys_parse_and_reach_the_analysis_settings(tmp_path):
    cfg = parse_config(config_data(analysis={"post_stratification": ["country", "browser"]}), tmp_path / "w.yml")
    metric = cfg.metric("revenue_nz_capped")
    assert metric.capping.ignore_zeros and metric.capping.value == 0.9
    assert (metric.prior.mean, metric.prior.stddev) == (0.01, 0.2)
    assert cfg.metric("session_duration").capping.ignore_zeros is False
    settings = analysis_settings(experiment("checkout-layout", cfg))
    prior = settings.metric_priors["revenue_nz_capped"]
    assert (prior.mean, prior.sd, prior.proper) == (0.01, 0.2, True)
    assert set(settings.metric_priors) == {"revenue_nz_capped"}
    assert tuple(settings.post_stratification) == ("country", "browser")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"capping": {"type": "absolute", "value": 100, "ignore_zeros": True}},
            r"metric 'revenue_nz_capped'\.capping\.ignore_zeros: applies to percentile caps only \(an absolute cap does not depend on the other values\); remove it or use type: percentile\.",
        ),
        (
            {"capping": {"type": "percentile", "value": 0.9, "ignore_zeros": "yes"}},
            r"capping\.ignore_zeros: must be true or false, not 'yes'\.",
        ),
        ({"prior": {"mean": 0, "stddev": 0}}, r"metric 'revenue_nz_capped'\.prior\.stddev: must be > 0, not 0\."),
        ({"prior": {"mean": 0, "stddev": -1}}, r"prior\.stddev: must be > 0, not -1\."),
        ({"prior": {"mean": 0}}, r"metric 'revenue_nz_capped'\.prior: the key 'stddev' is required\."),
        ({"prior": {"stddev": 0.3, "sd": 1}}, r"prior: unknown key\(s\) \['sd'\]; allowed: \['mean', 'stddev'\]\."),
        ({"prior": 0.3}, r"prior: must be a mapping like \{mean: 0\.0, stddev: 0\.3\} \(relative effect\)\."),
        ({"prior": {"mean": "high", "stddev": 0.3}}, r"prior\.mean: must be a number, not 'high'\."),
    ],
)
def test_metric_key_errors_are_one_sentence(tmp_path, change, message):
    data = config_data()
    next(m for m in data["metrics"] if m["name"] == "revenue_nz_capped").update(change)
    with pytest.raises(ConfigError, match=message):
        parse_config(data, tmp_path / "w.yml")


def test_unknown_strata_dimension_is_refused_before_any_query(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"experiment 'checkout-layout'\.analysis\.post_stratification: 'device' is not a dimension of "
        r"assignment query 'logged_in'; use some of \['browser', 'country'\]\.",
    ):
        parse_config(
            config_data(analysis={"post_stratification": ["browser", "device"]}), tmp_path / "w.yml"
        ).experiment("checkout-layout")
    with pytest.raises(ConfigError, match=r"post_stratification: lists a name twice"):
        parse_config(config_data(analysis={"post_stratification": ["browser", "browser"]}), tmp_path / "w.yml").strict()
    exp = experiment("checkout-layout", parse_config(config_data(), tmp_path / "w.yml"))

    class NoDatabase:
        def __getattr__(self, name):
            raise AssertionError(f"a query ran ({name}) before the settings were checked")

    with pytest.raises(ConfigError, match=r"'os' is not a dimension of assignment query 'logged_in'"):
        analyze(exp, NoDatabase(), post_stratification=["os"])


@pytest.mark.parametrize("dialect", ["bigquery", "snowflake", "trino", "spark"])
def test_strata_and_uncapped_sql_transpiles(tmp_path, dialect):
    import sqlglot

    cfg = parse_config(config_data(), tmp_path / "w.yml")
    exp = cfg.experiment("checkout-layout")
    query = sql_builder.experiment_query(cfg, exp, (), 20, None, ("browser", "country"))
    assert "WHERE wb_included AND m0_main <> 0" in query.sql and "m0_main_uncapped" in query.sql
    sqlglot.parse_one(transpile(query.sql, dialect, query.params), read=dialect)


# -- capping -------------------------------------------------------------------------------------
def test_percentile_cap_over_non_zero_values_and_uncapped_sums(db, sample_dir, tmp_path, monkeypatch):
    cfg = parse_config(config_data(), tmp_path / "w.yml")
    ours = sufficient_stats(experiment("checkout-layout", cfg), db=db)
    u = included_units(sample_dir)
    raw = uncapped_revenue(sample_dir, u, monkeypatch)
    values = np.sort(raw["main"].to_numpy())
    nonzero = values[values != 0]
    cap = nonzero[math.ceil(len(nonzero) * 0.9) - 1]  # nearest rank over the non-zero values only
    cap_all = values[math.ceil(len(values) * 0.9) - 1]
    assert cap > cap_all  # most units spend nothing: ignoring zeros changes the cap
    capped = raw[["main", "pre"]].clip(upper=cap)
    orders = ref.per_unit(sample_dir, "orders_per_user", u, END)["main"]
    rows = ours.set_index(["metric", "variation"])
    for variation, arm in u.groupby("variation"):
        units = arm["unit"].to_numpy()
        y, x, yr, xr, d = (
            capped.loc[units, "main"],
            capped.loc[units, "pre"],
            raw.loc[units, "main"],
            raw.loc[units, "pre"],
            orders.loc[units],
        )
        expected = {
            "main_sum": y.sum(),
            "main_sum_squares": (y * y).sum(),
            "covariate_sum": x.sum(),
            "covariate_sum_squares": (x * x).sum(),
            "main_covariate_sum_product": (y * x).sum(),
            "main_sum_uncapped": yr.sum(),
            "main_sum_squares_uncapped": (yr * yr).sum(),
            "covariate_sum_uncapped": xr.sum(),
            "covariate_sum_squares_uncapped": (xr * xr).sum(),
            "main_covariate_sum_product_uncapped": (yr * xr).sum(),
        }
        row = rows.loc[("revenue_nz_capped", variation)]
        for stat, value in expected.items():
            assert row[stat] == pytest.approx(value, rel=1e-9), (variation, stat)
        ratio = rows.loc[("aov_nz_capped", variation)]
        for stat, value in {
            "main_sum": y.sum(),
            "denominator_sum": d.sum(),
            "main_denominator_sum_product": (y * d).sum(),
            "main_sum_uncapped": yr.sum(),
            "main_sum_squares_uncapped": (yr * yr).sum(),
            "denominator_sum_uncapped": d.sum(),
            "denominator_sum_squares_uncapped": (d * d).sum(),
            "main_denominator_sum_product_uncapped": (yr * d).sum(),
        }.items():
            assert ratio[stat] == pytest.approx(value, rel=1e-9), (variation, stat)
    # a percentile cap keeping zeros (session_duration) also carries its uncapped sums; uncapped metrics none
    duration = ours[ours["metric"] == "session_duration"]
    assert (duration["main_sum_uncapped"] >= duration["main_sum"]).all()
    assert (duration["main_sum_uncapped"] > duration["main_sum"]).any()
    assert duration["covariate_sum_uncapped"].notna().all()


def test_uncapped_columns_are_nan_for_uncapped_metrics(db):
    cfg = load_config(ROOT / "workbench.yml")
    ours = sufficient_stats(experiment("checkout-layout", cfg), db=db, metrics=("purchased", "average_order_value"))
    names = ["main_sum_uncapped", "main_sum_squares_uncapped", "covariate_sum_uncapped"]
    names += ["covariate_sum_squares_uncapped", "main_covariate_sum_product_uncapped", "denominator_sum_uncapped"]
    names += ["denominator_sum_squares_uncapped", "main_denominator_sum_product_uncapped"]
    assert ours[names].isna().all().all()


# -- strata --------------------------------------------------------------------------------------
STRATA_METRICS = ("purchased", "revenue_per_user_cuped", "average_order_value", "page_views_per_user")


def reference_strata(sample_dir, top_n: int) -> pd.DataFrame:
    """Included units with their stratum: browser (Edge made NULL) and country at first exposure,
    each as in dimension rows (top N values, others "(other)"), joined with " | "."""
    views = ref.raw(sample_dir, "experimentViews")
    ev = views[
        (views["experimentId"] == "checkout-layout") & (views["timestamp"] >= START) & (views["timestamp"] <= END)
    ]
    ev = ev.assign(browser=ev["browser"].where(ev["browser"] != "Edge"))
    ev = ev.sort_values(["timestamp", "variationId", "browser", "country"], kind="stable", na_position="last")
    first = ev.groupby("userId", sort=False).head(1).set_index("userId")
    u = included_units(sample_dir).set_index("unit")
    parts = []
    for column in ("browser", "country"):
        value = first.loc[u.index, column].fillna("(null)")
        counts = value.value_counts()
        keep = set(sorted(counts.index, key=lambda v: (-counts[v], v))[:top_n])
        parts.append(value.where(value.isin(keep), "(other)"))
    return u.assign(stratum=parts[0] + " | " + parts[1]).reset_index()


def test_strata_rows_equal_a_group_by_over_the_stratum_key(db, sample_dir, tmp_path):
    data = config_data()
    data["assignment_queries"][0]["sql"] = data["assignment_queries"][0]["sql"].replace(
        "browser,", "CASE WHEN browser = 'Edge' THEN NULL ELSE browser END AS browser,"
    )
    cfg = parse_config(data, tmp_path / "w.yml")
    exp = experiment("checkout-layout", cfg)
    ours = sufficient_stats(exp, db=db, metrics=STRATA_METRICS, strata=("browser", "country"), top_n=3)
    assert set(ours["dimension"]) == {"overall", sql_builder.STRATA}
    strata = ours[ours["dimension"] == sql_builder.STRATA]
    u = reference_strata(sample_dir, top_n=3)
    assert set(strata["dimension_value"]) == set(u["stratum"])
    assert any(v.startswith("(null) | ") for v in u["stratum"]) and any("(other)" in v for v in u["stratum"])
    rows = strata.set_index(["metric", "dimension_value", "variation"])
    for name in STRATA_METRICS:
        if name in ref.RATIOS:
            num, den = (ref.per_unit(sample_dir, p, u, END)["main"] for p in ref.RATIOS[name])
            values = pd.DataFrame({"m": num, "d": den})
        else:
            per = ref.per_unit(sample_dir, name, u, END)
            values = pd.DataFrame({"m": per["main"], "x": per.get("pre", np.nan)})
        values = values.loc[u["unit"]].reset_index(drop=True).assign(stratum=u["stratum"], variation=u["variation"])
        for (stratum, variation), g in values.groupby(["stratum", "variation"]):
            row = rows.loc[(name, stratum, variation)]
            assert row["users"] == len(g) == row["count"]
            assert row["main_sum"] == pytest.approx(g["m"].sum(), rel=1e-12, abs=1e-9)
            assert row["main_sum_squares"] == pytest.approx((g["m"] ** 2).sum(), rel=1e-12, abs=1e-9)
            if "x" in g and g["x"].notna().all():
                assert row["covariate_sum"] == pytest.approx(g["x"].sum(), rel=1e-12, abs=1e-9)
                assert row["main_covariate_sum_product"] == pytest.approx((g["m"] * g["x"]).sum(), rel=1e-12, abs=1e-9)
            if "d" in g:
                assert row["denominator_sum"] == pytest.approx(g["d"].sum(), rel=1e-12, abs=1e-9)
                assert row["main_denominator_sum_product"] == pytest.approx(
                    (g["m"] * g["d"]).sum(), rel=1e-12, abs=1e-9
                )
    # the strata add up to the overall rows, every summed column (uncapped sums included)
    summed = [c for c in [*SUMS, "main_sum_uncapped", "covariate_sum_uncapped"] if strata[c].notna().any()]
    overall = ours[ours["dimension"] == "overall"].groupby(["metric", "variation"])[summed].sum()
    split = strata.groupby(["metric", "variation"])[summed].sum()
    pd.testing.assert_frame_equal(overall, split, check_dtype=False, rtol=1e-12)
    # and the overall rows are those of the query without strata
    plain = sufficient_stats(exp, db=db, metrics=STRATA_METRICS)
    pd.testing.assert_frame_equal(
        ours[ours["dimension"] == "overall"].reset_index(drop=True)[summed],
        plain[summed],
        check_dtype=False,
        rtol=1e-12,
    )


def test_analyze_hands_the_strata_rows_to_the_statistics_engine(db, tmp_path, monkeypatch):
    import workbench.stats

    seen = {}

    def capture(table, settings, *args, **kwargs):
        seen["table"], seen["settings"] = table, settings
        raise RuntimeError("captured")

    monkeypatch.setattr(workbench.stats, "experiment_results", capture)
    cfg = parse_config(config_data(analysis={"post_stratification": ["country"]}), tmp_path / "w.yml")
    with pytest.raises(RuntimeError, match="captured"):
        analyze(experiment("checkout-layout", cfg), db, dimensions=["browser"])
    table = seen["table"]
    assert set(table["dimension"]) == {"overall", "browser", sql_builder.STRATA}
    strata = table[table["dimension"] == sql_builder.STRATA]
    assert set(strata["metric"]) == {"revenue_nz_capped", "aov_nz_capped", "session_duration"}
    by_country = strata[strata["metric"] == "revenue_nz_capped"].groupby("dimension_value")["users"].sum()
    assert len(by_country) > 1 and " | " not in by_country.index[0]  # one dimension: the value itself
    assert (table[table["dimension"] == "overall"]["metric"].value_counts() == 3).all()  # overall rows once
    assert seen["settings"].metric_priors["revenue_nz_capped"].proper
