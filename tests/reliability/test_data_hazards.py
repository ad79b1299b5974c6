"""Data hazards the analyses must survive, on DuckDB and PostgreSQL: duplicate exposure rows, clock
skew, NULL identifiers, time-zone-aware timestamps and dates with offsets, an experiment without
traffic, a variation without units, very large values, a dimension with 10,000 values. Each answer
is checked against pandas on the raw rows (GrowthBook's semantics, docs/experiment-engine.md), or
the hazard must produce an explicit warning."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

import workbench as wb
from workbench.experiments.config import load_config
from workbench.experiments.engine import experiment

pytestmark = pytest.mark.reliability

START, END = dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 31, 23, 59, 59, 999999)
CONFIG = {
    "identifier_types": ["user_id"],
    "assignment_queries": [
        {
            "name": "exposures",
            "identifier_type": "user_id",
            "dimensions": ["country"],
            "sql": "SELECT user_id, ts AS timestamp, experiment_id, variation_id, country FROM exposures",
        }
    ],
    "metrics": [
        {"name": "converted", "type": "binomial", "sql": "SELECT user_id, ts AS timestamp FROM purchases"},
        {
            "name": "purchases",
            "type": "count",
            "sql": "SELECT user_id, ts AS timestamp, amount AS value FROM purchases",
        },
        {"name": "revenue", "type": "mean", "sql": "SELECT user_id, ts AS timestamp, amount AS value FROM purchases"},
        {
            "name": "revenue_capped",
            "type": "mean",
            "sql": "SELECT user_id, ts AS timestamp, amount AS value FROM purchases",
            "capping": {"type": "absolute", "value": 500},
        },
        {
            "name": "revenue_p90",
            "type": "mean",
            "sql": "SELECT user_id, ts AS timestamp, amount AS value FROM purchases",
            "capping": {"type": "percentile", "value": 0.9},
        },
    ],
    "experiments": [
        {
            "key": "hazard",
            "assignment_query": "exposures",
            "start": "2026-01-01",
            "end": "2026-01-31",
            "variations": ["0", "1"],
            "control": "0",
            "dimensions": ["country"],
            "goal_metrics": ["converted"],
            "secondary_metrics": ["purchases", "revenue", "revenue_capped", "revenue_p90"],
        }
    ],
}
METRICS = [m["name"] for m in CONFIG["metrics"]]
CAPS = {"revenue_capped": ("absolute", 500.0), "revenue_p90": ("percentile", 0.9)}


def create_tables(
    db, exposures: pd.DataFrame, purchases: pd.DataFrame, ts_types: tuple[str, str] = ("TIMESTAMP", "TIMESTAMP")
) -> None:
    """The two tables, written with ``workbench.db.bulk_write`` in one transaction; ``ts_types``: the
    SQL types of their ``ts`` columns (TIMESTAMP or TIMESTAMPTZ)."""
    import pyarrow as pa

    from workbench.db.bulk_write import write_tables
    from workbench.db.sql_files import TableDefinition

    tables = [
        (
            TableDefinition(
                "exposures",
                (
                    ("user_id", "VARCHAR"),
                    ("ts", ts_types[0]),
                    ("experiment_id", "VARCHAR"),
                    ("variation_id", "VARCHAR"),
                    ("country", "VARCHAR"),
                ),
            ),
            exposures,
        ),
        (
            TableDefinition("purchases", (("user_id", "VARCHAR"), ("ts", ts_types[1]), ("amount", "DOUBLE PRECISION"))),
            purchases,
        ),
    ]
    batches = []
    for (table, frame), ts_type in zip(tables, ts_types):
        columns = {
            "user_id": pa.string(),
            "experiment_id": pa.string(),
            "variation_id": pa.string(),
            "country": pa.string(),
            "amount": pa.float64(),
            "ts": pa.timestamp("us", tz="UTC" if ts_type == "TIMESTAMPTZ" else None),
        }
        schema = pa.schema([(c, columns[c]) for c in table.column_names])
        frame = frame[table.column_names].astype(object).where(frame[table.column_names].notna(), None)
        batches.append((table, [pa.Table.from_pylist(frame.to_dict("records"), schema=schema)]))
    write_tables(db, batches)  # drops and creates each table


def project(tmp_path, **experiment_changes):
    """The config file in ``tmp_path`` with the experiment's entry changed, loaded."""
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    data["experiments"][0].update(experiment_changes)
    path = tmp_path / "workbench.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def database(backend, label, exposures, purchases):
    url = backend.new_url(label)
    writer = wb.connect(url, read_only=False)
    create_tables(writer, exposures, purchases)
    writer.dispose()
    return wb.connect(url)


