"""The experiment engine on GrowthBook's sample data, DuckDB and PostgreSQL, against an independent
pandas computation from the raw CSV files (tests/experiment_reference.py)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import workbench as wb
from support import experiment_reference as ref
from workbench.errors import ConfigError
from workbench.experiments.config import load_config, parse_config
from workbench.experiments.discovery import discover_experiments
from workbench.experiments.engine import experiment, experiment_facts, health_facts, sufficient_stats, unit_metrics

ROOT = Path(__file__).resolve().parents[1]
START, END = dt.datetime(2026, 9, 25), dt.datetime(2026, 11, 22, 23, 59, 59, 999999)
ALL_METRICS = (
    "purchased",
    "bulk_buyer",
    "revenue_per_user",
    "average_order_value",
    "revenue_per_user_cuped",
    "order_amount_p90",
    "session_duration",
    "page_views_per_user",
    "retention_rate",
    "sessions_per_user",
    "pages_per_session",
    "sessions_with_searches",
    "added_to_cart",
)
STATS = [
    "users",
    "count",
    "main_sum",
    "main_sum_squares",
    "denominator_sum",
    "denominator_sum_squares",
    "main_denominator_sum_product",
    "covariate_sum",
    "covariate_sum_squares",
    "main_covariate_sum_product",
    "denominator_pre_sum",
    "main_pre_denominator_pre_sum_product",
    "quantile",
    "quantile_n",
    "quantile_nstar",
    "quantile_lower",
    "quantile_upper",
    "quantile_level",
]


@pytest.fixture(scope="module")
def config():
    return load_config(ROOT / "workbench.yml")


@pytest.fixture(scope="module")
def db(growthbook_url):
    database = wb.connect(growthbook_url)
    yield database
    database.dispose()


def assert_matches_reference(ours: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Every statistic of ``expected`` equals ours exactly (all per-unit values are integers)."""
    keys = ["metric", "dimension_value", "variation"]
    merged = expected.merge(ours, on=keys, how="outer", suffixes=("_ref", ""), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"][keys]
    for stat in STATS:
        if f"{stat}_ref" not in merged:
            assert ours[stat].isna().all() or stat in ("users", "count"), stat
            continue
        exp_v = merged[f"{stat}_ref"].astype(float)
        got = merged[stat].astype(float)
        both_nan = exp_v.isna() & got.isna()
        mismatched = merged[~both_nan & (exp_v != got)]
        assert mismatched.empty, (stat, mismatched[[*keys, f"{stat}_ref", stat]].head(10))


def test_checkout_layout_reports_its_multiple_exposure_units(db, config, sample_dir):
    units, days = health_facts(experiment("checkout-layout", config), db=db)
    views = ref.raw(sample_dir, "experimentViews")
    ev = views[views["experimentId"] == "checkout-layout"]
    per_user = ev.groupby("userId")["variationId"].nunique()
    overall = units.set_index("variation")["users"]
    assert overall[ref.MULTIPLE] == (per_user > 1).sum()
    assert 700 <= overall[ref.MULTIPLE] <= 760
    single = (
        ev[ev["userId"].isin(per_user[per_user == 1].index)].drop_duplicates("userId")["variationId"].value_counts()
    )
    for variation in ("0", "1", "2"):
        assert overall[variation] == single[variation]
    assert set(units["status"]) == {"included", "multiple"}
    first = ev.sort_values("timestamp").drop_duplicates("userId")
    first_day = first["timestamp"].dt.floor("D")
    assert days["users"].sum() == len(per_user)
    assert days.groupby("day")["users"].sum().to_dict() == first_day.value_counts().sort_index().to_dict()


def test_every_metric_type_equals_pandas_on_the_raw_files(db, config, sample_dir):
    ours = sufficient_stats(experiment("checkout-layout", config), db=db, metrics=ALL_METRICS)
    expected = ref.sufficient_stats(sample_dir, "checkout-layout", START, END, ["0", "1", "2"], ALL_METRICS)
    assert (ours["dimension"] == "overall").all() and (ours["dimension_value"] == "all").all()
    assert_matches_reference(ours, expected)
    assert "GROUP BY" in ours.attrs["sql"] and ours.attrs["params"]["experiment_key"] == "checkout-layout"
    # the statistics that must be populated are: covariates only for CUPED metrics, quantiles only for quantile metrics
    cuped = ours[ours["covariate_sum"].notna()]["metric"].unique()
    assert sorted(cuped) == ["page_views_per_user", "revenue_per_user_cuped", "session_duration"]
    assert (ours[ours["metric"] == "session_duration"]["covariate_sum"] > 0).all()


def test_dimension_breakdown_keeps_top_values_and_other(db, config, sample_dir):
    metrics = ("purchased", "average_order_value", "order_amount_p90", "page_views_per_user")
    ours = sufficient_stats(experiment("checkout-layout", config), "browser", db=db, top_n=3, metrics=metrics)
    expected = ref.sufficient_stats(
        sample_dir, "checkout-layout", START, END, ["0", "1", "2"], metrics, dimension="browser", top_n=3
    )
    assert sorted(ours[ours["dimension"] == "browser"]["dimension_value"].unique()) == [
        "(other)",
        "Chrome",
        "Edge",
        "Safari",
    ]
    assert_matches_reference(ours, expected)
    # nothing silently dropped: the dimension rows add up to the overall rows (a quantile's sᵢ
    # compare with each slice's own quantile, so only its event counts add up)
    summed = ["users", "main_sum", "denominator_sum"]
    ours = ours.assign(main_sum=ours["main_sum"].where(ours["metric_type"] != "quantile"))
    overall = ours[ours["dimension"] == "overall"].groupby(["metric", "variation"])[summed].sum()
    split = ours[ours["dimension"] == "browser"].groupby(["metric", "variation"])[summed].sum()
    pd.testing.assert_frame_equal(overall, split)


def test_one_query_gives_every_dimension_and_the_health_facts(db, config, sample_dir):
    """`experiment_facts` with two dimensions (one query): each dimension's rows equal the pandas
    reference of that dimension alone, and the health facts count the units per dimension value."""
    metrics = ("purchased", "bulk_buyer", "average_order_value", "order_amount_p90", "session_duration")
    exp = experiment("checkout-layout", config)
    facts = experiment_facts(exp, db, dimensions=("browser", "country"), top_n=3, metrics=metrics)
    assert facts.stats.attrs["sql"].count("GROUPING SETS") == 1
    for dimension in ("browser", "country"):
        ours = facts.stats[facts.stats["dimension"].isin(["overall", dimension])]
        expected = ref.sufficient_stats(
            sample_dir, "checkout-layout", START, END, ["0", "1", "2"], metrics, dimension=dimension, top_n=3
        )
        assert_matches_reference(ours, expected)
        units = ref.units(sample_dir, "checkout-layout", START, END, "userId", dimension, 3)
        counted = facts.units[facts.units["dimension"] == dimension].set_index(["dimension_value", "variation"])
        assert counted["users"].to_dict() == units.groupby(["dim", "variation"]).size().to_dict()
    assert list(dict.fromkeys(facts.units["dimension"])) == ["overall", "browser", "country"]
    assert facts.days["users"].sum() == facts.units[facts.units["dimension"] == "overall"]["users"].sum()


def test_a_fact_table_read_with_select_star_is_checked_before_the_query(db, config, tmp_path):
    data = yaml.safe_load((ROOT / "workbench.yml").read_text())
    data["fact_tables"].append(
        {
            "name": "raw_orders",
            "identifier_types": ["user_id"],
            "sql": "SELECT * FROM (SELECT userId AS user_id, timestamp, amount FROM orders) o",
        }
    )
    data["metrics"].append({"name": "typo", "type": "mean", "fact_table": "raw_orders", "column": "amout"})
    data["experiments"][0]["goal_metrics"] = ["typo"]
    cfg = parse_config(data, tmp_path / "workbench.yml")  # the columns of SELECT * are not known yet
    with pytest.raises(
        ConfigError,
        match=r"fact table 'raw_orders' \(metric 'typo'\): the SQL returns \['user_id', 'timestamp', 'amount'\] but needs \['amout'\]",
    ):
        sufficient_stats(experiment("checkout-layout", cfg), db=db)


def test_anonymous_units_with_identity_join_and_unknown_variations(db, config, sample_dir, tmp_path):
    data = yaml.safe_load((ROOT / "workbench.yml").read_text())
    data["experiments"] = [
        {
            "key": "homepage-nav-ios",
            "assignment_query": "anonymous",
            "start": "2026-09-25",
            "end": "2026-11-22",
            "variations": ["0", "1"],
            "goal_metrics": ["purchased", "page_views_per_user", "pages_per_session"],
        }
    ]
    cfg = parse_config(data, tmp_path / "workbench.yml")
    exp = experiment("homepage-nav-ios", cfg)
    ours = sufficient_stats(exp, db=db)
    expected = ref.sufficient_stats(
        sample_dir, "homepage-nav-ios", START, END, ["0", "1"], list(exp.metrics), unit_col="anonymousId"
    )
    assert_matches_reference(ours, expected)
    units, _ = health_facts(exp, db=db)
    all_units = ref.units(sample_dir, "homepage-nav-ios", START, END, "anonymousId")
    assert units.set_index("variation")["users"].to_dict() == all_units["variation"].value_counts().to_dict()
    assert units.set_index("variation").loc["2", "status"] == "unknown"


def test_unit_metrics_have_abautomator_shape(db, config, sample_dir):
    exp = experiment("checkout-layout", config)
    frame = unit_metrics(exp, db=db, metrics=("purchased", "sessions_with_searches"))
    u = ref.units(sample_dir, "checkout-layout", START, END)
    u = u[u["variation"] != ref.MULTIPLE]
    assert sorted(frame["unit"]) == sorted(u["unit"])
    for name in ("purchased", "sessions_with_searches"):
        expected = ref.per_unit(sample_dir, name, u, END)
        got = frame.set_index("unit")
        assert (got[f"n_{name}"] == expected.loc[got.index, "main"]).all()
        assert (got[f"pct_{name}"] == (expected.loc[got.index, "rows"] > 0).astype(int)).all()
    assert "SELECT" in frame.attrs["sql"]


def test_discovery_lists_every_experiment_and_writes_stubs(db, sample_dir, tmp_path):
    data = yaml.safe_load((ROOT / "workbench.yml").read_text())
    data["experiments"] = [e for e in data["experiments"] if e["key"] != "price-display"]
    path = tmp_path / "workbench.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    found = discover_experiments(db, load_config(path), write_stubs=True)
    views = ref.raw(sample_dir, "experimentViews")
    logged = views.groupby(["experimentId", "variationId"])["userId"].nunique()
    ours = found[found["assignment_query"] == "logged_in"].set_index(["experiment_id", "variation_id"])["units"]
    assert ours.to_dict() == logged.to_dict()
    assert "recommended-items" not in set(found["experiment_id"])
    assert not found.set_index("experiment_id").loc["price-display", "configured"].any()
    stub = load_config(path).experiment("price-display")
    assert stub.variations == ("0", "1") and stub.assignment_query.name == "logged_in"
    first = views[views["experimentId"] == "price-display"]["timestamp"].min()
    assert stub.start == first.normalize().to_pydatetime()


def test_activation_metric_keeps_only_activated_units(db, sample_dir, tmp_path):
    data = yaml.safe_load((ROOT / "workbench.yml").read_text())
    entry = next(e for e in data["experiments"] if e["key"] == "checkout-layout")
    entry |= {
        "activation_metric": "added_to_cart",
        "goal_metrics": ["purchased"],
        "secondary_metrics": [],
        "guardrail_metrics": [],
    }
    data["experiments"] = [entry]
    exp = experiment("checkout-layout", parse_config(data, tmp_path / "workbench.yml"))
    ours = sufficient_stats(exp, db=db).set_index("variation")
    u = ref.units(sample_dir, "checkout-layout", START, END)
    activated = ref.per_unit(sample_dir, "added_to_cart", u, END)
    u = u[u["unit"].map(activated["rows"] > 0).to_numpy() & u["variation"].isin(["0", "1", "2"])]
    purchased = ref.per_unit(sample_dir, "purchased", u, END)["main"]
    for variation, units in u.groupby("variation")["unit"]:
        assert ours.loc[variation, "users"] == len(units)
        assert ours.loc[variation, "main_sum"] == purchased.loc[units].sum()


def test_cli_prints_statistics_and_discovered_experiments(growthbook_url, sample_dir, tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "stats",
            "checkout-layout",
            "--config",
            str(ROOT / "workbench.yml"),
            "--database",
            growthbook_url,
            "--show-sql",
        ],
    )
    assert result.exit_code == 0, result.output
    views = ref.raw(sample_dir, "experimentViews")
    multiple = (views[views["experimentId"] == "checkout-layout"].groupby("userId")["variationId"].nunique() > 1).sum()
    assert f"__multiple__ {multiple:,} units (multiple)" in result.output
    assert "purchased (binomial)" in result.output and "WITH exposures AS" in result.output
    missing = runner.invoke(
        app, ["stats", "no-such-test", "--config", str(ROOT / "workbench.yml"), "--database", growthbook_url]
    )
    assert (
        missing.exit_code == 1
        and "there is no experiment 'no-such-test'" in missing.output
        and "Traceback" not in missing.output
    )
    listed = runner.invoke(app, ["experiments", "--config", str(ROOT / "workbench.yml"), "--database", growthbook_url])
    assert listed.exit_code == 0 and listed.output.count("checkout-layout") == 6  # 3 variations × 2 assignment queries


