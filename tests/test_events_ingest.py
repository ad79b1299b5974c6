"""Ingestion loses nothing: every line read is stored, quarantined or a duplicate, on both engines.

Expected numbers come from how each input line was built (a known-good record, a known-bad
line), never from a run of the ingester.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import re
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import workbench as wb
from workbench.errors import ConfigError, DatabaseError, DataFileError
from workbench.events import ingest
from workbench.events.ingest import BOM
from workbench.events.settings import EventSettings
from workbench.events.simulate import simulate_stream

KEY = "test-web-key-0123"
SETTINGS = EventSettings(
    schema="grouparoo", api_keys={"web": KEY, "ios": "test-ios-key-4567"}, source="the test settings"
)


def table_rows(db, table: str) -> int:
    return int(db.sql(f"SELECT count(*) AS n FROM grouparoo.{table}").iloc[0, 0])


@pytest.fixture
def db(backend, request):
    url = backend.new_url(f"ingest_{re.sub(r'[^a-z0-9]+', '_', request.node.name.lower())[-45:]}")
    database = wb.connect(url, read_only=False)
    yield database
    database.dispose()


# ------------------------------------------------------------ lines with known fate

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12
)
good_records = st.fixed_dictionaries(
    {"type": texts.filter(lambda s: s.strip())},
    optional={
        "data": st.dictionaries(texts, st.one_of(texts, st.integers(-(10**6), 10**6), st.booleans()), max_size=3),
        "occurredAt": st.one_of(
            st.integers(0, 4_000_000_000_000),
            st.datetimes(datetime(1971, 1, 1), datetime(2100, 1, 1)).map(lambda d: d.isoformat() + "Z"),
        ),
    },
).flatmap(
    lambda r: st.one_of(
        st.just({**r, "userId": "u1"}),
        st.just({**r, "anonymousId": "a1"}),
        st.just({**r, "userId": 42, "anonymousId": "a2"}),
    )
)
bad_lines = st.one_of(
    st.just(b"not json at all"),
    st.just(b"[1, 2, 3]"),
    st.just(b'{"type": "x"}'),  # neither id
    st.just(b'{"anonymousId": "a"}'),  # no type
    st.just(b'{"type": "", "userId": "u"}'),
    st.just(b'{"type": "x", "userId": true}'),
    st.just(b'{"type": "x", "userId": "u", "data": {"nested": {"a": 1}}}'),
    st.just(b'{"type": "x", "userId": "u", "data": [1]}'),
    st.just(b'{"type": "x", "userId": "u", "occurredAt": "yesterday"}'),
    st.just(b'{"type": "x", "userId": "u", "occurredAt": 1e300}'),
    st.just(b'{"type": "x\\u0000", "userId": "u"}'),
    st.just(b'{"type": "x", "userId": "\\ud800"}'),
    st.just(b'{"type": "x", "userId": "u", "data": {"k": "\\u0000"}}'),
    st.just(b'{"type": "x", "anonymousId": "\xff\xfe"}'),
    # the reader drops a byte order mark opening the file: a first line blank without it is blank
    st.binary(min_size=1, max_size=20).filter(
        lambda b: (
            b.removeprefix(BOM).strip()
            and b"\n" not in b
            and b"\r" not in b
            and not b.removeprefix(BOM).lstrip().startswith(b"{")
        )
    ),
)
lines = st.lists(
    st.one_of(good_records.map(lambda r: ("good", r)), bad_lines.map(lambda b: ("bad", b))), min_size=1, max_size=25
)


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory):
    database = wb.connect(f"duckdb:///{tmp_path_factory.mktemp('hostile') / 'hostile.duckdb'}", read_only=False)
    yield database
    database.dispose()


@hyp_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(items=lines, batch_size=st.integers(1, 7))
def test_every_line_is_stored_or_quarantined_and_good_neighbours_survive(hostile_db, tmp_path, items, batch_size):
    payload = b"\n".join(json.dumps(r).encode() if kind == "good" else r for kind, r in items) + b"\n"
    before = table_rows(hostile_db, "events") if _store_exists(hostile_db) else 0
    quarantine = tmp_path / f"q-{datetime.now().timestamp()}.jsonl"
    counts = ingest(
        hostile_db,
        io.BytesIO(payload),
        KEY,
        format="jsonl",
        quarantine_file=quarantine,
        batch_size=batch_size,
        settings=SETTINGS,
    )
    good = [r for kind, r in items if kind == "good"]
    bad_numbers = [i for i, (kind, _) in enumerate(items, start=1) if kind == "bad"]
    assert (counts.received, counts.stored, counts.quarantined, counts.duplicates) == (
        len(items),
        len(good),
        len(bad_numbers),
        0,
    )
    assert table_rows(hostile_db, "events") - before == len(good)
    rejected = [json.loads(line) for line in quarantine.read_text().splitlines()] if bad_numbers else []
    assert [r["line"] for r in rejected] == bad_numbers
    assert all(r["reason"] for r in rejected)


def _store_exists(db) -> bool:
    return not db.sql(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = 'grouparoo' AND table_name = 'events'"
    ).empty


def test_values_are_stored_as_text_and_times_in_utc(db, tmp_path):
    records = [
        {
            "type": "purchase",
            "userId": 7,
            "occurredAt": "2026-03-01T10:00:00+02:00",
            "data": {"amount": 12.5, "paid": True, "note": "a,b", "gone": None},
        },
        {"type": "pageview", "anonymousId": "a-1", "occurredAt": 1767225600000, "data": {"path": "/"}},
        {"type": "pageview", "anonymousId": "a-2"},
    ]
    started = datetime.now(UTC).replace(tzinfo=None)
    counts = ingest(db, io.BytesIO("".join(json.dumps(r) + "\n" for r in records).encode()), KEY, settings=SETTINGS)
    finished = datetime.now(UTC).replace(tzinfo=None)
    assert (counts.received, counts.stored, counts.quarantined) == (3, 3, 0)
    events = db.sql(
        "SELECT id, type, user_id, anonymous_id, occurred_at, created_at, producer_id FROM grouparoo.events ORDER BY type DESC, anonymous_id"
    )
    assert events["user_id"].tolist()[0] == "7" and set(events["producer_id"]) == {"web"}
    assert events["occurred_at"].iloc[0] == datetime(2026, 3, 1, 8, 0)
    assert events["occurred_at"].iloc[1] == datetime(2026, 1, 1)  # 1767225600000 ms after 1970-01-01
    assert (
        started <= events["occurred_at"].iloc[2] <= finished
        and events["occurred_at"].iloc[2] == events["created_at"].iloc[2]
    )
    assert all(i.startswith("evt_") and len(i) == 40 and i[18] == "4" for i in events["id"])
    data = db.sql(
        "SELECT d.id, d.key, d.value FROM grouparoo.event_data d JOIN grouparoo.events e ON e.id = d.event_id WHERE e.type = 'purchase' ORDER BY d.key"
    )
    assert dict(zip(data["key"], data["value"])) == {"amount": "12.5", "note": "a,b", "paid": "true"}
    assert all(i.startswith("edt_") for i in data["id"])


def test_resending_a_file_stores_nothing_twice(db, tmp_path):
    stream = simulate_stream(30, seed=11)
    path = tmp_path / "stream.jsonl"
    head = b"".join(stream.json_lines().splitlines(keepends=True)[:7])
    path.write_bytes(stream.json_lines() + head)  # the head of the file sent twice in one go
    repeated = 7
    n = len(stream.events)
    first = ingest(db, path, KEY, batch_size=97, settings=SETTINGS)
    assert (first.received, first.stored, first.quarantined, first.duplicates) == (n + repeated, n, 0, repeated)
    again = ingest(db, path, KEY, batch_size=50, settings=SETTINGS)
    assert (again.received, again.stored, again.duplicates) == (n + repeated, 0, n + repeated)
    assert table_rows(db, "events") == n and table_rows(db, "event_data") == len(stream.data)
    other_producer = ingest(db, io.BytesIO(head), "test-ios-key-4567", settings=SETTINGS)
    assert other_producer.stored == repeated  # message ids are unique per producer


def fail_batch(monkeypatch, number: int, error: BaseException):
    """Make ingestion raise ``error`` when it stores batch ``number`` (from 1); returns the real
    batch writer (to put back)."""
    ingest_module = importlib.import_module("workbench.events.ingest")
    real, calls = ingest_module._store_batch, []

    def failing(*args):
        calls.append(1)
        if len(calls) == number:
            raise error
        return real(*args)

    monkeypatch.setattr(ingest_module, "_store_batch", failing)
    return real


def test_an_interrupted_ingestion_resumes_where_it_stopped(db, tmp_path, monkeypatch):
    ingest_module = importlib.import_module("workbench.events.ingest")

    stream = simulate_stream(30, seed=12)
    path = tmp_path / "stream.jsonl"
    path.write_bytes(stream.json_lines())
    real = fail_batch(monkeypatch, 3, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ingest(db, path, KEY, batch_size=40, settings=SETTINGS)
    assert table_rows(db, "events") == 80  # two whole batches, nothing of the third
    monkeypatch.setattr(ingest_module, "_store_batch", real)
    resumed = ingest(db, path, KEY, batch_size=40, settings=SETTINGS)
    assert (resumed.stored, resumed.duplicates) == (len(stream.events) - 80, 80)
    assert table_rows(db, "events") == len(stream.events) and table_rows(db, "event_data") == len(stream.data)


def test_csv_records_with_quoting_payload_columns_and_broken_rows(db, tmp_path):
    text = (
        "type,userId,anonymousId,occurredAt,messageId,data.path,data.note\n"
        'pageview,,a1,2026-01-02T03:04:05,m1,/home,"hello, world"\n'
        'pageview,,a1,2026-01-02T03:04:06,m2,/docs,"two\nlines"\n'
        "broken,row\n"
        ",u1,,,m3,/x,\n"
        "purchase,u1,,1767225600000,m4,,\n"
    )
    path = tmp_path / "events.csv"
    path.write_text(text)
    quarantine = tmp_path / "rejected.jsonl"
    counts = ingest(db, path, KEY, quarantine_file=quarantine, settings=SETTINGS)
    assert (counts.received, counts.stored, counts.quarantined) == (5, 3, 2)
    assert [json.loads(x)["line"] for x in quarantine.read_text().splitlines()] == [5, 6]
    data = db.sql(
        "SELECT e.message_id, d.key, d.value FROM grouparoo.events e JOIN grouparoo.event_data d ON d.event_id = e.id ORDER BY 1, 2"
    )
    assert list(data.itertuples(index=False, name=None)) == [
        ("m1", "note", "hello, world"),
        ("m1", "path", "/home"),
        ("m2", "note", "two\nlines"),
        ("m2", "path", "/docs"),
    ]


def test_unknown_producer_key_is_refused_before_reading(db):
    with pytest.raises(
        ConfigError, match=r"not an active key of the api_keys table nor one of the events.api_keys"
    ) as caught:
        ingest(db, io.BytesIO(b'{"type": "x", "userId": "u"}\n'), "not-a-known-key", settings=SETTINGS)
    assert "not-a-known-key" not in str(caught.value)


def test_cli_reads_stdin_and_never_prints_the_key(tmp_path, monkeypatch):
    from workbench.cli import app

    config = tmp_path / "workbench.yml"
    config.write_text(f"events:\n  api_keys:\n    web: {KEY}\n")
    monkeypatch.setenv("WORKBENCH_CONFIG", str(config))
    url = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    runner = CliRunner()
    lines = b'{"type": "a", "anonymousId": "x"}\n{oops\n{"type": "b", "userId": "u"}\n'
    result = runner.invoke(
        app,
        ["ingest", "events", "-", "--producer-key", KEY, "--database", url, "--quarantine", str(tmp_path / "q.jsonl")],
        input=lines,
    )
    assert result.exit_code == 0, result.output
    assert "received 3, stored 2, quarantined 1" in result.output
    refused = runner.invoke(
        app, ["ingest", "events", "-", "--producer-key", "wrong-key-999", "--database", url], input=lines
    )
    assert refused.exit_code == 1 and "wrong-key-999" not in refused.output and "Traceback" not in refused.output
    resolved = runner.invoke(app, ["identities", "resolve", "--database", url])
    assert resolved.exit_code == 0 and "associated 2 events" in resolved.output


def test_a_database_failure_says_what_was_kept_and_how_to_resume(db, tmp_path, monkeypatch):
    stream = simulate_stream(10, seed=13)
    fail_batch(monkeypatch, 2, DatabaseError("The database refused the batch."))
    with pytest.raises(
        DatabaseError, match=r"stopped after 30 events were stored in whole batches.*Send the same file again"
    ):
        ingest(db, io.BytesIO(stream.json_lines()), KEY, batch_size=30, settings=SETTINGS)
    assert table_rows(db, "events") == 30


def test_the_events_section_is_validated_and_keys_stay_secret(tmp_path):
    from workbench.events.settings import event_settings
    from workbench.redaction import redact

    config = tmp_path / "workbench.yml"
    config.write_text("events:\n  schema: tracking\n  api_keys:\n    web: secret-web-key-42\n")
    settings = event_settings(config)
    assert (settings.schema, settings.configured_producer("secret-web-key-42")) == ("tracking", "web")
    assert "secret-web-key-42" not in repr(settings) and redact("key secret-web-key-42") == "key ***"
    assert event_settings(tmp_path / "absent.yml").schema == "grouparoo"
    for body, message in [
        ("events:\n  schema: Bad-Name\n", "events.schema"),
        ("events:\n  shema: x\n", "unknown key"),
        ("events:\n  api_keys:\n    web: short\n", "at least 8"),
    ]:
        config.write_text(body)
        with pytest.raises(ConfigError, match=message) as caught:
            event_settings(config)
        assert str(config) in str(caught.value)


def test_a_malformed_first_line_does_not_turn_the_stream_into_csv(db):
    lines = b'garbage, not an event\n{"type": "a", "anonymousId": "x"}\n{"type": "b", "userId": "u"}\n'
    counts = ingest(db, io.BytesIO(lines), KEY, settings=SETTINGS)
    assert (counts.received, counts.stored, counts.quarantined) == (3, 2, 1)
    csv_counts = ingest(db, io.BytesIO(b'"type",userId\npageview,u9\n'), KEY, settings=SETTINGS)
    assert (csv_counts.received, csv_counts.stored) == (1, 1)


def test_events_without_message_id_get_the_documented_derived_id(db, tmp_path):
    lines = [
        {"type": "page", "anonymousId": "a1", "occurredAt": "2026-10-01T12:00:00Z", "data": {"path": "/", "n": 2}},
        {"type": "page", "anonymousId": "a1", "occurredAt": "2026-10-01T12:00:00Z", "data": {"path": "/", "n": 2}},
        {"type": "click", "userId": 7, "messageId": "m-1"},
    ]
    path = tmp_path / "derived.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    counts = ingest(db, path, KEY, settings=SETTINGS)
    assert (counts.stored, counts.duplicates) == (3, 0)  # identical lines 1 and 2 are two events
    ids = db.sql("SELECT id, message_id FROM grouparoo.events ORDER BY id")
    # docs/events.md: evt_ + UUIDv5(namespace, [producer, source name, line, SHA-256 of [type, userId, anonymousId,
    # occurredAt, data pairs]]), computed here from that sentence
    namespace = importlib.import_module("workbench.events.ingest").EVENT_ID_NAMESPACE
    content = json.dumps(["page", None, "a1", "2026-10-01T12:00:00", [["path", "/"], ["n", "2"]]]).encode()
    expected = {
        f"evt_{uuid.uuid5(namespace, json.dumps(['web', 'derived.jsonl', line, hashlib.sha256(content).hexdigest()]))}"
        for line in (1, 2)
    }
    assert set(ids.loc[ids["message_id"].isna(), "id"]) == expected
    (tmp_path / "elsewhere").mkdir()
    moved = tmp_path / "elsewhere" / "derived.jsonl"  # the same file name in another folder: the same source
    moved.write_bytes(path.read_bytes())
    again = ingest(db, moved, KEY, settings=SETTINGS)
    assert (again.stored, again.duplicates) == (0, 3)
    renamed = ingest(db, moved, KEY, source_name="derived-2026-10-02.jsonl", settings=SETTINGS)
    assert (renamed.stored, renamed.duplicates) == (2, 1)  # another source name: new events, the messageId still known
    for bad in ("", "a\x00b", "x" * 256):
        with pytest.raises(DataFileError, match="source_name must be 1 to 255 bytes"):
            ingest(db, moved, KEY, source_name=bad, settings=SETTINGS)


def test_csv_resume_keeps_the_header_and_the_line_numbers(db, tmp_path, monkeypatch):
    ingest_module = importlib.import_module("workbench.events.ingest")
    rows = ["type,userId,data.note"]
    for i in range(1, 41):
        rows.append(
            f'page,u{i},"two\nlines {i}"' if i % 10 == 0 else ("broken,row" if i % 7 == 0 else f"page,u{i},n{i}")
        )
    path = tmp_path / "events.csv"
    path.write_text("\n".join(rows) + "\n")
    real = fail_batch(monkeypatch, 3, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ingest(db, path, KEY, batch_size=8, quarantine_file=tmp_path / "q1.jsonl", settings=SETTINGS)
    monkeypatch.setattr(ingest_module, "_store_batch", real)
    assert table_rows(db, "events") == 16
    resumed = ingest(db, path, KEY, batch_size=8, resume=True, quarantine_file=tmp_path / "q2.jsonl", settings=SETTINGS)
    # the 16th stored record is u18 (u7 and u14 broken) on physical line 20 (u10's record spans lines 11-12);
    # after it, the broken u21, u28 and u35 start on lines 24, 31 and 39 (u20 and u30 span two lines each)
    assert (resumed.resumed_after, resumed.received, resumed.stored, resumed.quarantined) == (20, 22, 19, 3)
    assert [json.loads(x)["line"] for x in (tmp_path / "q2.jsonl").read_text().splitlines()] == [24, 31, 39]
    stored = db.sql("SELECT user_id FROM grouparoo.events", limit=None)["user_id"]
    assert sorted(stored) == sorted(f"u{i}" for i in range(1, 41) if i % 7)
    assert set(db.sql("SELECT value FROM grouparoo.event_data WHERE value LIKE 'two%'")["value"]) == {
        f"two\nlines {i}" for i in (10, 20, 30, 40)
    }
