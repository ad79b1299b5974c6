"""The toolkit's canonical queries against independent pandas computations on generated events.

The generated table holds the hard cases: a session across midnight, rows stored out of time
order, events tied on the timestamp (also at a session start and across funnel steps), a gap of
exactly the inactivity threshold, events without a unit, and a unit with a single event.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import workbench as wb
from workbench.db.bulk_write import write_tables
from workbench.db.sql_files import TableDefinition
from workbench.errors import ConfigError
from workbench.toolkit import Toolkit, event_source

CLICKS = TableDefinition(
    "clicks",
    (("uid", "TEXT"), ("ts", "TIMESTAMP"), ("kind", "TEXT"), ("amount", "DOUBLE PRECISION"), ("country", "TEXT")),
)
STUDY_SESSION = TableDefinition("session", (("uuid", "TEXT"), ("participant_code", "TEXT")))
STUDY_EVENT = TableDefinition("event", (("session_uuid", "TEXT"), ("created_at", "TIMESTAMP"), ("type", "TEXT")))
KINDS = ["view", "search", "cart", "buy"]
GAP = pd.Timedelta("30min")
T0 = pd.Timestamp("2026-03-02 08:00:00")  # a Monday


def _hard_cases() -> list[tuple]:
    day = pd.Timestamp("2026-03-04")
    return [
        # a session across midnight, then a new one after 65 minutes
        ("midnight", day + pd.Timedelta("23:50:00"), "view", 1.0, "FR"),
        ("midnight", day + pd.Timedelta("24:10:00"), "search", None, "FR"),
        ("midnight", day + pd.Timedelta("24:25:00"), "cart", 2.5, "FR"),
        ("midnight", day + pd.Timedelta("25:30:00"), "buy", 10.0, "FR"),
        # ties: two events at a session start after a gap, and funnel steps on one timestamp
        ("ties", day + pd.Timedelta("10:00:00"), "view", None, "DE"),
        ("ties", day + pd.Timedelta("12:00:00"), "view", None, "DE"),
        ("ties", day + pd.Timedelta("12:00:00"), "search", None, "DE"),
        ("ties", day + pd.Timedelta("12:00:00"), "cart", 3.0, "DE"),
        # a gap of exactly the threshold stays in the session; one second more starts a new one
        ("edge", day + pd.Timedelta("09:00:00"), "view", None, None),
        ("edge", day + pd.Timedelta("09:30:00"), "search", None, None),
        ("edge", day + pd.Timedelta("10:00:01"), "cart", None, None),
        # a unit with one event, and events without a unit
        ("single", day + pd.Timedelta("15:00:00"), "view", None, "US"),
        (None, day + pd.Timedelta("15:00:00"), "view", None, "US"),
        (None, day + pd.Timedelta("15:10:00"), "buy", 5.0, "US"),
        (None, day + pd.Timedelta("16:10:00"), "search", None, None),
    ]


def generated_events() -> pd.DataFrame:
    """~1,500 events of 30 units over three weeks, minute resolution (ties happen), shuffled."""
    rng = np.random.default_rng(8)
    rows = []
    for u in range(30):
        country = ["FR", "DE", "US", None][u % 4]
        t = T0 + pd.Timedelta(minutes=int(rng.integers(0, 60 * 24 * 7)))
        for _ in range(int(rng.integers(20, 80))):
            t += pd.Timedelta(minutes=int(rng.choice([0, 1, 3, 10, 29, 30, 31, 45, 90, 60 * 20])))
            value = float(rng.integers(1, 50)) if rng.random() < 0.5 else None
            rows.append((f"u{u:02d}", t, KINDS[int(rng.integers(0, 4))], value, country))
    frame = pd.DataFrame(rows + _hard_cases(), columns=CLICKS.column_names)
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)  # stored out of time order


def _arrow(frame: pd.DataFrame, table: TableDefinition) -> pa.Table:
    types = {"TEXT": pa.string(), "TIMESTAMP": pa.timestamp("us"), "DOUBLE PRECISION": pa.float64()}
    return pa.table({c: pa.array(frame[c], type=types[t], from_pandas=True) for c, t in table.columns})


@pytest.fixture(scope="module")
def clicks(backend):
    """(database URL, the raw events) of a fresh database holding the generated events."""
    raw = generated_events()
    sessions = pd.DataFrame(
        {"uuid": [f"s{i}" for i in range(6)], "participant_code": ["p1", "p1", "p2", "p3", "p3", None]}
    )
    study = raw.dropna(subset=["uid"]).head(300).assign(session_uuid=lambda f: [f"s{i % 7}" for i in range(len(f))])
    study = study.rename(columns={"ts": "created_at", "kind": "type"})
    url = backend.new_url("toolkit_clicks")
    db = wb.connect(url, read_only=False)
    write_tables(
        db,
        [
            (CLICKS, [_arrow(raw, CLICKS)]),
            (STUDY_SESSION, [_arrow(sessions, STUDY_SESSION)]),
            (STUDY_EVENT, [_arrow(study, STUDY_EVENT)]),
        ],
    )
    db.dispose()
    db = wb.connect(url)
    yield db, raw, (sessions, study)
    db.dispose()


SOURCE = event_source(
    "clicks",
    {"table": "clicks", "unit": "uid", "timestamp": "ts", "type": "kind", "value": "amount", "page_type": "view"},
)


def expected_sessions(raw: pd.DataFrame, gap: pd.Timedelta = GAP) -> pd.DataFrame:
    ev = raw.dropna(subset=["uid"]).sort_values(["uid", "ts"], kind="stable")
    new = ev.groupby("uid")["ts"].diff().isna() | (ev.groupby("uid")["ts"].diff() > gap)
    ev = ev.assign(session=new.astype(int).groupby(ev["uid"]).cumsum(), page=(ev["kind"] == "view").astype(int))
    out = (
        ev.groupby(["uid", "session"])
        .agg(session_start=("ts", "min"), session_end=("ts", "max"), events=("ts", "size"), pages=("page", "sum"))
        .reset_index()
    )
    out["duration_s"] = (out["session_end"] - out["session_start"]).dt.total_seconds()
    return out


def test_sessions_are_derived_in_sql_like_pandas(clicks):
    db, raw, _ = clicks
    got = Toolkit(db, SOURCE).sessions(inactivity="30min")
    want = expected_sessions(raw)
    assert got.attrs["derived"] and "LAG(ts) OVER" in got.sql
    assert list(got["unit"]) == list(want["uid"])
    assert list(got["session"]) == list(want["session"])
    for column in ("session_start", "session_end", "events", "pages", "duration_s"):
        assert list(got[column]) == list(want[column]), column
    midnight = got[got["unit"] == "midnight"]
    assert list(midnight["events"]) == [3, 1] and midnight["duration_s"].iloc[0] == 35 * 60
    assert list(got[got["unit"] == "edge"]["events"]) == [2, 1]
    assert list(got[got["unit"] == "ties"]["events"]) == [1, 3]
    assert list(got[got["unit"] == "single"]["duration_s"]) == [0.0]
    assert got["unit"].notna().all()


def test_sessions_gap_is_configurable(clicks):
    db, raw, _ = clicks
    got = Toolkit(db, SOURCE).sessions(inactivity="2h", start="2026-03-05", end="2026-03-12")
    window = raw[(raw["ts"] >= "2026-03-05") & (raw["ts"] < "2026-03-12")]
    want = expected_sessions(window, pd.Timedelta("2h"))
    assert len(got) == len(want) and list(got["events"]) == list(want["events"])
    assert list(got["session_start"]) == list(want["session_start"])


@pytest.mark.parametrize("by, freq", [("hour", "h"), ("day", "D"), ("week", None), ("month", None)])
def test_event_counts_match_pandas(clicks, by, freq):
    db, raw, _ = clicks
    got = Toolkit(db, SOURCE).event_counts(by=by, types=["view", "buy"])
    ev = raw[raw["kind"].isin(["view", "buy"])]
    if by == "week":
        period = ev["ts"].dt.to_period("W-SUN").dt.start_time
    elif by == "month":
        period = ev["ts"].dt.to_period("M").dt.start_time
    else:
        period = ev["ts"].dt.floor(freq)
    want = (
        ev.assign(period=period)
        .groupby(["period", "kind"])
        .agg(events=("ts", "size"), units=("uid", "nunique"))
        .reset_index()
    )
    assert list(got["period"]) == list(want["period"])
    assert list(got["event_type"]) == list(want["kind"])
    assert list(got["events"]) == list(want["events"]) and list(got["units"]) == list(want["units"])
    assert got["events"].sum() == len(ev)  # events without a unit are counted too


def test_events_filter_by_type_and_window(clicks):
    db, raw, _ = clicks
    got = Toolkit(db, SOURCE).events(types="cart", start=dt.date(2026, 3, 4), end="2026-03-05 00:30")
    want = raw[(raw["kind"] == "cart") & (raw["ts"] >= "2026-03-04") & (raw["ts"] < "2026-03-05 00:30")]
    want = want.sort_values(["ts", "uid"], na_position="last")
    assert list(got["ts"]) == list(want["ts"])
    assert sorted(got["unit"].fillna("-")) == sorted(want["uid"].fillna("-"))
    assert np.isclose(got["value"].sum(), want["amount"].sum())


def expected_funnel(raw: pd.DataFrame, steps: list[str], within: pd.Timedelta, by: str | None) -> dict:
    """Per (dimension, step number): units, by walking each unit's events in time order."""
    counts: dict = {}
    for _unit, ev in raw.dropna(subset=["uid"]).groupby("uid"):
        ev = ev.sort_values(["ts", "country"], na_position="last", kind="stable")
        entries = ev[ev["kind"] == steps[0]]
        if entries.empty:
            continue
        entered = entries["ts"].iloc[0]
        dim = entries["country"].iloc[0] if by else None
        dim = "(null)" if by and pd.isna(dim) else dim
        t, reached = entered, 1
        for step in steps[1:]:
            later = ev[(ev["kind"] == step) & (ev["ts"] >= t) & (ev["ts"] <= entered + within)]
            if later.empty:
                break
            t, reached = later["ts"].min(), reached + 1
        for k in range(1, reached + 1):
            counts[(dim, k)] = counts.get((dim, k), 0) + 1
    return counts