def expected_stats(exposures: pd.DataFrame, purchases: pd.DataFrame, variations, start=START, end=END) -> pd.DataFrame:
    """GrowthBook's semantics by hand on the raw rows: per variation, users and the per-unit sums
    (``main_sum``, ``main_sum_squares``) of every metric; index (metric, variation)."""
    e = exposures.dropna(subset=["user_id", "ts", "variation_id"])
    e = e[(e["experiment_id"] == "hazard") & (e["ts"] >= start) & (e["ts"] <= end)]
    units = e.groupby("user_id").agg(
        first=("ts", "min"), n_var=("variation_id", "nunique"), variation=("variation_id", "first")
    )
    units = units[(units["n_var"] == 1) & units["variation"].isin(variations)]
    p = purchases.dropna(subset=["user_id"]).merge(units[["first"]], left_on="user_id", right_index=True)
    p = p[(p["ts"] >= p["first"]) & (p["ts"] <= end)]
    per_unit = pd.DataFrame(index=units.index)
    per_unit["variation"] = units["variation"]
    per_unit["converted"] = p.groupby("user_id").size().reindex(units.index).notna().astype(float)
    per_unit["purchases"] = p.groupby("user_id").size().reindex(units.index, fill_value=0).astype(float)
    per_unit["revenue"] = p.groupby("user_id")["amount"].sum().reindex(units.index, fill_value=0.0)
    per_unit["revenue_capped"] = per_unit["revenue"].clip(upper=CAPS["revenue_capped"][1])
    values = np.sort(per_unit["revenue"].to_numpy())
    cap = values[math.ceil(len(values) * CAPS["revenue_p90"][1]) - 1] if len(values) else 0.0  # nearest rank
    per_unit["revenue_p90"] = per_unit["revenue"].clip(upper=cap)
    rows = []
    for metric in METRICS:
        for v in variations:
            x = per_unit.loc[per_unit["variation"] == v, metric]
            rows.append(
                {
                    "metric": metric,
                    "variation": v,
                    "users": len(x),
                    "main_sum": x.sum(),
                    "main_sum_squares": (x * x).sum(),
                }
            )
    return pd.DataFrame(rows).set_index(["metric", "variation"])


def check_against(results, expected: pd.DataFrame) -> None:
    """Units, sums and means of every metric × variation equal the pandas computation."""
    stats = results.sufficient_statistics
    overall = stats[stats["dimension"] == "overall"].set_index(["metric", "variation"])
    for (metric, variation), want in expected.iterrows():
        got = overall.loc[(metric, variation)]
        assert int(got["users"]) == want["users"], (metric, variation)
        assert got["main_sum"] == pytest.approx(want["main_sum"], rel=1e-12, abs=1e-9), (metric, variation)
        assert got["main_sum_squares"] == pytest.approx(want["main_sum_squares"], rel=1e-12, abs=1e-9), (
            metric,
            variation,
        )
    table = results.to_pandas()
    table = table[table["dimension"] == "overall"]
    for row in table.itertuples():
        want = expected.loc[(row.metric, row.variation)]
        if want["users"]:
            assert row.mean == pytest.approx(want["main_sum"] / want["users"], rel=1e-12)
        assert row.units == want["users"]


def base_rows(n_per_arm: int = 30, seed: int = 7):
    """Clean exposures (one row per unit) and purchases after exposure for two arms."""
    rng = np.random.default_rng(seed)
    units = [f"u{i:03d}" for i in range(2 * n_per_arm)]
    first = [START + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 20, len(units))]
    exposures = pd.DataFrame(
        {
            "user_id": units,
            "ts": first,
            "experiment_id": "hazard",
            "variation_id": [str(i % 2) for i in range(len(units))],
            "country": [["US", "DE", "FR"][i % 3] for i in range(len(units))],
        }
    )
    rows = []
    for unit, t in zip(units, first):
        for _ in range(int(rng.integers(0, 4))):
            rows.append(
                {
                    "user_id": unit,
                    "ts": t + dt.timedelta(hours=int(rng.integers(0, 72))),
                    "amount": float(rng.integers(1, 200)),
                }
            )
    return exposures, pd.DataFrame(rows, columns=["user_id", "ts", "amount"])


