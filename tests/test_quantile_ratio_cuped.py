"""Event- and unit-level quantile metrics (with GrowthBook's per-unit cluster sums) and CUPED for
ratio metrics: every new sufficient-statistic column against a brute-force pandas computation over
the same generated rows, on DuckDB and PostgreSQL; the config keys and their one-sentence errors."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

import workbench as wb
from workbench.db.bulk_write import write_tables
from workbench.db.dialects import transpile
from workbench.db.sql_files import TableDefinition
from workbench.errors import ConfigError
from workbench.experiments import sql as sql_builder
from workbench.experiments.config import parse_config
from workbench.experiments.engine import experiment, sufficient_stats, unit_metrics

START, END = dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 25, 23, 59, 59, 999999)
EXPOSURES = TableDefinition(
    "exposures_t",
    (
        ("user_id", "TEXT"),
        ("timestamp", "TIMESTAMP"),
        ("experiment_id", "TEXT"),
        ("variation_id", "TEXT"),
        ("country", "TEXT"),
    ),
)
EVENTS = TableDefinition("events_t", (("user_id", "TEXT"), ("timestamp", "TIMESTAMP"), ("value", "DOUBLE PRECISION")))
EVENT_SQL = "SELECT user_id, timestamp, value FROM events_t"
CONFIG = f"""
identifier_types: [user_id]
assignment_queries:
  - name: exposures
    identifier_type: user_id
    sql: SELECT user_id, timestamp, experiment_id, variation_id, country FROM exposures_t
    dimensions: [country]
metrics:
  - {{name: amount_p50, type: quantile, quantile: 0.5, sql: "{EVENT_SQL}"}}
  - {{name: amount_p90, type: quantile, quantile: {{value: 0.9, level: event}}, sql: "{EVENT_SQL}"}}
  - {{name: revenue_p80, type: quantile, quantile: {{value: 0.8, level: unit}}, sql: "{EVENT_SQL}"}}
  - name: revenue
    type: mean
    sql: "{EVENT_SQL}"
    cuped: {{lookback_days: 3}}
    capping: {{type: absolute, value: 40}}
  - {{name: orders, type: count, sql: "{EVENT_SQL}"}}
  - {{name: aov_cuped7, type: ratio, numerator: revenue, denominator: orders, cuped: {{lookback_days: 7}}}}
  - {{name: aov_cuped3, type: ratio, numerator: revenue, denominator: orders, cuped: {{lookback_days: 3}}}}
  - {{name: aov, type: ratio, numerator: revenue, denominator: orders}}
experiments:
  - key: exp
    start: 2026-01-01
    end: 2026-01-25
    variations: ["0", "1"]
    dimensions: [country]
    goal_metrics: [amount_p50, amount_p90, revenue_p80, aov_cuped7, aov_cuped3, aov, revenue]