@pytest.mark.parametrize("by", [None, "country"])
def test_funnel_matches_a_walk_through_each_units_events(clicks, by):
    db, raw, _ = clicks
    steps = ["view", "search", "cart", "buy"]
    got = Toolkit(db, SOURCE).funnel(steps, within="1h", by=by)
    want = expected_funnel(raw, steps, pd.Timedelta("1h"), by)
    dims = got[by] if by else [None] * len(got)
    assert {(d, n): u for d, n, u in zip(dims, got["step_number"], got["units"]) if u} == want
    assert list(got["step"].iloc[:4]) == steps
    first = got.groupby(by)["units"].transform("first") if by else got["units"].iloc[0]
    assert np.allclose(got["conversion"], got["units"] / first)


@pytest.mark.parametrize("cohort, periods", [("week", 4), ("day", 10), ("month", 2)])
def test_retention_matches_pandas(clicks, cohort, periods):
    db, raw, _ = clicks
    got = Toolkit(db, SOURCE).retention(cohort=cohort, activity=["buy", "cart"], periods=periods)
    ev = raw.dropna(subset=["uid"])
    code = {"week": "W-SUN", "day": "D", "month": "M"}[cohort]
    bucket = ev["ts"].dt.to_period(code)
    first = bucket.groupby(ev["uid"]).min()
    active = ev.assign(bucket=bucket)[ev["kind"].isin(["buy", "cart"])][["uid", "bucket"]].drop_duplicates()
    active["cohort"] = active["uid"].map(first)
    active["period"] = [(b - c).n for b, c in zip(active["bucket"], active["cohort"])]
    sizes = first.value_counts()
    for row in got.itertuples():
        key = pd.Period(row.cohort, code)
        assert row.cohort_units == sizes[key]
        want = ((active["cohort"] == key) & (active["period"] == row.period)).sum()
        assert row.units == want, (row.cohort, row.period)
        assert row.retention == pytest.approx(want / sizes[key])
    assert len(got) == len(sizes) * periods