def test_duplicate_exposure_rows_count_each_unit_once(backend, tmp_path, ledger):
    exposures, purchases = base_rows()
    dupes = pd.concat(
        [exposures, exposures.iloc[::3], exposures.iloc[::5]], ignore_index=True
    )  # same unit, variation, timestamp
    cfg = project(tmp_path)
    db = database(backend, "dup_exposures", dupes, purchases)
    results = wb.analyze(experiment("hazard", cfg), db, dimensions=())
    db.dispose()
    expected = expected_stats(exposures, purchases, ["0", "1"])
    check_against(results, expected)
    assert results.health.multiple_exposure_units == 0
    ledger(
        "Data hazards",
        f"duplicate exposure rows ({backend.name}): {len(dupes) - len(exposures)} of {len(dupes)} rows repeat (unit, variation, timestamp)",
        f"{expected.loc['converted']['users'].sum()} units counted once each; users, sums and sums of squares of 5 metrics equal pandas on the de-duplicated rows",
    )


def test_metric_events_before_exposure_are_outside_the_window(backend, tmp_path, ledger):
    exposures, purchases = base_rows(seed=11)
    first = exposures.set_index("user_id")["ts"]
    skewed = pd.DataFrame(
        [
            {"user_id": u, "ts": first[u] + offset, "amount": 1000.0 + k}
            for k, u in enumerate(first.index[::2])
            for offset in (dt.timedelta(seconds=-1), dt.timedelta(hours=-1), dt.timedelta(days=-3))
        ]
    )  # a client clock running behind: purchases logged before the exposure
    at_exposure = pd.DataFrame(
        [{"user_id": u, "ts": first[u], "amount": 7.0} for u in first.index[1::4]]
    )  # the same instant counts
    after_end = pd.DataFrame(
        [{"user_id": u, "ts": END + dt.timedelta(seconds=1), "amount": 5000.0} for u in first.index[::5]]
    )
    rows = pd.concat([purchases, skewed, at_exposure, after_end], ignore_index=True)
    db = database(backend, "clock_skew", exposures, rows)
    results = wb.analyze(experiment("hazard", project(tmp_path)), db, dimensions=())
    db.dispose()
    expected = expected_stats(exposures, rows, ["0", "1"])
    check_against(results, expected)
    assert expected.loc[("purchases", "0"), "main_sum"] + expected.loc[("purchases", "1"), "main_sum"] == len(
        purchases
    ) + len(at_exposure)
    ledger(
        "Data hazards",
        f"clock skew ({backend.name}): {len(skewed)} purchases 1 s to 3 days before the unit's first exposure, "
        f"{len(at_exposure)} at the exposure instant, {len(after_end)} 1 s after the end",
        f"the {len(skewed) + len(after_end)} out-of-window rows excluded, the {len(at_exposure)} at the instant counted (window ≥ first exposure, ≤ end, "
        "as documented); 5 metrics equal pandas",
    )


def test_null_identifiers_are_left_out_not_merged_into_one_unit(backend, tmp_path, ledger):
    exposures, purchases = base_rows(seed=13)
    nulls = pd.DataFrame(
        [
            {
                "user_id": None,
                "ts": START + dt.timedelta(days=d),
                "experiment_id": "hazard",
                "variation_id": str(d % 2),
                "country": "US",
            }
            for d in range(12)
        ]
        + [
            {"user_id": "ghost_ts", "ts": None, "experiment_id": "hazard", "variation_id": "1", "country": "US"},
            {
                "user_id": "ghost_variation",
                "ts": START,
                "experiment_id": "hazard",
                "variation_id": None,
                "country": "US",
            },
        ]
    )
    exposures.loc[exposures.index[::7], "country"] = None  # NULL dimension values: their own "(null)" group
    null_purchases = pd.DataFrame(
        [{"user_id": None, "ts": START + dt.timedelta(days=d), "amount": 50.0} for d in range(20)]
        + [{"user_id": "ghost_ts", "ts": START + dt.timedelta(days=2), "amount": 50.0}]
    )
    all_exposures = pd.concat([exposures, nulls], ignore_index=True)
    rows = pd.concat([purchases, null_purchases], ignore_index=True)
    db = database(backend, "null_ids", all_exposures, rows)
    exp = experiment("hazard", project(tmp_path))
    results = wb.analyze(exp, db, dimensions=("country",))
    db.dispose()
    expected = expected_stats(all_exposures, rows, ["0", "1"])
    check_against(results, expected)
    stats = results.sufficient_statistics
    by_country = (
        stats[(stats["dimension"] == "country") & (stats["metric"] == "converted")]
        .groupby("dimension_value")["users"]
        .sum()
    )
    clean = exposures.assign(country=exposures["country"].fillna("(null)"))
    assert by_country.to_dict() == clean.groupby("country").size().to_dict()
    assert int(expected["users"].sum()) == len(exposures) * len(METRICS)
    ledger(
        "Data hazards",
        f"NULL identifiers ({backend.name}): {len(nulls) - 2} exposure rows with a NULL user_id, one with a NULL timestamp, one with a "
        f"NULL variation, {len(null_purchases) - 1} purchases with a NULL user_id, {int(exposures['country'].isna().sum())} NULL dimension values",
        f"none became a unit or joined a unit (units = the {len(exposures)} identified ones); NULL dimension values form their own '(null)' row; "
        "5 metrics and the per-country units equal pandas",
    )