"""
METRICS = ("amount_p50", "amount_p90", "revenue_p80", "aov_cuped7", "aov_cuped3", "aov", "revenue")
QUANTILE_EVENT = {"amount_p50": 0.5, "amount_p90": 0.9}
RATIO_CUPED = {"aov_cuped7": 7, "aov_cuped3": 3}
CAP = 40.0


def generated() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exposures of 240 units (a few in both arms, some twice, some twice at the same instant,
    countries with NULLs) and events:
    per unit a random number of them (zero for about a fifth), values correlated within the unit,
    rounded so that ties sit at the quantiles, some NULL; before, during and after the experiment."""
    rng = np.random.default_rng(20261203)
    exposures, events = [], []
    for k in range(240):
        unit = f"u{k:03d}"
        first = START + dt.timedelta(seconds=int(rng.integers(0, 20 * 86400)))
        variation = str(rng.integers(0, 2))
        country = [None, "US", "DE", "FR", "US"][rng.integers(0, 5)]
        exposures.append((unit, first, "exp", variation, country))
        if k % 17 == 0:  # seen again later: the same arm, another country (the first one counts)
            exposures.append((unit, first + dt.timedelta(hours=5), "exp", variation, "JP"))
        if k % 41 == 0:  # seen in both arms: excluded
            exposures.append((unit, first + dt.timedelta(hours=2), "exp", str(1 - int(variation)), country))
        if k % 23 == 0:  # seen twice at the same instant: the least (variation, country) counts
            exposures.append((unit, first, "exp", variation, "AA"))
        if k % 29 == 0:  # at the same instant in the other arm too: excluded
            exposures.append((unit, first, "exp", str(1 - int(variation)), "ZZ"))
        level = rng.gamma(2.0, 4.0) * (1.3 if variation == "1" else 1.0)
        n_events = 0 if rng.random() < 0.2 else int(rng.poisson(rng.choice([1.0, 3.0, 8.0])))
        for _ in range(n_events + int(rng.poisson(2.0))):  # and some before exposure
            offset = dt.timedelta(seconds=int(rng.integers(-9 * 86400, 14 * 86400)))
            value = None if rng.random() < 0.08 else float(np.round(level + rng.normal(0, 2.0)))
            events.append((unit, first + offset, value))
    exposures.append(("other", START, "another-exp", "0", "US"))
    exp_frame = pd.DataFrame(exposures, columns=["user_id", "timestamp", "experiment_id", "variation_id", "country"])
    ev_frame = pd.DataFrame(events, columns=["user_id", "timestamp", "value"])
    return exp_frame, ev_frame


@pytest.fixture(scope="module")
def data():
    return generated()


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return parse_config(yaml.safe_load(CONFIG), tmp_path_factory.mktemp("cfg") / "workbench.yml")


@pytest.fixture(scope="module")
def db(backend, data):
    exposures, events = data
    url = backend.new_url("quantile_ratio_cuped")
    writer = wb.connect(url, read_only=False)
    write_tables(
        writer,
        [
            (EXPOSURES, [pa.Table.from_pandas(exposures, preserve_index=False)]),
            (EVENTS, [pa.Table.from_pandas(events, preserve_index=False)]),
        ],
    )
    writer.dispose()
    database = wb.connect(url)
    yield database
    database.dispose()


# -- the brute-force reference ------------------------------------------------------------------
def reference_units(exposures: pd.DataFrame) -> pd.DataFrame:
    ev = exposures[(exposures["experiment_id"] == "exp") & exposures["timestamp"].between(START, END)]
    ev = ev.assign(country=ev["country"].fillna("(null)")).sort_values(
        ["timestamp", "variation_id", "country"], kind="stable"
    )
    first = ev.groupby("user_id").head(1).set_index("user_id")
    arms = ev.groupby("user_id")["variation_id"].nunique()
    units = pd.DataFrame({"first": first["timestamp"], "variation": first["variation_id"], "dim": first["country"]})
    return units[arms.reindex(units.index) == 1]


def order_statistics(values: np.ndarray, q: float) -> dict:
    v, n = np.sort(values), len(values)
    if n == 0:
        return {"quantile_n": 0, "quantile": np.nan, "quantile_lower": np.nan, "quantile_upper": np.nan}
    half = 1.96 * math.sqrt(n * q * (1 - q))
    lower, upper = max(math.floor(n * q - half), 1), min(math.ceil(n * q + half), n)
    return {
        "quantile_n": n,
        "quantile": v[math.ceil(n * q) - 1],
        "quantile_lower": v[lower - 1],
        "quantile_upper": v[upper - 1],
    }