def test_user_metrics_match_pandas(clicks):
    db, raw, _ = clicks
    got = Toolkit(db, SOURCE).user_metrics(types=["view", "buy"])
    ev = raw.dropna(subset=["uid"])
    ev = ev[ev["kind"].isin(["view", "buy"])]
    want = (
        ev.groupby("uid")
        .agg(
            events=("ts", "size"),
            event_types=("kind", "nunique"),
            value_sum=("amount", "sum"),
            first_seen=("ts", "min"),
            last_seen=("ts", "max"),
            active_days=("ts", lambda s: s.dt.date.nunique()),
        )
        .reset_index()
    )
    all_null = ev.groupby("uid")["amount"].apply(lambda s: s.isna().all())
    want.loc[all_null.values, "value_sum"] = np.nan  # SQL SUM over only NULLs is NULL
    assert list(got["unit"]) == list(want["uid"])
    for column in ("events", "event_types", "first_seen", "last_seen", "active_days"):
        assert list(got[column]) == list(want[column]), column
    assert np.allclose(got["value_sum"], want["value_sum"], equal_nan=True)
    assert list(got["count_view"]) == list(ev.groupby("uid")["kind"].apply(lambda s: (s == "view").sum()))


def test_study_source_reads_the_unit_through_the_session_table(clicks):
    db, _, (sessions, study) = clicks
    got = Toolkit(db, "study_events").user_metrics()
    joined = study.merge(sessions, left_on="session_uuid", right_on="uuid", how="left").dropna(
        subset=["participant_code"]
    )
    want = (
        joined.groupby("participant_code")
        .agg(events=("created_at", "size"), first_seen=("created_at", "min"))
        .reset_index()
    )
    assert list(got["unit"]) == list(want["participant_code"])
    assert list(got["events"]) == list(want["events"]) and list(got["first_seen"]) == list(want["first_seen"])
    assert "JOIN session j ON e.session_uuid = j.uuid" in got.sql


