"""Incremental refresh (docs/experiment-engine.md#incremental-refresh) on DuckDB and PostgreSQL,
and on the Spark Connect server the suite starts: data arrives in stages, and after every
incremental run the sufficient statistics and health facts equal a full analysis of the same rows
(counts exactly, sums to 1e-12 relative)."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import workbench as wb
from workbench.db.spark import SparkDatabase
from workbench.errors import ConfigError, DatabaseError
from workbench.experiments.config import parse_config
from workbench.experiments.engine import experiment, experiment_facts
from workbench.experiments.incremental import LateRowsWarning, open_state, refresh_state, state_table
from workbench.paths import state_path

DAY0 = dt.datetime(2026, 10, 1)
DAYS = 8
DIMENSIONS = ("country", "browser")
EXPOSURES = "SELECT user_id, timestamp, experiment_id, variation_id, country, browser FROM exposures"
ORDERS = "SELECT user_id, timestamp, amount AS value FROM orders"
EXACT = ["users", "count", "quantile_n", "quantile_nstar"]  # the rest are sums (or order statistics of per-unit sums)


def config_data(**changes) -> dict:
    """One open-ended experiment with two dimensions and every metric shape the state keeps: a
    binomial with a window, a CUPED mean, a delayed count, a percentile-capped CUPED mean, a
    CUPED ratio and a unit-level quantile."""
    metrics = [
        {"name": "purchased", "type": "binomial", "sql": ORDERS, "window": {"delay_hours": 0, "hours": 72}},
        {"name": "revenue", "type": "mean", "sql": ORDERS, "cuped": {"lookback_days": 3}},
        {"name": "orders", "type": "count", "sql": ORDERS, "window": {"delay_hours": 2, "hours": 96}},
        {"name": "revenue_capped", "type": "mean", "sql": ORDERS,
         "capping": {"type": "percentile", "value": 0.9}, "cuped": {"lookback_days": 2}},
        {"name": "aov", "type": "ratio", "numerator": "revenue", "denominator": "orders", "cuped": {"lookback_days": 3}},
        {"name": "revenue_median", "type": "quantile", "sql": ORDERS,
         "quantile": {"value": 0.5, "level": "unit"}},
    ]  # fmt: skip
    entry = {
        "key": "exp",
        "start": DAY0.isoformat(),
        "variations": ["0", "1"],
        "dimensions": list(DIMENSIONS),
        "goal_metrics": ["purchased", "revenue", "orders"],
        "secondary_metrics": ["revenue_capped", "aov", "revenue_median"],
        "incremental": True,
        "late_data_hours": 24,
    }
    entry |= changes
    return {
        "identifier_types": ["user_id"],
        "assignment_queries": [
            {"name": "views", "identifier_type": "user_id", "sql": EXPOSURES, "dimensions": list(DIMENSIONS)}
        ],
        "metrics": metrics,
        "experiments": [entry],
    }


def rows(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exposures and orders over DAYS days, each row with an ``arrival`` (when it is loaded):
    new units every day, repeat exposures in the same variation, some units later in the other
    variation, orders before and after first exposure, inside and outside the windows, and rows
    arriving up to 20 hours late."""
    rng = np.random.default_rng(seed)
    n = 500
    users = [f"u{i:04d}" for i in range(n)]
    first = DAY0 + pd.to_timedelta(rng.uniform(0, DAYS * 24, n), unit="h")
    variation = rng.integers(0, 2, n).astype(str)
    country = rng.choice(["DE", "FR", "US", None], n, p=[0.3, 0.3, 0.35, 0.05])
    browser = rng.choice(["chrome", "safari", "edge"], n)
    exposures = [
        pd.DataFrame(
            {"user_id": users, "timestamp": first, "variation_id": variation, "country": country, "browser": browser}
        )
    ]
    again = rng.random(n) < 0.4  # a repeat exposure, same variation, later
    exposures.append(
        exposures[0][again].assign(timestamp=first[again] + pd.to_timedelta(rng.uniform(1, 60, again.sum()), unit="h"))
    )
    switch = rng.random(n) < 0.05  # later in the other variation: __multiple__
    other = exposures[0][switch]
    exposures.append(other.assign(timestamp=first[switch] + pd.to_timedelta(rng.uniform(1, 48, switch.sum()), unit="h"),
                                  variation_id=np.where(other["variation_id"] == "0", "1", "0")))  # fmt: skip
    exp = pd.concat(exposures, ignore_index=True).assign(experiment_id="exp")
    buyers = rng.choice(n + 100, 2500)  # 100 ids never exposed
    ts = DAY0 + pd.to_timedelta(rng.uniform(-4 * 24, DAYS * 24, len(buyers)), unit="h")
    orders = pd.DataFrame(
        {"user_id": [f"u{i:04d}" for i in buyers], "timestamp": ts, "amount": rng.gamma(2, 20, len(buyers)).round(2)}
    )
    for frame in (exp, orders):
        frame["timestamp"] = frame["timestamp"].dt.floor("us")
        late = rng.random(len(frame)) < 0.1
        frame["arrival"] = frame["timestamp"] + pd.to_timedelta(
            np.where(late, rng.uniform(0, 20, len(frame)), 0), unit="h"
        )
    return exp[exp["timestamp"] < DAY0 + dt.timedelta(days=DAYS)], orders[
        orders["timestamp"] < DAY0 + dt.timedelta(days=DAYS)
    ]