def reference(exposures: pd.DataFrame, events: pd.DataFrame) -> dict[tuple[str, str, str], dict]:
    """(metric, dimension_value, variation) -> the expected columns, from the rows alone."""
    units = reference_units(exposures)
    rows = events.merge(units, left_on="user_id", right_index=True)
    counted = rows[(rows["timestamp"] >= rows["first"]) & (rows["timestamp"] <= END)]
    valued = counted[counted["value"].notna()]

    def pre(days: float) -> pd.DataFrame:
        return rows[
            (rows["timestamp"] >= rows["first"] - pd.Timedelta(days=days)) & (rows["timestamp"] < rows["first"])
        ]

    def per_unit_sum(frame: pd.DataFrame) -> pd.Series:
        return frame.groupby("user_id")["value"].sum().reindex(units.index).fillna(0.0)

    def per_unit_count(frame: pd.DataFrame) -> pd.Series:
        return frame.groupby("user_id").size().reindex(units.index).fillna(0).astype(float)

    revenue, orders = per_unit_sum(counted), per_unit_count(counted)
    out: dict[tuple[str, str, str], dict] = {}
    slices = [("all", units)] + [(value, units[units["dim"] == value]) for value in sorted(units["dim"].unique())]
    for value, group in slices:
        for variation in ("0", "1"):
            arm = group[group["variation"] == variation].index
            events_here = valued[valued["user_id"].isin(arm)]
            for name, q in QUANTILE_EVENT.items():
                row = order_statistics(events_here["value"].to_numpy(), q)
                below = (events_here["value"] <= row["quantile"]).groupby(events_here["user_id"]).sum()
                s = below.reindex(arm).fillna(0).to_numpy(float)
                n = events_here.groupby("user_id").size().reindex(arm).fillna(0).to_numpy(float)
                row |= {
                    "users": len(arm),
                    "main_sum": s.sum(),
                    "main_sum_squares": (s * s).sum(),
                    "denominator_sum": n.sum(),
                    "denominator_sum_squares": (n * n).sum(),
                    "main_denominator_sum_product": (s * n).sum(),
                }
                out[(name, value, variation)] = row
            out[("revenue_p80", value, variation)] = {"users": len(arm)} | order_statistics(
                revenue[arm].to_numpy(), 0.8
            )
            a, b = revenue[arm].clip(upper=CAP).to_numpy(), orders[arm].to_numpy()
            for name, days in RATIO_CUPED.items():
                c = per_unit_sum(pre(days))[arm].clip(upper=CAP).to_numpy()
                e = per_unit_count(pre(days))[arm].to_numpy()
                out[(name, value, variation)] = {
                    "users": len(arm),
                    "main_sum": a.sum(),
                    "main_sum_squares": (a * a).sum(),
                    "denominator_sum": b.sum(),
                    "denominator_sum_squares": (b * b).sum(),
                    "main_denominator_sum_product": (a * b).sum(),
                    "covariate_sum": c.sum(),
                    "covariate_sum_squares": (c * c).sum(),
                    "main_covariate_sum_product": (a * c).sum(),
                    "denominator_pre_sum": e.sum(),
                    "denominator_pre_sum_squares": (e * e).sum(),
                    "main_post_denominator_pre_sum_product": (a * e).sum(),
                    "main_pre_denominator_post_sum_product": (c * b).sum(),
                    "main_pre_denominator_pre_sum_product": (c * e).sum(),
                    "denominator_post_denominator_pre_sum_product": (b * e).sum(),
                }
    return out


# -- the tests ----------------------------------------------------------------------------------
def test_the_data_exercises_every_case(data):
    exposures, events = data
    units = reference_units(exposures)
    rows = events.merge(units, left_on="user_id", right_index=True)
    counted = rows[(rows["timestamp"] >= rows["first"]) & (rows["timestamp"] <= END) & rows["value"].notna()]
    per_unit = counted.groupby("user_id").size().reindex(units.index).fillna(0)
    assert (per_unit == 0).sum() > 30 and (per_unit >= 5).sum() > 20  # zero-event units, clusters
    assert (rows["timestamp"] < rows["first"]).sum() > 200 and rows["value"].isna().sum() > 20
    assert len(units) < exposures["user_id"].nunique() - 1 and set(units["dim"]) >= {"(null)", "US", "DE", "FR"}
    p50 = counted.groupby(units.loc[counted["user_id"], "variation"].to_numpy())["value"].quantile(0.5)
    assert all((counted["value"] == value).sum() > 1 for value in p50)  # ties at the quantile


