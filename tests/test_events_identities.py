"""Identity resolution ends in exactly the true users, whatever the batches, on both engines.

The truth comes from the generator (which user owns each anonymous id) or from hand-built
scenarios; resolution output is only ever compared with it.
"""

from __future__ import annotations

import importlib
import io
import json
import random
import re
from datetime import datetime

import pandas as pd
import pytest

import workbench as wb
from workbench.db.bulk_write import write_transaction
from workbench.events import ingest, resolve_identities
from workbench.events.settings import EventSettings
from workbench.events.simulate import simulate_stream
from workbench.events.statements import event_tables
from workbench.events.store import ensure_event_store

KEY = "test-web-key-0123"
SETTINGS = EventSettings(schema="grouparoo", api_keys={"web": KEY}, source="the test settings")
TABLES = event_tables("grouparoo")


@pytest.fixture
def db(backend, request):
    url = backend.new_url(f"ident_{re.sub(r'[^a-z0-9]+', '_', request.node.name.lower())[-45:]}")
    database = wb.connect(url, read_only=False)
    ensure_event_store(database, SETTINGS)
    yield database
    database.dispose()


def resolved_partition(db) -> pd.DataFrame:
    """message_id -> owner key of the profile it ended in (u:<user id> or a:<anonymous id>)."""
    rows = db.sql(
        "SELECT e.message_id, e.profile_id, p.user_id, p.anonymous_id FROM grouparoo.events e "
        "JOIN grouparoo.profiles p ON p.id = e.profile_id",
        limit=None,
    )
    rows["owner"] = [
        "u:" + u if isinstance(u, str) else "a:" + a for u, a in zip(rows["user_id"], rows["anonymous_id"])
    ]
    return rows


def assert_resolved_to_truth(db, stream) -> None:
    expected = pd.Series(stream.expected_owners().to_numpy(), index=stream.events["message_id"].to_numpy())
    got = resolved_partition(db)
    assert len(got) == len(stream.events)
    assert got.set_index("message_id")["owner"].sort_index().equals(expected.sort_index())
    # exactly one profile per true owner, and each profile holds one owner
    assert got.groupby("owner")["profile_id"].nunique().eq(1).all()
    assert got["profile_id"].nunique() == expected.nunique()
    profiles = db.sql("SELECT count(*) AS n FROM grouparoo.profiles").iloc[0, 0]
    assert profiles == expected.nunique()
    identities = db.sql(
        "SELECT i.value AS anonymous_id, p.user_id FROM grouparoo.profile_identities i "
        "JOIN grouparoo.profiles p ON p.id = i.profile_id WHERE i.kind = 'anonymous_id'",
        limit=None,
    )
    truth = stream.truth.set_index("anonymous_id")["user_id"]
    seen = set(stream.events["anonymous_id"].dropna())
    assert set(identities["anonymous_id"]) == seen
    assert all(
        (truth[a] if isinstance(truth[a], str) else None) == (u if isinstance(u, str) else None)
        for a, u in zip(identities["anonymous_id"], identities["user_id"])
    )