def test_time_zone_aware_columns_and_dates_with_offsets_mean_utc(backend, tmp_path, monkeypatch, ledger):
    import time

    exposures, purchases = base_rows(seed=17)
    edge = pd.DataFrame(
        [  # near the bounds: where reading UTC as New York (UTC-5) time would move them in or out
            {
                "user_id": "early",
                "ts": START + dt.timedelta(hours=1),
                "experiment_id": "hazard",
                "variation_id": "0",
                "country": "US",
            },
            {
                "user_id": "late",
                "ts": END - dt.timedelta(hours=2),
                "experiment_id": "hazard",
                "variation_id": "1",
                "country": "US",
            },
            {
                "user_id": "before",
                "ts": START - dt.timedelta(hours=3),
                "experiment_id": "hazard",
                "variation_id": "1",
                "country": "US",
            },
            {
                "user_id": "after",
                "ts": END + dt.timedelta(hours=3),
                "experiment_id": "hazard",
                "variation_id": "0",
                "country": "US",
            },
        ]
    )
    exposures = pd.concat([exposures, edge], ignore_index=True)
    edge_purchases = pd.DataFrame(
        [
            {"user_id": "early", "ts": START + dt.timedelta(hours=2), "amount": 10.0},
            {"user_id": "late", "ts": END - dt.timedelta(hours=1), "amount": 20.0},
        ]
    )
    purchases = pd.concat([purchases, edge_purchases], ignore_index=True)
    expected = expected_stats(exposures, purchases, ["0", "1"])

    def aware(frame):
        return frame.assign(ts=frame["ts"].dt.tz_localize("UTC"))

    urls = []
    for label, ts_types, frames in (
        ("tz_both", ("TIMESTAMPTZ", "TIMESTAMPTZ"), (aware(exposures), aware(purchases))),
        ("tz_mixed", ("TIMESTAMP", "TIMESTAMPTZ"), (exposures, aware(purchases))),
    ):
        urls.append(backend.new_url(label))
        writer = wb.connect(urls[-1], read_only=False)
        create_tables(writer, *frames, ts_types=ts_types)
        if backend.name == "postgresql":  # sessions start in New York time unless workbench pins UTC
            with writer.engine.begin() as conn:
                conn.execute(
                    sa.text(f"ALTER DATABASE \"{sa.make_url(urls[-1]).database}\" SET timezone TO 'America/New_York'")
                )
        writer.dispose()
    monkeypatch.setenv("TZ", "America/New_York")  # DuckDB's sessions start in the process's time zone
    time.tzset()
    try:
        cases = {
            "bare dates": project(tmp_path),
            "offsets": project(tmp_path, start="2026-01-01T03:00:00+03:00", end="2026-01-31T18:59:59.999999-05:00"),
            "UTC datetimes": project(
                tmp_path, start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), end="2026-02-01T00:59:59.999999+01:00"
            ),
        }
        for url in urls:
            db = wb.connect(url)
            for name, cfg in cases.items():
                assert (cfg.experiments["hazard"].start, cfg.experiments["hazard"].end) == (START, END), name
                check_against(wb.analyze(experiment("hazard", cfg), db, dimensions=()), expected)
            db.dispose()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert expected.loc[("converted", "0"), "users"] + expected.loc[("converted", "1"), "users"] == len(exposures) - 2
    ledger(
        "Data hazards",
        f"time zones ({backend.name}): TIMESTAMPTZ columns (both tables, or exposures TIMESTAMP and purchases TIMESTAMPTZ) read by a "
        "session whose zone is America/New_York (PostgreSQL database default / DuckDB from $TZ); start/end as bare dates, with +03:00/-05:00 offsets "
        "and as UTC datetimes",
        "all 3 spellings resolve to the same UTC range and, on both column layouts, give the pandas (UTC) answer; the 2 units just inside and 2 just outside the range "
        "are placed right (before the fix: offsets were dropped and New-York sessions shifted the range by 5 hours)",
    )