@pytest.mark.parametrize("dimension", [None, "country"])
def test_new_columns_equal_brute_force_pandas(db, config, data, dimension):
    ours = sufficient_stats(experiment("exp", config), dimension, db=db, metrics=METRICS)
    expected = reference(*data)
    checked = 0
    for _, row in ours.iterrows():
        if row["dimension_value"] != "all" and dimension is None:
            continue
        want = expected.get((row["metric"], row["dimension_value"], row["variation"]))
        if want is None:
            assert row["metric"] in ("aov", "revenue"), row["metric"]
            continue
        for column, value in want.items():
            if isinstance(value, float) and np.isnan(value):
                assert np.isnan(row[column]), (row["metric"], column)
            else:
                assert row[column] == pytest.approx(value, rel=1e-12, abs=1e-9), (
                    row["metric"],
                    row["dimension_value"],
                    row["variation"],
                    column,
                )
            checked += 1
        if row["metric"] in QUANTILE_EVENT or row["metric"] == "revenue_p80":
            assert row["quantile_nstar"] == row["quantile_n"] == row["count"]
            assert row["quantile_level"] == QUANTILE_EVENT.get(row["metric"], 0.8)
    assert checked > (300 if dimension else 60)
    kinds = ours.drop_duplicates("metric").set_index("metric")["metric_type"].to_dict()
    assert kinds == {
        "amount_p50": "quantile",
        "amount_p90": "quantile",
        "revenue_p80": "quantile_unit",
        "aov_cuped7": "ratio",
        "aov_cuped3": "ratio",
        "aov": "ratio",
        "revenue": "mean",
    }
    # which rows carry which columns
    is_quantile = ours["metric"].isin(["amount_p50", "amount_p90", "revenue_p80"])
    assert ours.loc[~is_quantile, ["quantile_level", "quantile_nstar"]].isna().all().all()
    unit_level = ours[ours["metric"] == "revenue_p80"]
    assert unit_level[["main_sum", "denominator_sum", "covariate_sum"]].isna().all().all()
    assert (unit_level["quantile_n"] == unit_level["users"]).all()  # every unit, zero-event ones included
    plain = ours[ours["metric"].isin(["aov", "revenue"])]
    assert plain[["denominator_pre_sum", "main_pre_denominator_pre_sum_product"]].isna().all().all()
    if dimension is None:
        assert ours[ours["metric"] == "aov_cuped7"]["denominator_pre_sum"].gt(0).all()


def test_copies_for_ratio_lookbacks_stay_out_of_unit_metrics(db, config):
    """A ratio's lookback other than its parts' own CUPED lookback reads a copy of the part; the
    per-unit output lists each configured metric once."""
    exp = experiment("exp", config)
    frame = unit_metrics(exp, db=db, metrics=("aov_cuped7", "revenue_p80"))
    assert [c for c in frame.columns if c.startswith("n_")] == ["n_revenue", "n_orders", "n_revenue_p80"]
    # the numerator's own lookback is the ratio's: only the denominator needs a copy, one shift
    query = sql_builder.experiment_query(config, exp.settings, ("country",), 20, (config.metric("aov_cuped3"),))
    assert query.sql.count("INTERVAL '259200' SECOND AS wb_shift") == 1 and "604800" not in query.sql
    assert set(re.findall(r"\bm\d+_pre\b", query.sql)) == {"m0_pre", "m2_pre"}  # revenue, orders@pre3


@pytest.mark.parametrize("dialect", ["spark", "bigquery", "snowflake", "trino"])
def test_the_new_sql_transpiles(config, dialect):
    exp = config.experiment("exp")
    metrics = tuple(config.metric(name) for name in METRICS)
    for dimensions in ((), ("country",)):
        query = sql_builder.experiment_query(config, exp, dimensions, 20, metrics)
        assert "quantile_clusters_0" in query.sql and transpile(query.sql, dialect, query.params)


# -- config -------------------------------------------------------------------------------------
def metric_config(tmp_path: Path, **entry) -> dict:
    data = yaml.safe_load(CONFIG)
    data["metrics"].append({"name": "x", "sql": EVENT_SQL, **entry})
    return data