def test_a_metric_type_registered_here_is_analysed_end_to_end(db, sample_dir, tmp_path, monkeypatch):
    """Adding a metric type is one registry entry: ``max`` (a unit's longest session, 0 without
    sessions), declared in this test, goes through the config, the SQL, the sufficient statistics and
    the statistics engine with CUPED, and equals pandas and scipy on the raw files."""
    from scipy import stats as sps

    from workbench import metric_types

    largest = metric_types.MetricType(
        "max",
        metric_types.UNIT,
        "sample_mean",
        metric_types.Contract(
            "the identifier columns, `timestamp`, `value`",
            "the largest `value` of the rows that count, 0 without rows",
            "sample mean, unbiased variance",
        ),
        value_aggregate="MAX",
        unit_value="COALESCE({value}, 0.0)",
        cuped=True,
        capping=True,
    )
    monkeypatch.setitem(metric_types.REGISTRY, "max", largest)
    data = yaml.safe_load((ROOT / "workbench.yml").read_text())
    data["metrics"].append(
        {
            "name": "longest_session",
            "type": "max",
            "cuped": {"lookback_days": 7},
            "sql": "SELECT userId AS user_id, sessionStart AS timestamp, duration AS value FROM sessions",
        }
    )
    data["experiments"] = [
        {
            "key": "checkout-layout",
            "assignment_query": "logged_in",
            "start": "2026-09-25",
            "end": "2026-11-22",
            "variations": ["0", "1", "2"],
            "goal_metrics": ["longest_session"],
        }
    ]
    cfg = parse_config(data, tmp_path / "workbench.yml")
    results = wb.analyze(experiment("checkout-layout", cfg), db, dimensions=(), difference_type="absolute")

    u = ref.units(sample_dir, "checkout-layout", START, END)
    u = u[u["variation"] != ref.MULTIPLE].set_index("unit")
    sessions = ref.raw(sample_dir, "sessions").rename(columns={"userId": "unit", "sessionStart": "ts"})
    rows = sessions[["unit", "ts", "duration"]].merge(u[["first_exposure"]], left_on="unit", right_index=True)
    counted = rows[(rows["ts"] >= rows["first_exposure"]) & (rows["ts"] <= END)]
    before = rows[(rows["ts"] >= rows["first_exposure"] - pd.Timedelta(days=7)) & (rows["ts"] < rows["first_exposure"])]
    y = counted.groupby("unit")["duration"].max().reindex(u.index).fillna(0.0)
    x = before.groupby("unit")["duration"].max().reindex(u.index).fillna(0.0)
    assert (x > 0).sum() > 100 and (
        y != counted.groupby("unit")["duration"].sum().reindex(u.index).fillna(0.0)
    ).sum() > 100

    ours = results.sufficient_statistics.set_index("variation")
    for variation, arm in u.groupby("variation"):
        yv, xv = y[arm.index], x[arm.index]
        row = ours.loc[variation]
        assert row["metric_type"] == "max" and row["users"] == len(arm)
        assert row["main_sum"] == pytest.approx(yv.sum(), rel=1e-12)
        assert row["main_sum_squares"] == pytest.approx((yv * yv).sum(), rel=1e-12)
        assert row["covariate_sum"] == pytest.approx(xv.sum(), rel=1e-12)
        assert row["main_covariate_sum_product"] == pytest.approx((yv * xv).sum(), rel=1e-12)
    table = results.to_pandas().set_index("variation")
    control = u.index[u["variation"] == "0"]
    for variation in ("1", "2"):
        treated = u.index[u["variation"] == variation]
        both = control.append(treated)
        theta = np.cov(y[both], x[both])[0, 1] / x[both].var(ddof=1)  # CUPED's θ, pooled over the two arms
        z_control, z_treated = y[control] - theta * x[control], y[treated] - theta * x[treated]
        welch = sps.ttest_ind(z_treated, z_control, equal_var=False)
        row = table.loc[variation]
        assert row["cuped"] and row["theta"] == pytest.approx(theta, rel=1e-9)
        assert row["absolute_effect"] == pytest.approx(z_treated.mean() - z_control.mean(), rel=1e-9)
        assert row["p_value"] == pytest.approx(welch.pvalue, rel=1e-6)
        assert row["unadjusted_absolute_effect"] == pytest.approx(y[treated].mean() - y[control].mean(), rel=1e-9)


def test_duckdb_plan_scans_each_source_table_once(db, config):
    """DuckDB's EXPLAIN of an analysis with nine metrics over two tables (both metric styles, an
    event quantile, CUPED, capping, windows, a ratio) and two dimensions: each table scanned once."""
    if db.dialect.name != "duckdb":
        pytest.skip("reads DuckDB's EXPLAIN")
    from workbench.experiments import sql as sql_builder

    names = ("purchased", "bulk_buyer", "revenue_per_user", "orders_per_user", "average_order_value")
    names += ("revenue_per_user_cuped", "order_amount_p90", "session_duration", "retention_rate")
    exp = config.experiment("checkout-layout")
    metrics = tuple(config.metric(n) for n in names)
    query = sql_builder.experiment_query(config, exp, ("browser", "country"), 20, metrics, dialect=db.dialect)
    plan = "\n".join(db.sql("EXPLAIN " + query.sql, limit=None, **query.params).iloc[:, -1])
    scanned = [name.split(".")[-1] for name in re.findall(r"Table: ([\w.]+)", plan)]
    assert sorted(scanned) == ["experiment_viewed", "orders", "sessions"]