def load(url: str, frames: dict[str, pd.DataFrame]) -> None:
    """Replace the tables with ``frames`` (their ``arrival`` column left out)."""
    db = wb.connect(url, read_only=False)
    if isinstance(db, SparkDatabase):  # catalog tables, replaced one by one (the reads come after)
        for name, frame in frames.items():
            db.session.createDataFrame(frame.drop(columns="arrival")).write.mode("overwrite").saveAsTable(name)
        db.dispose()
        return

    def sql_type(dtype) -> str:
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return "TIMESTAMP"
        return "DOUBLE PRECISION" if pd.api.types.is_float_dtype(dtype) else "VARCHAR"

    with db.transaction() as conn:
        for name, frame in frames.items():
            frame = frame.drop(columns="arrival")
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
            columns = ", ".join(f"{c} {sql_type(t)}" for c, t in frame.dtypes.items())
            conn.execute(sa.text(f"CREATE TABLE {name} ({columns})"))
            records = [
                {k: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
                for r in frame.astype(object).where(frame.notna(), None).to_dict("records")
            ]
            conn.execute(sa.text(f"INSERT INTO {name} VALUES ({', '.join(':' + c for c in frame.columns)})"), records)
    db.dispose()


def arrived(frames: tuple[pd.DataFrame, pd.DataFrame], before: dt.datetime) -> dict[str, pd.DataFrame]:
    return {name: f[f["arrival"] < before] for name, f in zip(("exposures", "orders"), frames, strict=True)}


def assert_same(incremental, full) -> None:
    """Counts and order statistics exactly, sums to 1e-12 relative."""
    for name in ("units", "days"):
        pd.testing.assert_frame_equal(getattr(incremental, name), getattr(full, name))
    a, b = incremental.stats, full.stats
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    keys = ["metric", "dimension", "dimension_value", "variation"]
    assert a[keys].equals(b[keys])
    for column in a.columns[len(keys) + 1 :]:
        x, y = a[column].astype("float64").to_numpy(), b[column].astype("float64").to_numpy()
        if column in EXACT:
            np.testing.assert_array_equal(x, y, err_msg=column)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=0, err_msg=column)


def facts(exp, db, **kwargs):
    return experiment_facts(exp, db, dimensions=DIMENSIONS, **kwargs)


@pytest.fixture()
def project(backend, tmp_path, request):
    url = backend.new_url(f"incr_{request.node.name.split('[')[0][-30:]}".lower())
    cfg = parse_config(config_data(), tmp_path / "workbench.yml")
    return url, cfg, rows()


@pytest.mark.filterwarnings("error::workbench.experiments.incremental.LateRowsWarning")  # late, but within the window
def test_every_incremental_run_equals_a_full_analysis_of_the_same_rows(project):
    url, cfg, frames = project
    exp = experiment("exp", cfg)
    built = []
    for day in range(2, DAYS + 2):  # one run a day, each with the rows that arrived by then
        load(url, arrived(frames, DAY0 + dt.timedelta(days=day, hours=3)))
        db = wb.connect(url)
        incremental, full = facts(exp, db), facts(exp, db, incremental=False)
        db.dispose()
        assert_same(incremental, full)
        built.append(incremental.stats.attrs["refresh"].built)
        assert full.stats.attrs["refresh"] is None
    assert built == [True] + [False] * (len(built) - 1)  # the first run builds, the others update
    included = full.units[(full.units["dimension"] == "overall")]
    assert set(included["status"]) == {"included", "multiple"}  # the hazards are in the data