def test_sources_mapped_in_workbench_yml(clicks, tmp_path):
    db, raw, _ = clicks
    config = tmp_path / "workbench.yml"
    config.write_text(
        "event_sources:\n  my_clicks:\n    table: clicks\n    unit: uid\n    timestamp: ts\n    type: kind\n"
    )
    got = Toolkit(db, "my_clicks", config_path=config).event_counts(by="day")
    assert got["events"].sum() == len(raw)
    with pytest.raises(ConfigError, match=r"No event source named 'nope'.*my_clicks"):
        Toolkit(db, "nope", config_path=config)
    config.write_text(
        "event_sources:\n  bad:\n    table: clicks; DROP TABLE clicks\n    unit: uid\n    timestamp: ts\n"
    )
    with pytest.raises(ConfigError, match=r"bad.*table.*\[schema\.\]table name"):
        Toolkit(db, "bad", config_path=config)


def test_results_carry_their_sql_and_draw_a_chart(clicks):
    db, _, _ = clicks
    tk = Toolkit(db, SOURCE)
    charts = {
        "histogram": tk.sessions(),
        "scatter": tk.event_counts(by="day"),
        "funnel": tk.funnel(["view", "buy"]),
        "heatmap": tk.retention(periods=3),
    }
    for trace, result in charts.items():
        assert "FROM clicks e" in result.sql
        assert tk.db.sql(result.sql, **result.params).shape[0] >= 1  # the SQL shown is the SQL that runs
        assert result.plot().data[0].type == trace
    with pytest.raises(ValueError, match="by='year' is not supported"):
        tk.event_counts(by="year")
    with pytest.raises(ValueError, match="inactivity='soon' is not a duration"):
        tk.sessions(inactivity="soon")