def test_experiment_without_traffic_says_no_data_yet(backend, tmp_path, ledger):
    import warnings

    from workbench.display import health_banner_html
    from workbench.reports import tables as report_tables
    from workbench.reports.data import report_data

    exposures, purchases = base_rows(seed=19)
    cfg = project(tmp_path)
    db = database(backend, "no_traffic", exposures.assign(experiment_id="another-test"), purchases)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no division by zero anywhere
        results = wb.analyze(experiment("hazard", cfg), db, dimensions=("country",))
        data = report_data("hazard", db, config_path=cfg.path)
    db.dispose()
    table = results.to_pandas()
    assert (table["units"] == 0).all() and (table["baseline_units"] == 0).all()
    assert table["mean"].isna().all() and table["p_value"].isna().all()
    assert set(table["note"]) == {"no units in either variation"}
    assert any(w.startswith("No data yet") for w in results.health.warnings)
    text = str(results)
    assert "No data yet" in text and "no units in either variation" in text
    assert data.results.decision.action == "no data"
    assert "No data yet" in report_tables.no_data_html(data)
    assert "No data yet" in health_banner_html(data.results.health)
    html = report_tables.group_table_html(data.results, "goal")
    assert html.count("0 units") >= 2  # each row's baseline and variation units, under their values
    rendered = ""
    if backend.name == "duckdb":  # the whole papermill report once (16 s): it renders, saying so
        from workbench.reports.runs import run_report

        run = run_report(
            "hazard",
            database_url=db.engine.url.render_as_string(hide_password=False),
            config_path=cfg.path,
            reports_dir=tmp_path / "reports",
        )
        assert run.status == "ok", run.error
        page = run.latest.read_text(encoding="utf-8")
        assert "No data yet" in page and "Traceback" not in page
        # a short page: no health figures, sections or charts about numbers that do not exist
        assert "wb-no-data" in page and "p = 1" not in page and "Results by metric group" not in page
        assert "Plotly.newPlot(" not in page and 'class="wb-results"' not in page
        executed = run.notebook.read_text(encoding="utf-8")
        assert "Results by metric group" in executed  # the notebook still holds every cell
        rendered = "; the papermill HTML report is a short page saying 'No data yet' (no health figures, sections or charts) and no traceback"
    ledger(
        "Data hazards",
        f"an experiment with no traffic yet ({backend.name}): configured, its exposure table holding only another experiment",
        f"no exception and no RuntimeWarning; {len(table)} result rows with 0 units, blank means and the note 'no units in either variation'; "
        f"health warning and report decision 'No data yet'{rendered} (before the fix: KeyError in the health checks)",
    )


def test_variation_without_units_is_shown_empty_with_a_warning(backend, tmp_path, ledger):
    import warnings

    exposures, purchases = base_rows(seed=23)
    cfg = project(tmp_path, variations=["0", "1", "2"], weights=[0.4, 0.4, 0.2])
    db = database(backend, "empty_variation", exposures, purchases)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        results = wb.analyze(experiment("hazard", cfg), db, dimensions=())
    db.dispose()
    expected = expected_stats(exposures, purchases, ["0", "1", "2"])
    check_against(results, expected)
    table = results.to_pandas()
    empty = table[table["variation"] == "2"]
    assert len(empty) == len(METRICS) and (empty["units"] == 0).all() and empty["mean"].isna().all()
    assert set(empty["note"]) == {"this variation has no units here"}
    assert np.isfinite(
        table.loc[table["variation"] == "1", ["mean", "ci_lower", "ci_upper", "p_value"]].to_numpy(dtype=float)
    ).all()
    assert any("Variation(s) 2 have no units" in w for w in results.health.warnings)
    ledger(
        "Data hazards",
        f"a configured variation nobody saw ({backend.name}): variations 0, 1, 2 with weights 0.4/0.4/0.2, no unit in 2",
        f"variation 2 listed for all {len(METRICS)} metrics with n=0, a blank mean and a note; a health warning names it; variation 1's "
        "results stay finite and equal pandas; no RuntimeWarning (division by zero)",
    )