def identity_rows(users: list[str], seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Page views keyed by anonymous id and the identity pairs linking anonymous ids to users,
    each row with its ``arrival``; a pair also with its ``timestamp`` (when it was seen: up to 20
    hours before it arrives) and the time it is ``gone`` (deleted), or NaT. Most pairs arrive days
    after their anonymous id's first page views (the views re-map to a unit already in the state),
    some users gain a second id later, a few pairs are deleted, and some anonymous ids never get a
    user."""
    rng = np.random.default_rng(seed)
    anons = [f"a{i:04d}" for i in range(700)]
    first_view = DAY0 + pd.to_timedelta(rng.uniform(-2 * 24, DAYS * 24, len(anons)), unit="h")
    linked = rng.choice(len(users), 600)  # anonymous ids 0..599 belong to a user (some users have two)
    pairs = pd.DataFrame({"user_id": [users[i] for i in linked], "anonymous_id": anons[:600]})
    pairs["arrival"] = first_view[:600] + pd.to_timedelta(rng.uniform(0, 4 * 24, 600), unit="h")
    late_pair = rng.random(600) < 0.1
    pairs["timestamp"] = (
        pairs["arrival"] - pd.to_timedelta(np.where(late_pair, rng.uniform(0, 20, 600), 0), unit="h")
    ).dt.floor("us")
    gone = rng.random(600) < 0.05
    pairs["gone"] = pd.Series(pairs["arrival"] + pd.to_timedelta(rng.uniform(12, 72, 600), unit="h")).where(gone)
    n = 4000
    who = rng.integers(0, len(anons), n)
    ts = first_view[who] + pd.to_timedelta(rng.uniform(0, 3 * 24, n), unit="h")
    views = pd.DataFrame({"anonymous_id": [anons[i] for i in who], "timestamp": ts, "seconds": rng.gamma(2, 30, n)})
    views["timestamp"] = views["timestamp"].dt.floor("us")
    late = rng.random(n) < 0.1
    views["arrival"] = views["timestamp"] + pd.to_timedelta(np.where(late, rng.uniform(0, 20, n), 0), unit="h")
    return views[views["timestamp"] < DAY0 + dt.timedelta(days=DAYS)], pairs


def identity_experiment(frames, tmp_path: Path, timestamp: bool = False):
    """The experiment with three more metrics reached through an identity map (a CUPED count, a
    percentile-capped mean and a windowed binomial over page views), and ``tables(now)``: every
    table as it stood at ``now`` (identity pairs arrived and not yet deleted). With ``timestamp``
    the map's SQL returns the pairs' timestamp and no pair is deleted."""
    views, pairs = identity_rows(sorted(frames[0]["user_id"].unique()))
    if timestamp:
        pairs = pairs.assign(gone=pd.NaT)
    data = config_data()
    data["identifier_types"] = ["user_id", "anonymous_id"]
    data["identity_joins"] = [
        {"sql": f"SELECT user_id, anonymous_id{', timestamp' if timestamp else ''} FROM identities"}
    ]
    views_sql = "SELECT anonymous_id, timestamp, seconds AS value FROM pageviews"
    data["metrics"] += [
        {"name": "views", "type": "count", "sql": views_sql, "cuped": {"lookback_days": 2}},
        {"name": "view_seconds", "type": "mean", "sql": views_sql, "capping": {"type": "percentile", "value": 0.9}},
        {"name": "viewed", "type": "binomial", "sql": views_sql, "window": {"delay_hours": 0, "hours": 48}},
    ]
    data["experiments"][0]["guardrail_metrics"] = ["views", "view_seconds", "viewed"]

    def tables(now: dt.datetime) -> dict[str, pd.DataFrame]:
        return arrived(frames, now) | {
            "pageviews": views[views["arrival"] < now],
            "identities": pairs[(pairs["arrival"] < now) & ~(pairs["gone"] < now)].drop(columns="gone"),
        }

    return experiment("exp", parse_config(data, tmp_path / "identity.yml")), tables


@pytest.mark.filterwarnings("error::workbench.experiments.incremental.LateRowsWarning")
def test_identity_pairs_that_arrive_or_go_re_map_the_units_rows(project, tmp_path):
    """Metrics reached through an identity map: a pair that arrives after its anonymous id's rows
    were settled, or that is deleted, changes which rows are the unit's; every run still equals a
    full analysis."""
    url, _, frames = project
    views, pairs = identity_rows(sorted(frames[0]["user_id"].unique()))
    late_pairs = (
        pairs["arrival"] - pairs["anonymous_id"].map(views.groupby("anonymous_id")["timestamp"].min())
    ).dt.total_seconds()
    assert (late_pairs > 2 * 86400).sum() > 50 and pairs["gone"].notna().sum() > 10  # the hazards are in the data
    exp, tables = identity_experiment(frames, tmp_path)
    built = []
    for day in range(2, DAYS + 2):
        load(url, tables(DAY0 + dt.timedelta(days=day, hours=3)))
        db = wb.connect(url)
        incremental, full = facts(exp, db), facts(exp, db, incremental=False)
        db.dispose()
        assert_same(incremental, full)
        built.append(incremental.stats.attrs["refresh"].built)
    assert built == [True] + [False] * (len(built) - 1)
    assert full.stats.query("metric == 'views' and dimension == 'overall'")["main_sum"].sum() > 1000


def test_identity_pairs_with_a_timestamp_are_read_from_the_settled_boundary_on(project, tmp_path):
    """An identity map whose SQL returns a timestamp: each run reads its pairs since the settled
    boundary (and every pair of the units first exposed since), and still equals a full analysis;
    a pair that arrives later than that, or one deleted, is counted as a late row."""
    url, _, frames = project
    exp, tables = identity_experiment(frames, tmp_path, timestamp=True)
    views, pairs = identity_rows(sorted(frames[0]["user_id"].unique()))
    for day in range(2, DAYS + 2):
        load(url, tables(DAY0 + dt.timedelta(days=day, hours=3)))
        db = wb.connect(url)
        with warnings.catch_warnings():
            warnings.simplefilter("error", LateRowsWarning)  # late pairs within the window are read
            incremental = facts(exp, db)
        full = facts(exp, db, incremental=False)
        db.dispose()
        assert_same(incremental, full)
        assert incremental.stats.attrs["refresh"].built is (day == 2)
    everything = tables(DAY0 + dt.timedelta(days=DAYS + 2))
    # a pair seen on day 1 that arrives only now: a unit's old page views become its rows
    viewed = views[views["timestamp"] < DAY0 + dt.timedelta(days=2)]["anonymous_id"]
    unlinked = sorted(set(viewed) - set(pairs["anonymous_id"]))[0]
    user = frames[0].sort_values("timestamp")["user_id"].iloc[0]
    late_pair = pd.DataFrame(
        {"user_id": [user], "anonymous_id": [unlinked], "timestamp": [DAY0 + dt.timedelta(days=1)]}
    )
    load(url, everything | {"identities": pd.concat([everything["identities"], late_pair.assign(arrival=DAY0)])})
    db = wb.connect(url)
    with pytest.warns(LateRowsWarning, match="1 source row older than"):
        incremental = facts(exp, db)
    full = facts(exp, db, incremental=False)
    assert incremental.stats.attrs["refresh"].late_rows == 1
    assert not np.allclose(incremental.stats["main_sum"], full.stats["main_sum"], rtol=1e-12, atol=0)
    assert_same(facts(exp, db, full_refresh=True), full)
    db.dispose()
    ids = everything["identities"]  # the late pair gone again, and the oldest pair deleted
    load(url, everything | {"identities": ids.drop(index=ids["timestamp"].idxmin())})
    db = wb.connect(url)
    with pytest.warns(LateRowsWarning, match="2 fewer source rows are older than"):
        assert facts(exp, db).stats.attrs["refresh"].late_rows == -2
    db.dispose()


@pytest.mark.parametrize("timestamp", [True, False], ids=["map-with-timestamp", "whole-map"])
def test_postgresql_plans_an_update_from_staged_units_and_leaves_no_table_behind(backend, project, tmp_path, timestamp):
    """PostgreSQL plans CTEs with default estimates: an update writes its units and the map the
    scans join to analysed tables of the state's schema (a map read whole first: the units' query
    reads it too), reads them, and drops them before the commit; on DuckDB (which plans one query
    well) the update is one query."""
    url, _, frames = project
    exp, tables = identity_experiment(frames, tmp_path, timestamp=timestamp)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    for day, runs in ((3, "build"), (4, "update")):
        load(url, tables(DAY0 + dt.timedelta(days=day, hours=3)))
        db = wb.connect(url)
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
        try:
            incremental = facts(exp, db)
        finally:
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
        assert incremental.stats.attrs["refresh"].built is (runs == "build")
        assert_same(incremental, facts(exp, db, incremental=False))
        db.dispose()
    schema = exp.config.state_schema
    (refresh,) = [s for s in statements if s.startswith(f"CREATE TABLE {schema}.wb_staged_")]
    units = f"{schema}.wb_units_{state_table(exp).rsplit('_', 1)[-1]}"
    staged = backend.name == "postgresql"
    created = [units, f"{units}_map_0"] if timestamp else [f"{units}_map_0", units]
    assert [s.split(" AS\n")[0] for s in statements if s.startswith(f"CREATE TABLE {units}")] == (
        [f"CREATE TABLE {table}" for table in created] if staged else []
    )
    assert (f"ANALYZE {units} (wb_unit, wb_key, wb_fresh, wb_remapped)" in statements) is staged
    assert (f"ANALYZE {units}_map_0 (wb_unit, wb_other)" in statements) is staged
    assert (f"eligible AS NOT MATERIALIZED (\n  SELECT * FROM {units}\n)" in refresh) is staged
    assert (f"FROM {units}_map_0" in refresh) is staged
    assert (f"DROP TABLE {units}" in statements) is staged
    db = wb.connect(url)
    state = open_state(db, exp)  # on DuckDB the state file is attached only there
    left = state.sql(
        "SELECT table_name AS name FROM information_schema.tables WHERE :schema IN (table_schema, table_catalog)",
        schema=schema,
    )["name"]
    state.dispose()
    db.dispose()
    assert sorted(left) == sorted(["experiment_state", state_table(exp).split(".", 1)[1]])


def test_late_rows_beyond_the_window_need_a_full_refresh(project):
    url, cfg, (exposures, orders) = project
    exp = experiment("exp", cfg)
    load(url, {"exposures": exposures, "orders": orders})
    db = wb.connect(url)
    facts(exp, db)  # the state, with every row
    # orders of day 1 arriving now: older than the watermark less late_data_hours
    late = orders.iloc[:40].assign(
        timestamp=DAY0 + dt.timedelta(hours=30), user_id=exposures["user_id"].iloc[:40].to_numpy()
    )
    db.dispose()
    load(url, {"exposures": exposures, "orders": pd.concat([orders, late], ignore_index=True)})
    db = wb.connect(url)
    with pytest.warns(LateRowsWarning, match="40 source rows older than"):
        incremental = facts(exp, db)
    full = facts(exp, db, incremental=False)
    assert incremental.stats.attrs["refresh"].late_rows == len(late)  # the data-quality count
    differs = ~np.isclose(incremental.stats["main_sum"], full.stats["main_sum"], rtol=1e-12, atol=0)
    assert differs.any()  # the late rows are not in the state
    with pytest.warns(LateRowsWarning, match="40 source rows older than"):  # and each run says so until a rebuild
        assert facts(exp, db).stats.attrs["refresh"].late_rows == len(late)
    rebuilt = facts(exp, db, full_refresh=True)
    assert rebuilt.stats.attrs["refresh"].why == "--full-refresh"
    assert_same(rebuilt, full)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LateRowsWarning)
        assert facts(exp, db).stats.attrs["refresh"].late_rows == 0
    db.dispose()


def test_a_changed_definition_rebuilds_the_state(project, tmp_path):
    url, cfg, frames = project
    load(url, arrived(frames, DAY0 + dt.timedelta(days=4)))
    db = wb.connect(url)
    facts(experiment("exp", cfg), db)
    db.dispose()
    load(url, arrived(frames, DAY0 + dt.timedelta(days=6)))
    db = wb.connect(url)
    data = config_data()
    data["metrics"][0]["window"]["hours"] = 24  # purchased: a shorter window
    changed = experiment("exp", parse_config(data, tmp_path / "changed.yml"))
    incremental, full = facts(changed, db), facts(changed, db, incremental=False)
    db.dispose()
    assert incremental.stats.attrs["refresh"].why == "definition changed"
    assert_same(incremental, full)


def test_a_state_table_deleted_by_hand_is_rebuilt(project):
    """Only the state table deleted (its bookkeeping row left): the next run rebuilds it instead of
    failing to read it."""
    url, cfg, frames = project
    exp = experiment("exp", cfg)
    load(url, arrived(frames, DAY0 + dt.timedelta(days=4)))
    db = wb.connect(url)
    facts(exp, db)
    state_db = open_state(db, exp)
    with state_db.transaction() as conn:
        conn.execute(sa.text(f"DROP TABLE {state_table(exp)}"))
    state_db.dispose()
    db.dispose()
    load(url, arrived(frames, DAY0 + dt.timedelta(days=6)))
    db = wb.connect(url)
    incremental, full = facts(exp, db), facts(exp, db, incremental=False)
    db.dispose()
    assert incremental.stats.attrs["refresh"].why == "state table missing"
    assert_same(incremental, full)


def test_a_failed_run_leaves_the_previous_state(project):
    url, cfg, frames = project
    exp = experiment("exp", cfg)
    load(url, arrived(frames, DAY0 + dt.timedelta(days=4)))
    db = wb.connect(url)
    facts(exp, db)
    db.dispose()
    load(url, arrived(frames, DAY0 + dt.timedelta(days=6)))
    db = wb.connect(url)
    state_db = open_state(db, exp)
    table = state_table(exp)
    snapshot = f"SELECT * FROM {table} ORDER BY wb_unit"
    meta = f"SELECT * FROM {cfg.state_schema}.experiment_state"
    before, before_meta = state_db.sql(snapshot, limit=None), state_db.sql(meta)

    @sa.event.listens_for(state_db.engine, "before_cursor_execute")
    def fail_on_insert(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith(f"INSERT INTO {table}"):  # after the DELETE of the updated units
            raise RuntimeError("killed mid-transaction")

    with pytest.raises(RuntimeError, match="killed"):
        refresh_state(exp, state_db)
    sa.event.remove(state_db.engine, "before_cursor_execute", fail_on_insert)
    pd.testing.assert_frame_equal(state_db.sql(snapshot, limit=None), before)
    pd.testing.assert_frame_equal(state_db.sql(meta), before_meta)
    state_db.dispose()
    assert_same(facts(exp, db), facts(exp, db, incremental=False))  # and the next run catches up
    db.dispose()


def test_what_the_state_cannot_keep_yet_is_refused_in_one_sentence(project, tmp_path):
    url, _, frames = project
    data = config_data()
    data["metrics"].append({"name": "p90", "type": "quantile", "sql": ORDERS, "quantile": 0.9})
    data["experiments"][0]["guardrail_metrics"] = ["p90"]
    exp = experiment("exp", parse_config(data, tmp_path / "q.yml"))
    load(url, arrived(frames, DAY0 + dt.timedelta(days=2)))
    db = wb.connect(url)
    with pytest.raises(ConfigError, match="event-level quantile metric 'p90'"):
        facts(exp, db)
    db.dispose()
    with pytest.raises(ConfigError, match="state_schema: must be a lower-case plain name"):
        parse_config({**config_data(), "state_schema": "Bad-Name"}, tmp_path / "s.yml")
    with pytest.raises(ConfigError, match="incremental: must be true or false"):
        parse_config(config_data(incremental="yes"), tmp_path / "i.yml").experiment("exp")


def test_the_refresh_session_writes_only_the_state(backend, project):
    """DuckDB: the source file is never written, and is read-only in the refresh session.
    PostgreSQL: the refresh session runs without JIT (its CTEs' estimates would compile hundreds
    of functions), the analysis session as the server is set."""
    url, cfg, frames = project
    load(url, arrived(frames, DAY0 + dt.timedelta(days=3)))
    if backend.name != "duckdb":
        db = wb.connect(url)
        state = open_state(db, experiment("exp", cfg))
        assert state.sql("SELECT current_setting('jit') AS jit")["jit"].iloc[0] == "off"
        assert db.sql("SELECT current_setting('jit') AS jit")["jit"].iloc[0] == "on"
        state.dispose()
        db.dispose()
        return
    path = Path(sa.make_url(url).database)
    before = path.read_bytes()
    db = wb.connect(url)
    facts(experiment("exp", cfg), db)
    assert path.read_bytes() == before
    assert state_path(path).is_file()
    state = open_state(db, experiment("exp", cfg))
    with pytest.raises(DatabaseError, match="read-only"):
        state.sql("CREATE TABLE wb_source.main.x (a INT)")
    state.dispose()
    db.dispose()


def test_analyze_incremental_and_full_refresh_print_the_full_analysis(project, tmp_path):
    import json

    import yaml
    from typer.testing import CliRunner

    from workbench.cli import app

    url, _, frames = project
    config = tmp_path / "workbench.yml"
    config.write_text(yaml.safe_dump(config_data(incremental=False)))
    load(url, arrived(frames, DAY0 + dt.timedelta(days=5)))
    runner = CliRunner()

    def analysed(*flags: str) -> dict:
        result = runner.invoke(
            app, ["analyze", "exp", "--format", "json", "--config", str(config), "--database", url, *flags]
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    full = analysed()
    for flags in (["--incremental"], ["--incremental"], ["--full-refresh"]):
        assert _close(analysed(*flags), full)


def _close(a, b) -> bool:
    """Two JSON results equal, numbers to 1e-9 relative (statistics of sums equal to 1e-12)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or np.isclose(a, b, rtol=1e-9, atol=0) or (np.isnan(a) and np.isnan(b))
    return a == b