def test_an_ingested_stream_resolves_to_exactly_the_true_users(db):
    stream = simulate_stream(120, seed=21)
    counts = ingest(db, io.BytesIO(stream.json_lines()), KEY, settings=SETTINGS)
    assert counts.stored == len(stream.events)
    result = resolve_identities(db, batch_size=250, settings=SETTINGS)
    assert result.associated == len(stream.events) and result.unassociated == 0
    assert result.batches == -(-len(stream.events) // 250)
    assert_resolved_to_truth(db, stream)
    # every anonymous id that signed in had an anonymous profile merged into its user's at most once
    merges = db.sql("SELECT merged_anonymous_id, survivor_user_id FROM grouparoo.profile_merges", limit=None)
    truth = stream.truth.set_index("anonymous_id")["user_id"]
    assert merges["merged_anonymous_id"].is_unique
    assert all(truth[a] == u for a, u in zip(merges["merged_anonymous_id"], merges["survivor_user_id"]))
    assert again_is_a_no_op(db)


def again_is_a_no_op(db) -> bool:
    before = db.sql("SELECT id, profile_id FROM grouparoo.events ORDER BY id", limit=None)
    result = resolve_identities(db, settings=SETTINGS)
    return result.associated == 0 and before.equals(
        db.sql("SELECT id, profile_id FROM grouparoo.events ORDER BY id", limit=None)
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_resolving_after_every_random_chunk_equals_the_truth(db, seed):
    """Events written straight into the table (as another system would), in random chunks and out
    of order, resolved after each chunk in random batch sizes."""
    stream = simulate_stream(80, seed=100 + seed)
    events, data = stream.arrow_tables("web")
    rng = random.Random(seed)
    cuts = [*sorted(rng.sample(range(1, len(events)), 5)), len(events)]
    start = 0
    with write_transaction(db) as writer:
        writer.append(TABLES["event_data"], data)
    for cut in cuts:
        with write_transaction(db) as writer:
            writer.append(TABLES["events"], events.slice(start, cut - start))
        start = cut
        resolve_identities(db, batch_size=rng.randint(25, 400), settings=SETTINGS)
    assert_resolved_to_truth(db, stream)


def test_an_interrupted_run_leaves_consistent_state_and_the_next_completes_it(db, monkeypatch):
    stream = simulate_stream(60, seed=31)
    events, _ = stream.arrow_tables("web")
    with write_transaction(db) as writer:
        writer.append(TABLES["events"], events)
    identities = importlib.import_module("workbench.events.identities")
    real = identities.resolve_batch_statements

    def broken_halfway(schema):
        statements = real(schema)
        middle = len(statements) // 2
        return [*statements[:middle], "SELECT no_such_column FROM resolve_batch", *statements[middle:]]

    resolve_identities(db, batch_size=100, max_batches=2, settings=SETTINGS)
    snapshot = {
        t: db.sql(f"SELECT * FROM grouparoo.{t} ORDER BY 1, 2", limit=None)
        for t in ("events", "profiles", "profile_identities", "profile_merges")
    }
    monkeypatch.setattr(identities, "resolve_batch_statements", broken_halfway)
    with pytest.raises(wb.WorkbenchError):
        resolve_identities(db, batch_size=100, settings=SETTINGS)
    for table, before in snapshot.items():
        assert db.sql(f"SELECT * FROM grouparoo.{table} ORDER BY 1, 2", limit=None).equals(before), table
    assert int(db.sql("SELECT count(*) FROM grouparoo.events WHERE profile_id IS NOT NULL").iloc[0, 0]) == 200
    monkeypatch.setattr(identities, "resolve_batch_statements", real)
    resolve_identities(db, batch_size=100, settings=SETTINGS)
    assert_resolved_to_truth(db, stream)


def send(db, *records) -> None:
    ingest(db, io.BytesIO("".join(json.dumps(r) + "\n" for r in records).encode()), KEY, settings=SETTINGS)


def owners(db) -> dict[str, str | None]:
    """message id -> user id of its profile (None for an anonymous profile)."""
    rows = db.sql(
        "SELECT e.message_id, p.user_id FROM grouparoo.events e JOIN grouparoo.profiles p ON p.id = e.profile_id"
    )
    return {m: (u if isinstance(u, str) else None) for m, u in zip(rows["message_id"], rows["user_id"])}


def plain_rows(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False, name=None)]


def test_a_merge_is_logged_with_what_each_side_held(db):
    def t(minute: int) -> str:
        return f"2026-01-01T00:{minute:02d}:00"

    send(
        db,
        {"type": "pageview", "anonymousId": "phone", "occurredAt": t(1), "messageId": "1"},
        {"type": "pageview", "anonymousId": "phone", "occurredAt": t(2), "messageId": "2"},
        {"type": "purchase", "userId": "ann", "occurredAt": t(3), "messageId": "3"},
    )
    resolve_identities(db, settings=SETTINGS)
    send(
        db,
        {"type": "sign-in", "anonymousId": "phone", "userId": "ann", "occurredAt": t(4), "messageId": "4"},
        {"type": "pageview", "anonymousId": "laptop", "occurredAt": t(5), "messageId": "5"},
    )
    resolve_identities(db, settings=SETTINGS)
    assert owners(db) == {"1": "ann", "2": "ann", "3": "ann", "4": "ann", "5": None}
    merges = db.sql(
        "SELECT survivor_user_id, survivor_anonymous_id, survivor_events, merged_user_id, merged_anonymous_id, merged_events "
        "FROM grouparoo.profile_merges"
    )
    assert plain_rows(merges) == [("ann", None, 1, None, "phone", 2)]
    profiles = db.sql("SELECT user_id, anonymous_id FROM grouparoo.profiles ORDER BY anonymous_id")
    assert plain_rows(profiles) == [(None, "laptop"), ("ann", "phone")]


def test_a_shared_device_belongs_to_the_first_user_seen_on_it(db):
    """User ids never merge: the tablet's anonymous events follow the user it was first seen with,
    even when that earlier sign-in arrives last."""

    def t(minute: int) -> str:
        return datetime(2026, 1, 1, 0, minute).isoformat()

    send(
        db,
        {"type": "pageview", "anonymousId": "tablet", "occurredAt": t(1), "messageId": "1"},
        {"type": "sign-in", "anonymousId": "tablet", "userId": "bob", "occurredAt": t(10), "messageId": "2"},
        {"type": "pageview", "anonymousId": "tablet", "occurredAt": t(11), "messageId": "3"},
    )
    resolve_identities(db, settings=SETTINGS)
    assert owners(db) == {"1": "bob", "2": "bob", "3": "bob"}
    send(db, {"type": "sign-in", "anonymousId": "tablet", "userId": "cat", "occurredAt": t(5), "messageId": "4"})
    resolve_identities(db, settings=SETTINGS)
    assert owners(db) == {"1": "cat", "2": "bob", "3": "cat", "4": "cat"}
    assert db.sql("SELECT count(*) FROM grouparoo.profiles").iloc[0, 0] == 2