def test_very_large_values_are_capped_as_configured(backend, tmp_path, ledger):
    exposures, purchases = base_rows(seed=29)
    whales = pd.DataFrame(
        [
            {"user_id": u, "ts": t + dt.timedelta(hours=1), "amount": 1e15}
            for u, t in zip(exposures["user_id"][:3], exposures["ts"][:3])
        ]
    )  # a bot, or cents logged as dollars
    rows = pd.concat([purchases, whales], ignore_index=True)
    db = database(backend, "large_values", exposures, rows)
    results = wb.analyze(experiment("hazard", project(tmp_path)), db, dimensions=())
    db.dispose()
    expected = expected_stats(exposures, rows, ["0", "1"])
    check_against(results, expected)
    table = results.to_pandas().set_index(["metric", "variation"])
    for metric in ("revenue_capped", "revenue_p90"):
        assert table.loc[(metric, "1"), "mean"] < 1000 and table.loc[(metric, "1"), "baseline_mean"] < 1000
        assert np.isfinite(table.loc[(metric, "1"), ["ci_lower", "ci_upper", "p_value"]].to_numpy(dtype=float)).all()
    assert table.loc[("revenue", "1"), "baseline_mean"] > 1e13  # uncapped: the outliers are there, exactly
    ledger(
        "Data hazards",
        f"very large values ({backend.name}): 3 purchases of 1e15 among {len(purchases)} ordinary ones",
        "uncapped revenue carries them exactly (sums of squares ~1e30 equal pandas to 1e-12); absolute cap 500 and 90th-percentile "
        "cap give means below 1,000 with finite intervals, equal to pandas' clip",
    )


def test_dimension_with_ten_thousand_values_keeps_top_20_and_other(backend, tmp_path, ledger):
    from workbench.experiments.sql import DEFAULT_TOP_N, OTHER

    n_common = 2000
    countries = [f"c{int(math.sqrt(i)):03d}" for i in range(n_common)] + [f"z{i:05d}" for i in range(10_000)]
    exposures = pd.DataFrame(
        {
            "user_id": [f"u{i:05d}" for i in range(len(countries))],
            "ts": [START + dt.timedelta(minutes=i) for i in range(len(countries))],
            "experiment_id": "hazard",
            "variation_id": [str(i % 2) for i in range(len(countries))],
            "country": countries,
        }
    )
    purchases = pd.DataFrame(
        {"user_id": exposures["user_id"][::3], "ts": exposures["ts"][::3] + dt.timedelta(hours=1), "amount": 10.0}
    )
    db = database(backend, "wide_dimension", exposures, purchases)
    results = wb.analyze(experiment("hazard", project(tmp_path)), db, dimensions=("country",))
    db.dispose()
    # pandas: values ranked by units (desc), ties by value; the top 20 kept, the rest pooled
    counts = (
        exposures.groupby("country")
        .size()
        .reset_index(name="units")
        .sort_values(["units", "country"], ascending=[False, True])
    )
    top = set(counts["country"][:DEFAULT_TOP_N])
    pooled = exposures.assign(country=exposures["country"].where(exposures["country"].isin(top), OTHER))
    want = pooled.groupby(["country", "variation_id"]).size()
    stats = results.sufficient_statistics
    got = stats[(stats["dimension"] == "country") & (stats["metric"] == "converted")].set_index(
        ["dimension_value", "variation"]
    )["users"]
    assert got.to_dict() == want.to_dict()
    overall = stats[(stats["dimension"] == "overall") & (stats["metric"] == "converted")].set_index("variation")[
        "users"
    ]
    assert (
        got.groupby(level="variation").sum().to_dict()
        == overall.to_dict()
        == exposures.groupby("variation_id").size().to_dict()
    )
    conv = (
        stats[(stats["dimension"] == "country") & (stats["metric"] == "converted")]
        .groupby("variation")["main_sum"]
        .sum()
    )
    assert conv.to_dict() == pytest.approx(exposures.iloc[::3].groupby("variation_id").size().astype(float).to_dict())
    ledger(
        "Data hazards",
        f"a dimension with {exposures['country'].nunique():,} values over {len(exposures):,} units ({backend.name})",
        f"{DEFAULT_TOP_N} values + '(other)' ({int(want[OTHER].sum()):,} units), the top 20 exactly pandas' ranking; units per variation summed over "
        "the 21 rows equal the overall units and the raw exposures; conversions conserved too",
    )