def test_cumulative_days_and_other_metrics_leave_the_state_alone(project, tmp_path):
    from workbench.experiments.analysis import analysis_settings
    from workbench.experiments.cumulative import cumulative_effects
    from workbench.experiments.engine import sufficient_stats

    url, cfg, frames = project
    exp = experiment("exp", cfg)
    load(url, arrived(frames, DAY0 + dt.timedelta(days=5)))
    db = wb.connect(url)
    assert facts(exp, db).stats.attrs["refresh"].built
    days = [(DAY0 + dt.timedelta(days=d)).date() for d in (1, 3)]
    cumulative = cumulative_effects(exp, db, analysis_settings(exp), days)
    assert set(cumulative["day"].dt.date) == set(days)
    assert facts(exp, db).stats.attrs["refresh"].why == ""  # the state was not rebuilt for the days
    data = config_data()
    data["metrics"].append({"name": "big_orders", "type": "count", "sql": ORDERS, "filter": "value > 50"})
    other = experiment("exp", parse_config(data, tmp_path / "other.yml"))
    with pytest.raises(ConfigError, match=r"keeps the experiment's own metrics, not \['big_orders'\]"):
        sufficient_stats(other, None, db, metrics=["big_orders"])
    db.dispose()


@pytest.mark.notebook
def test_report_incremental_builds_the_state_then_updates_it(backend, project, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from workbench.cli import app

    if backend.name != "duckdb":
        pytest.skip("one engine is enough for the command's plumbing")
    url, _, frames = project
    config = tmp_path / "workbench.yml"
    config.write_text(yaml.safe_dump(config_data(incremental=False)))
    load(url, arrived(frames, DAY0 + dt.timedelta(days=5)))
    runner = CliRunner()
    report = ["report", "exp", "--config", str(config), "--database", url, "--incremental"]
    first = runner.invoke(app, report)
    assert first.exit_code == 0, first.output
    built = bookkeeping(url, tmp_path)
    assert len(built) == 1
    again = runner.invoke(app, report)
    assert again.exit_code == 0, again.output
    updated = bookkeeping(url, tmp_path)
    assert updated["refreshed_at"].iloc[0] > built["refreshed_at"].iloc[0]  # the second report refreshed it


def test_the_command_line_warns_of_late_rows_at_every_run_until_a_rebuild(backend, project, tmp_path):
    """`workbench analyze` in its own process: late rows give one ``warning:`` sentence on stderr
    (no source line, no traceback), and the results' health warnings and decision ("don't trust
    yet") carry it, at every incremental run until ``--full-refresh``."""
    import subprocess
    import sys

    import yaml

    if backend.name != "duckdb":
        pytest.skip("one engine is enough for the command's plumbing")
    url, _, (exposures, orders) = project
    config = tmp_path / "workbench.yml"
    config.write_text(yaml.safe_dump(config_data()))
    load(url, {"exposures": exposures, "orders": orders})
    command = [str(Path(sys.executable).with_name("workbench")), "analyze", "exp", "--config", str(config)]
    command += ["--database", url, "--overall-only"]

    def run(*args: str) -> tuple[str, str]:
        done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout, done.stderr

    sentence = "experiment 'exp': 40 source rows older than"
    stdout, stderr = run()  # the entry is incremental: this run builds the state
    assert "warning" not in stderr and sentence not in stdout
    late = orders.iloc[:40].assign(timestamp=DAY0 + dt.timedelta(hours=30))  # day 1's rows, arriving now
    load(url, {"exposures": exposures, "orders": pd.concat([orders, late], ignore_index=True)})
    for _ in range(2):
        stdout, stderr = run()
        lines = [line for line in stderr.splitlines() if "late_data_hours" in line]
        assert len(lines) == 1 and lines[0].startswith(f"warning: {sentence}"), stderr
        assert "LateRowsWarning" not in stderr and ".py:" not in stderr
        assert f"- {sentence}" in stdout and f"WARNING: {sentence}" in stdout  # a reason of the decision, a health line
        assert stdout.startswith("DECISION: Don't trust yet")
    for args in (["--full-refresh"], []):
        stdout, stderr = run(*args)
        assert "warning" not in stderr and sentence not in stdout


def bookkeeping(url: str, tmp_path: Path) -> pd.DataFrame:
    """The rows of the state's ``experiment_state`` table."""
    db = wb.connect(url)
    state = open_state(db, experiment("exp", parse_config(config_data(), tmp_path / "w.yml")))
    rows = state.sql("SELECT refreshed_at, settled_before FROM workbench_state.experiment_state")
    state.dispose()
    db.dispose()
    return rows


# ------------------------------------------------------------------ Spark: the state in generations
SPARK_TABLES = ("exposures", "orders", "pageviews", "identities")


def spark_test(test):
    """A test on the suite's Spark Connect server; PySpark's warnings about pandas 3 (its
    conversions pass a deprecated ``copy`` keyword) are ignored."""
    for category in ("FutureWarning", "DeprecationWarning"):
        test = pytest.mark.filterwarnings(f"ignore::{category}:pyspark.*")(test)
    return pytest.mark.spark(test)


@pytest.fixture()
def spark_project(spark_connect_server, tmp_path):
    """The suite's Spark Connect server and the test's rows; its tables and the state database
    are dropped after."""
    yield spark_connect_server.url, rows()
    db = wb.connect(spark_connect_server.url, read_only=False)
    for name in SPARK_TABLES:
        db.sql(f"DROP TABLE IF EXISTS {name}")
    db.sql("DROP SCHEMA IF EXISTS workbench_state CASCADE")
    db.dispose()


def state_tables(state_db, exp) -> list[str]:
    """The generations of ``exp``'s state table in the catalog."""
    schema, name = state_table(exp).split(".")
    return sorted(state_db.tables(schema, f"{name}_*"))


@spark_test
@pytest.mark.filterwarnings("error::workbench.experiments.incremental.LateRowsWarning")
@pytest.mark.parametrize("timestamp", [False, True], ids=["whole-map", "map-with-timestamp"])
def test_on_spark_every_run_publishes_a_generation_equal_to_a_full_analysis(spark_project, tmp_path, timestamp):
    """Spark has no transactions: each run writes a new generation of the state table, appends its
    bookkeeping row (which publishes it) and drops the older one. Metrics through the identity map
    included (Spark sorts a unit's ids with its own SQL), the map read whole or, with a timestamp,
    from the settled boundary on."""
    url, frames = spark_project
    exp, tables = identity_experiment(frames, tmp_path, timestamp)
    for run, day in enumerate((2, 4, 5, 7, DAYS + 1), start=1):
        load(url, tables(DAY0 + dt.timedelta(days=day, hours=3)))
        db = wb.connect(url)
        incremental, full = facts(exp, db), facts(exp, db, incremental=False)
        refresh = incremental.stats.attrs["refresh"]
        assert (refresh.built, refresh.table) == (run == 1, f"{state_table(exp)}_{run}")
        state = open_state(db, exp)
        assert state_tables(state, exp) == [refresh.table.split(".")[1]]
        log = state.sql("SELECT generation FROM workbench_state.experiment_state", limit=None)
        assert sorted(log["generation"]) == list(range(1, run + 1))
        db.dispose()
        assert_same(incremental, full)
    assert full.stats.query("metric == 'views' and dimension == 'overall'")["main_sum"].sum() > 1000


@spark_test
def test_on_spark_a_run_killed_before_it_publishes_leaves_the_previous_state(spark_project, tmp_path, monkeypatch):
    url, frames = spark_project
    exp = experiment("exp", parse_config(config_data(), tmp_path / "workbench.yml"))
    load(url, arrived(frames, DAY0 + dt.timedelta(days=4)))
    db = wb.connect(url)
    facts(exp, db)
    db.dispose()  # a session lists a table's files once: a new one reads the rows loaded next
    load(url, arrived(frames, DAY0 + dt.timedelta(days=6)))
    db = wb.connect(url)
    state_db = open_state(db, exp)
    snapshot = f"SELECT * FROM {state_table(exp)}_1 ORDER BY wb_unit"
    meta = "SELECT * FROM workbench_state.experiment_state"
    before, before_meta = state_db.sql(snapshot, limit=None), state_db.sql(meta)
    run = SparkDatabase.sql

    def killed(self, query, /, **kwargs):
        if query.startswith("INSERT INTO workbench_state.experiment_state"):  # the new generation is written
            raise RuntimeError("killed before publishing")
        return run(self, query, **kwargs)

    monkeypatch.setattr(SparkDatabase, "sql", killed)
    with pytest.raises(RuntimeError, match="killed"):
        refresh_state(exp, state_db)
    monkeypatch.undo()
    assert len(state_tables(state_db, exp)) == 2  # the unpublished generation is there, named by nothing
    pd.testing.assert_frame_equal(state_db.sql(snapshot, limit=None), before)
    pd.testing.assert_frame_equal(state_db.sql(meta), before_meta)
    incremental, full = facts(exp, db), facts(exp, db, incremental=False)  # the next run replaces it
    assert incremental.stats.attrs["refresh"].table == f"{state_table(exp)}_2"
    assert_same(incremental, full)
    assert state_tables(state_db, exp) == [f"{state_table(exp)}_2".split(".")[1]]
    state_db.sql(f"DROP TABLE {state_table(exp)}_2")  # deleted by hand, its log row left
    again = facts(exp, db)
    assert (again.stats.attrs["refresh"].why, again.stats.attrs["refresh"].table) == (
        "state table missing",
        f"{state_table(exp)}_3",
    )
    assert_same(again, full)
    db.dispose()


@spark_test
def test_on_spark_the_refresh_session_writes_only_the_state_database(spark_project, tmp_path):
    url, frames = spark_project
    load(url, arrived(frames, DAY0 + dt.timedelta(days=2)))
    db = wb.connect(url)
    state = open_state(db, experiment("exp", parse_config(config_data(), tmp_path / "workbench.yml")))
    refused = {
        "CREATE TABLE default.copied AS SELECT * FROM orders": "not table default.copied",
        "DROP TABLE exposures": "not table exposures",
        "INSERT INTO orders VALUES ('u', CURRENT_TIMESTAMP, 1.0)": "not table orders",
        "CREATE VIEW workbench_state.v AS SELECT 1 AS a": "not view workbench_state.v",
        'CREATE TABLE workbench_state.f AS SELECT * FROM parquet."/tmp"': "read catalog tables only",
        "UPDATE orders SET amount = 0": "runs one query, or one statement creating, filling or dropping a table of",
    }
    for statement, message in refused.items():
        with pytest.raises(DatabaseError, match=message):
            state.sql(statement)
    state.sql("CREATE SCHEMA IF NOT EXISTS workbench_state")
    state.sql("CREATE TABLE workbench_state.scratch AS SELECT COUNT(*) AS n FROM orders")
    orders = len(db.sql("SELECT * FROM orders", limit=None))
    assert state.sql("SELECT n FROM workbench_state.scratch")["n"].iloc[0] == orders
    state.sql("DROP TABLE workbench_state.scratch")
    assert "read-only, writes workbench_state" in repr(state)
    db.dispose()
