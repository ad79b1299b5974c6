"""The toolkit on GrowthBook's real sample data, checked against pandas on the raw CSV files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.toolkit import Toolkit

FUNNEL = ["/", "/search", "/checkout", "/success"]


def _csv(sample_dir, stem: str, times: list[str]) -> pd.DataFrame:
    name = next(p for p in (sample_dir / f"{stem}.csv.gz", sample_dir / f"{stem}.csv") if p.exists())
    frame = pd.read_csv(name, dtype=str, keep_default_na=False, na_values=[r"\N"])
    for column in times:
        frame[column] = pd.to_datetime(frame[column])
    return frame


@pytest.fixture(scope="module")
def sample(growthbook_url, sample_dir):
    db = wb.connect(growthbook_url)
    raw = {
        "pages": _csv(sample_dir, "pageViews", ["timestamp"]),
        "events": _csv(sample_dir, "events", ["timestamp"]),
        "sessions": _csv(sample_dir, "sessions", ["sessionStart"]),
    }
    yield db, raw
    db.dispose()


def test_derived_sessions_match_pandas(sample):
    db, raw = sample
    got = Toolkit(db, "growthbook_pages").sessions(inactivity="30min", from_table=False, limit=None)
    pages = raw["pages"].dropna(subset=["userId"]).sort_values(["userId", "timestamp"], kind="stable")
    gap = pages.groupby("userId")["timestamp"].diff()
    pages["session"] = (gap.isna() | (gap > pd.Timedelta("30min"))).astype(int).groupby(pages["userId"]).cumsum()
    want = (
        pages.groupby(["userId", "session"])
        .agg(start=("timestamp", "min"), end=("timestamp", "max"), n=("path", "size"))
        .reset_index()
    )
    assert len(got) == len(want)
    assert list(got["unit"]) == list(want["userId"]) and list(got["session_start"]) == list(want["start"])
    assert list(got["events"]) == list(want["n"]) and list(got["pages"]) == list(want["n"])
    assert np.array_equal(got["duration_s"], (want["end"] - want["start"]).dt.total_seconds())


def test_sessions_from_the_sessions_table_match_the_csv(sample):
    db, raw = sample
    got = Toolkit(db, "growthbook_pages").sessions(limit=None)
    sessions = raw["sessions"].dropna(subset=["userId"])
    assert not got.attrs["derived"] and "FROM sessions" in got.sql
    assert len(got) == len(sessions)
    assert got["pages"].sum() == sessions["pages"].astype(int).sum()
    assert got["duration_s"].sum() == sessions["duration"].astype(int).sum()
    views = raw["pages"].groupby("sessionId").size()
    by_id = got.set_index("session")["events"]
    assert (by_id == views.reindex(by_id.index).fillna(0).astype(int)).all()
    first = got.iloc[0]
    assert first["session_end"] - first["session_start"] == pd.Timedelta(seconds=first["duration_s"])


def test_funnel_matches_pandas(sample):
    db, raw = sample
    got = Toolkit(db, "growthbook_pages").funnel(FUNNEL, within="1h")
    pages = raw["pages"].dropna(subset=["userId"])
    reached = pages[pages["path"] == FUNNEL[0]].groupby("userId")["timestamp"].min().rename("t").reset_index()
    reached["entered"] = reached["t"]
    want = [len(reached)]
    for step in FUNNEL[1:]:
        hits = reached.merge(pages[pages["path"] == step][["userId", "timestamp"]], on="userId")
        hits = hits[(hits["timestamp"] >= hits["t"]) & (hits["timestamp"] <= hits["entered"] + pd.Timedelta("1h"))]
        reached = hits.groupby(["userId", "entered"])["timestamp"].min().rename("t").reset_index()
        want.append(len(reached))
    assert list(got["units"]) == want
    assert got["conversion"].iloc[-1] == pytest.approx(want[-1] / want[0])


def test_event_counts_and_retention_match_pandas(sample):
    db, raw = sample
    tk = Toolkit(db, "growthbook_events")
    got = tk.event_counts(by="day", types=["Add to Cart", "Search"])
    ev = raw["events"][raw["events"]["event"].isin(["Add to Cart", "Search"])]
    want = (
        ev.groupby([ev["timestamp"].dt.floor("D"), "event"])
        .agg(n=("value", "size"), u=("userId", "nunique"))
        .reset_index()
    )
    assert list(got["events"]) == list(want["n"]) and list(got["units"]) == list(want["u"])

    retention = tk.retention(cohort="week", activity="Add to Cart", periods=4)
    events = raw["events"].dropna(subset=["userId"])
    week = events["timestamp"].dt.to_period("W-SUN")
    cohort = week.groupby(events["userId"]).min()
    carts = events.assign(week=week)[events["event"] == "Add to Cart"][["userId", "week"]].drop_duplicates()
    carts["period"] = [(w - c).n for w, c in zip(carts["week"], carts["userId"].map(cohort))]
    first_cohort = retention["cohort"].min()
    mine = carts[carts["userId"].map(cohort) == pd.Period(first_cohort, "W-SUN")]
    assert list(retention[retention["cohort"] == first_cohort]["units"]) == [
        int((mine["period"] == k).sum()) for k in range(4)
    ]
