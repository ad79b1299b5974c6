"""The catalogue, counts over time, merged streams and unassociated events equal pandas on the
generator's raw events; the events overview notebook runs end to end."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest

import workbench as wb
from workbench import paths
from workbench.db.bulk_write import write_transaction
from workbench.events import event_catalogue, event_counts, resolve_identities
from workbench.events.explore import busiest_profiles, profile_stream, unassociated_events
from workbench.events.settings import EventSettings
from workbench.events.simulate import simulate_stream
from workbench.events.statements import event_tables
from workbench.events.store import ensure_event_store

SETTINGS = EventSettings(schema="grouparoo", source="the test settings")
HELD_BACK = 25  # events written after resolution: still without a profile


@pytest.fixture(scope="module")
def stream():
    return simulate_stream(60, seed=51)


@pytest.fixture(scope="module")
def explored(backend, stream):
    url = backend.new_url(f"explore_{backend.name}")
    db = wb.connect(url, read_only=False)
    ensure_event_store(db, SETTINGS)
    events, data = stream.arrow_tables("web")
    tables = event_tables("grouparoo")
    with write_transaction(db) as writer:
        writer.append(tables["events"], events.slice(0, len(events) - HELD_BACK))
        writer.append(tables["event_data"], data)
    resolve_identities(db, settings=SETTINGS)
    with write_transaction(db) as writer:
        writer.append(tables["events"], events.slice(len(events) - HELD_BACK))
    db.dispose()
    database = wb.connect(url)
    yield url, database
    database.dispose()


def test_catalogue_lists_every_type_with_its_keys(explored, stream):
    _, db = explored
    got = event_catalogue(db, settings=SETTINGS).set_index("type")
    ev = stream.events
    want = ev.groupby("type").agg(
        events=("event_index", "size"), first_seen=("occurred_at", "min"), last_seen=("occurred_at", "max")
    )
    assert got.index.tolist() == sorted(want.index)
    assert got["events"].tolist() == want["events"].tolist()
    assert (pd.to_datetime(got["first_seen"]) == want["first_seen"]).all() and (
        pd.to_datetime(got["last_seen"]) == want["last_seen"]
    ).all()
    payload = stream.data.merge(ev[["event_index", "type"]], on="event_index").groupby(["type", "key"])["value"].min()
    for event_type, keys in got["keys"].items():
        assert keys == payload.loc[event_type].to_dict()


@pytest.mark.parametrize("by, freq", [("minute", "min"), ("hour", "h"), ("day", "D"), ("month", "MS")])
def test_counts_per_bucket_and_type(explored, stream, by, freq):
    _, db = explored
    start, end = datetime(2026, 1, 3), datetime(2026, 1, 9, 12)
    got = event_counts(db, by=by, start=start, end=end, types=["pageview", "purchase"], settings=SETTINGS)
    ev = stream.events[
        (stream.events["occurred_at"] >= start)
        & (stream.events["occurred_at"] < end)
        & stream.events["type"].isin(["pageview", "purchase"])
    ]
    bucket = ev["occurred_at"].dt.to_period("M").dt.start_time if by == "month" else ev["occurred_at"].dt.floor(freq)
    want = ev.assign(bucket=bucket).groupby(["bucket", "type"]).size().reset_index(name="events")
    assert list(zip(pd.to_datetime(got["bucket"]), got["type"], got["events"])) == list(
        zip(want["bucket"], want["type"], want["events"])
    )


def test_a_profile_stream_holds_every_device_of_the_user(explored, stream):
    _, db = explored
    top = busiest_profiles(db, limit=3, settings=SETTINGS)
    user = top["user_id"].iloc[0]
    truth = stream.truth
    devices = set(truth.loc[truth["user_id"] == user, "anonymous_id"])
    ev = stream.events.iloc[: len(stream.events) - HELD_BACK]
    mine = ev[(ev["user_id"] == user) | (ev["user_id"].isna() & ev["anonymous_id"].isin(devices))].sort_values(
        "occurred_at"
    )
    got = profile_stream(db, user_id=user, settings=SETTINGS)
    assert got["type"].tolist() == mine["type"].tolist()
    assert (pd.to_datetime(got["occurred_at"]).to_numpy() == mine["occurred_at"].to_numpy()).all()
    payload = stream.data.groupby("event_index").apply(lambda g: dict(zip(g["key"], g["value"])), include_groups=False)
    assert got["data"].tolist() == [payload.get(i, {}) for i in mine["event_index"]]
    assert top["anonymous_ids"].iloc[0] == len(devices & set(ev["anonymous_id"].dropna()))
    assert top["events"].iloc[0] == len(mine) and top["events"].is_monotonic_decreasing


def test_unassociated_events_are_the_ones_written_after_resolution(explored, stream):
    _, db = explored
    waiting, oldest = unassociated_events(db, limit=10, settings=SETTINGS)
    held = stream.events.iloc[len(stream.events) - HELD_BACK :].sort_values("occurred_at")
    assert waiting == HELD_BACK
    assert (pd.to_datetime(oldest["occurred_at"]).to_numpy() == held["occurred_at"].iloc[:10].to_numpy()).all()


@pytest.mark.notebook
def test_the_events_overview_notebook_runs(explored, tmp_path, backend):
    if backend.name != "duckdb":
        pytest.skip("one engine is enough to prove the notebook runs")
    from workbench.reports.notebooks import run_notebook

    url, _ = explored
    result = run_notebook(
        "events_overview.ipynb", tmp_path, parameters={"by": "hour", "types": ["purchase"]}, database_url=url
    )
    notebook = json.loads(result.notebook.read_text())
    outputs = "".join(json.dumps(c.get("outputs", [])) for c in notebook["cells"])
    assert "25 events have no profile" in outputs and "plotly" in outputs
    committed = json.loads((paths.notebooks_dir() / "events_overview.ipynb").read_text())
    assert all(not c.get("outputs") for c in committed["cells"] if c["cell_type"] == "code")
    assert sum("parameters" in c["metadata"].get("tags", []) for c in committed["cells"]) == 1