def parsed(tmp_path: Path, **entry):
    return parse_config(metric_config(tmp_path, **entry), tmp_path / "workbench.yml").metric("x")


def test_quantile_levels_map_to_registered_types(tmp_path):
    bare = parsed(tmp_path, type="quantile", quantile=0.95)
    assert (bare.type, bare.quantile, bare.kind.statistic) == ("quantile", 0.95, "quantile_event")
    event = parsed(tmp_path, type="quantile", quantile={"value": 0.25, "level": "event"})
    assert (event.type, event.quantile) == ("quantile", 0.25)
    unit = parsed(tmp_path, type="quantile", quantile={"value": 0.5, "level": "unit"})
    assert (unit.type, unit.quantile, unit.kind.statistic) == ("quantile_unit", 0.5, "quantile_unit")
    assert parsed(tmp_path, type="quantile_unit", quantile=0.5).type == "quantile_unit"
    assert parsed(tmp_path, type="quantile", quantile={"value": 0.5}).type == "quantile"
    ratio = parse_config(yaml.safe_load(CONFIG), tmp_path / "workbench.yml").metric("aov_cuped7")
    assert ratio.cuped_lookback_days == 7 and ratio.numerator.cuped_lookback_days == 3


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "quantile"}, "metric 'x': quantile metrics need 'quantile: {value: 0.9, level: event}'"),
        (
            {"type": "quantile", "quantile": {"value": 0.9, "level": "user"}},
            "metric 'x'.quantile.level: must be event or unit, not 'user'.",
        ),
        ({"type": "quantile", "quantile": {"level": "unit"}}, "metric 'x'.quantile: the key 'value' is required."),
        (
            {"type": "quantile", "quantile": {"value": 0.9, "lvl": "unit"}},
            "metric 'x'.quantile: unknown key(s) ['lvl']",
        ),
        (
            {"type": "quantile", "quantile": {"value": 1, "level": "unit"}},
            "metric 'x'.quantile.value: must be < 1, not 1.0.",
        ),
        ({"type": "quantile", "quantile": "0.9"}, "metric 'x'.quantile: must be a number like 0.9 or a mapping"),
        ({"type": "quantile", "quantile": 0}, "metric 'x'.quantile: must be > 0, not 0."),
        ({"type": "mean", "quantile": {"value": 0.9}}, "'quantile' belongs to quantile metrics only"),
        (
            {
                "type": "quantile",
                "quantile": {"value": 0.5, "level": "unit"},
                "capping": {"type": "absolute", "value": 1},
            },
            "metric 'x': quantile_unit metrics take no 'capping'; remove it.",
        ),
        (
            {"type": "quantile", "quantile": 0.5, "cuped": {"lookback_days": 7}},
            "metric 'x': quantile metrics take no 'cuped'; remove it.",
        ),
    ],
)
def test_quantile_config_errors_are_one_sentence(tmp_path, entry, message):
    with pytest.raises(ConfigError) as err:
        parsed(tmp_path, **entry)
    assert message in str(err.value) and str(err.value).count("\n") == 0


def test_ratio_cuped_and_unit_quantile_parts_errors(tmp_path):
    data = yaml.safe_load(CONFIG)
    data["metrics"].append(
        {"name": "bad", "type": "ratio", "numerator": "revenue", "denominator": "orders", "cuped": 7}
    )
    with pytest.raises(ConfigError, match=r"metric 'bad'.cuped: must be a mapping like \{lookback_days: 14\}"):
        parse_config(data, tmp_path / "workbench.yml")
    data["metrics"][-1]["cuped"] = {"lookback_days": 0}
    with pytest.raises(ConfigError, match=r"metric 'bad'.cuped.lookback_days: must be > 0, not 0."):
        parse_config(data, tmp_path / "workbench.yml")
    data["metrics"][-1] = {"name": "bad", "type": "ratio", "numerator": "revenue_p80", "denominator": "orders"}
    with pytest.raises(ConfigError, match=r"'revenue_p80' is a quantile_unit metric, which cannot be a numerator"):
        parse_config(data, tmp_path / "workbench.yml")
