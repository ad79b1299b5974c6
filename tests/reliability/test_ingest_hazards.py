"""Ingestion hazards (issue 17, items 5, 7 and 8): oversized fields, records the database refuses,
re-sending after a crash, ``--resume``, NUL bytes, a byte order mark, numbers out of range and empty
files, each on DuckDB and PostgreSQL.

Expected figures come from how each input line was built; crashes are real (SIGKILL of the
``workbench`` CLI in the middle of a run).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import workbench as wb
from workbench.errors import DataFileError
from workbench.events import ingest
from workbench.events.settings import EventSettings, FieldLimits
from workbench.events.statements import event_tables

pytestmark = pytest.mark.reliability

WORKBENCH = str(Path(sys.executable).with_name("workbench"))
KEY = "k-hazards-5d1e9a7c30"
SETTINGS = EventSettings(schema="grouparoo", api_keys={"web": KEY}, source="the test settings")
LIMITS = FieldLimits()


def fresh_db(backend, label: str) -> wb.Database:
    return wb.connect(backend.new_url(f"hazards_{label}"), read_only=False)


def count(db, table: str = "events") -> int:
    return int(db.sql(f"SELECT count(*) AS n FROM grouparoo.{table}").iloc[0, 0])


def quarantined(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def incompressible(n: int, seed: int) -> str:
    """``n`` random hex characters: PostgreSQL cannot compress them into an index entry."""
    return random.Random(seed).randbytes(n // 2).hex()


def good_line(i: int, **extra) -> str:
    return json.dumps({"type": "page", "userId": f"u-{i % 97}", "messageId": f"m-{i}", "data": {"seq": i}, **extra})


# --- field size limits ----------------------------------------------------------------------------
def test_oversized_fields_are_quarantined_with_their_reason_and_the_rest_commit(backend, tmp_path, ledger):
    db = fresh_db(backend, "oversized")
    big = incompressible(10_240, seed=1)
    planted = {
        "messageId": {"type": "page", "userId": "u", "messageId": big},
        "type": {"type": big, "userId": "u"},
        "userId": {"type": "page", "userId": big},
        "anonymousId": {"type": "page", "anonymousId": big},
        "a data key": {"type": "page", "userId": "u", "data": {incompressible(300, seed=2): 1}},
        "the record": {"type": "page", "userId": "u", "data": {"blob": incompressible(40_000, seed=3)}},
    }
    lines = [good_line(i) for i in range(200)]
    positions = {}
    for n, (what, record) in enumerate(planted.items()):
        positions[what] = 1 + 30 * n + n  # spread through the file, 1-based line numbers after insertion
        lines.insert(positions[what] - 1, json.dumps(record))
    path = tmp_path / "oversized.jsonl"
    path.write_text("\n".join(lines) + "\n")
    first = ingest(db, path, KEY, batch_size=50, quarantine_file=tmp_path / "q1.jsonl", settings=SETTINGS)
    again = ingest(db, path, KEY, batch_size=50, quarantine_file=tmp_path / "q2.jsonl", settings=SETTINGS)
    assert (first.received, first.stored, first.quarantined, first.duplicates) == (206, 200, 6, 0)
    assert (again.received, again.stored, again.quarantined, again.duplicates) == (206, 0, 6, 200)
    assert count(db) == 200 and count(db, "event_data") == 200
    reasons = {r["line"]: r["reason"] for r in quarantined(tmp_path / "q1.jsonl")}
    assert set(reasons) == set(positions.values())
    for what, line in positions.items():
        limit = LIMITS.record_bytes if what == "the record" else 255
        assert reasons[line].startswith(what) and f"over the limit of {limit:,} bytes" in reasons[line], reasons[line]
    assert all(r["file"] == str(path) for r in quarantined(tmp_path / "q1.jsonl"))
    db.dispose()
    ledger(
        "Ingestion",
        f"{backend.name}: 200 good events and 6 oversized records (10 KB random messageId, type, userId, anonymousId; "
        "a 300-byte data key; a 40 KB record), batches of 50, then the same file again",
        "200 stored, the 6 quarantined with reasons naming the field and its limit (255 bytes; 32,768 per record) "
        "and file and line; the re-send stored 0 (200 duplicates, 6 quarantined again)",
    )


# --- a record the database refuses ----------------------------------------------------------------
def test_a_record_the_database_refuses_is_bisected_out_and_quarantined(backend, tmp_path, monkeypatch, ledger):
    ingest_module = importlib.import_module("workbench.events.ingest")
    db = fresh_db(backend, "refused")
    # the database itself refuses some records: a CHECK constraint on the events table, on both engines
    events = event_tables("grouparoo")["events"].create_statement()
    with db.transaction() as conn:
        conn.execute(sa.text("CREATE SCHEMA grouparoo"))
        conn.execute(sa.text(events.replace("type TEXT NOT NULL", "type TEXT NOT NULL CHECK (type <> 'forbidden')")))
    lines = [good_line(i) for i in range(1000)]
    refused_lines = [17, 18, 400, 999]
    for n in refused_lines:
        lines[n - 1] = json.dumps({"type": "forbidden", "userId": "u", "messageId": f"f-{n}"})
    path = tmp_path / "refused.jsonl"
    path.write_text("\n".join(lines) + "\n")
    real, transactions = ingest_module._store_batch, []

    def counted(*args):
        transactions.append(len(args[2]))
        return real(*args)

    monkeypatch.setattr(ingest_module, "_store_batch", counted)
    counts = ingest(db, path, KEY, batch_size=250, quarantine_file=tmp_path / "q.jsonl", settings=SETTINGS)
    monkeypatch.setattr(ingest_module, "_store_batch", real)
    assert (counts.received, counts.stored, counts.quarantined, counts.duplicates) == (1000, 996, 4, 0)
    stored = set(db.sql("SELECT message_id FROM grouparoo.events", limit=None)["message_id"])
    assert stored == {f"m-{i}" for i in range(1000)} - {f"m-{n - 1}" for n in refused_lines}
    rejected = quarantined(tmp_path / "q.jsonl")
    assert [r["line"] for r in rejected] == refused_lines
    assert all(r["reason"].startswith("the database refused it: ") for r in rejected)
    assert all(re.search(r"check|constraint", r["reason"], re.IGNORECASE) for r in rejected), rejected[0]
    resumed = ingest(db, path, KEY, batch_size=250, resume=True, settings=SETTINGS)
    assert (resumed.resumed_after, resumed.received) == (1000, 0)  # the progress reached the end of the file
    # the probe with the field limits lifted: a 10 KB random messageId among 200 good events
    lifted = EventSettings(schema="grouparoo", api_keys={"web": KEY}, limits=FieldLimits(id_bytes=1_000_000))
    probe = [good_line(i + 5000) for i in range(200)]
    probe.insert(100, json.dumps({"type": "page", "userId": "u", "messageId": incompressible(10_240, seed=4)}))
    (tmp_path / "probe.jsonl").write_text("\n".join(probe) + "\n")
    raw = ingest(db, tmp_path / "probe.jsonl", KEY, quarantine_file=tmp_path / "q-probe.jsonl", settings=lifted)
    probe_reasons = [r["reason"] for r in quarantined(tmp_path / "q-probe.jsonl")]
    if backend.name == "postgresql":  # PostgreSQL's B-tree refuses an entry that large; DuckDB stores it
        assert (raw.stored, raw.quarantined) == (200, 1) and "index row" in probe_reasons[0], probe_reasons
    else:
        assert (raw.stored, raw.quarantined) == (201, 0)
    db.dispose()
    ledger(
        "Ingestion",
        f"{backend.name}: 1,000 events in batches of 250, 4 of them (lines 17, 18, 400, 999) refused by the database "
        "(a CHECK constraint on events); then the issue's probe, field limits lifted: 200 events + one 10 KB random messageId",
        f"996 stored, the 4 found by bisecting the failing batches ({len(transactions)} transactions in all) and quarantined "
        f"with the database's reason and their line; --resume then read 0 lines; the probe: {raw.stored} stored, "
        f"{raw.quarantined} quarantined"
        + (f" ({probe_reasons[0][:60]}…)" if probe_reasons else " (DuckDB has no entry size limit)"),
    )


# --- crashes, re-sending and --resume -----------------------------------------------------------
def crash_file(path: Path, lines: int = 30_000) -> dict:
    """Events without messageId (``data.seq`` numbers each line), every 100th line malformed, and
    50 byte-identical heartbeat lines (distinct events: they are on different lines)."""
    out, good, bad = [], [], set()
    for n in range(1, lines + 1):
        if n % 100 == 0:
            out.append("{broken")
            bad.add(n)
        elif n % 600 == 1:
            out.append(json.dumps({"type": "heartbeat", "anonymousId": "device-1"}))
            good.append(("heartbeat", None))
        else:
            out.append(json.dumps({"type": "page", "anonymousId": f"a-{n % 311}", "data": {"seq": n}}))
            good.append(("page", str(n)))
    path.write_text("\n".join(out) + "\n")
    return {"lines": lines, "good": good, "bad": bad}


def cli_env(tmp_path: Path, url: str) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "workbench.yml").write_text(f'events:\n  api_keys:\n    web: "{KEY}"\n')
    return {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DATABASE_URL": url, "WORKBENCH_EVENTS_API_KEY": KEY}


def killed_mid_run(command: list[str], env: dict, quarantine: Path, after_line: int) -> None:
    """Run ``command`` and SIGKILL it once its quarantine file (synced before every commit) passes ``after_line``."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(r["line"] > after_line for r in quarantined_tail(quarantine)):
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()


def quarantined_tail(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # the last line half-written
            out.append(json.loads(line))
    return out


def stored_events(url: str) -> list[tuple]:
    db = wb.connect(url)
    rows = db.sql(
        "SELECT e.type, d.value FROM grouparoo.events e LEFT JOIN grouparoo.event_data d ON d.event_id = e.id",
        limit=None,
    )
    db.dispose()
    return sorted((t, None if v is None or v != v else v) for t, v in rows.itertuples(index=False))


def counts_line(stdout: str) -> dict[str, int]:
    match = re.search(r"received ([\d,]+), stored ([\d,]+), quarantined ([\d,]+).*, duplicates ([\d,]+)", stdout)
    assert match, stdout
    names = ("received", "stored", "quarantined", "duplicates")
    return dict(zip(names, (int(g.replace(",", "")) for g in match.groups())))


@pytest.mark.parametrize("how", ["resend", "resume"])
def test_resending_after_a_crash_stores_events_without_message_id_once(backend, tmp_path, how, ledger):
    url = backend.new_url(f"hazards_crash_{how}")
    env = cli_env(tmp_path, url)
    source = crash_file(tmp_path / "events.jsonl")
    command = [WORKBENCH, "ingest", "events", str(tmp_path / "events.jsonl"), "--batch-size", "1000"]
    killed_mid_run([*command, "--quarantine", str(tmp_path / "q1.jsonl")], env, tmp_path / "q1.jsonl", 8000)
    kept = len(stored_events(url))
    db = wb.connect(url)
    committed = db.sql("SELECT max(line) AS line FROM grouparoo.ingest_progress").iloc[0, 0]
    db.dispose()
    assert 0 < kept < len(source["good"]) and 0 < committed < source["lines"]
    again = subprocess.run(
        [*command, "--quarantine", str(tmp_path / "q2.jsonl"), *(["--resume"] if how == "resume" else [])],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    counts = counts_line(again.stdout)
    expected = sorted(source["good"])
    assert stored_events(url) == expected  # every good line exactly once, the 50 identical heartbeats included
    after = int(committed) if how == "resume" else 0
    assert counts == {
        "received": source["lines"] - after,
        "stored": len(expected) - kept,
        "quarantined": len([n for n in source["bad"] if n > after]),
        "duplicates": 0 if how == "resume" else kept,
    }
    if how == "resume":
        assert f"resumed after line {after:,}" in again.stdout
    ledger(
        "Ingestion",
        f"{backend.name}: `workbench ingest events` of {source['lines']:,} lines without messageId ({len(source['bad'])} "
        f"malformed, 50 byte-identical heartbeats) SIGKILLed mid-run, then "
        + ("the same file again" if how == "resend" else "the same file with --resume"),
        f"{kept:,} events kept by the killed run; the second run stored {counts['stored']:,} more"
        + (
            f" ({counts['duplicates']:,} recognised as duplicates)"
            if how == "resend"
            else f" reading only the {counts['received']:,} lines after line {after:,}, 0 duplicates"
        )
        + f": {len(expected):,} events = the file's good lines exactly, none twice, the 50 heartbeats all kept",
    )


def test_resume_continues_an_appended_file_and_refuses_a_changed_one(backend, tmp_path, ledger):
    db = fresh_db(backend, "resume")
    path = tmp_path / "growing.jsonl"
    lines = [json.dumps({"type": "page", "anonymousId": f"a-{i}"}) for i in range(300)]
    path.write_text("\n".join(lines) + "\n")
    first = ingest(db, path, KEY, batch_size=64, settings=SETTINGS)
    with path.open("a") as f:
        f.write("\n".join(json.dumps({"type": "click", "userId": f"u-{i}"}) for i in range(120)) + "\n")
    appended = ingest(db, path, KEY, batch_size=64, resume=True, settings=SETTINGS)
    assert (first.stored, appended.resumed_after, appended.received, appended.stored) == (300, 300, 120, 120)
    changed = path.read_text().replace('"a-7"', '"a-7-fixed"', 1)
    path.write_text(changed)
    with pytest.raises(DataFileError) as refused:
        ingest(db, path, KEY, resume=True, settings=SETTINGS)
    message = str(refused.value)
    assert message.count(". ") == 0 and "changed since its first 420 lines" in message and "without --resume" in message
    resent = ingest(db, path, KEY, settings=SETTINGS)
    assert (resent.received, resent.stored, resent.duplicates) == (420, 1, 419)  # only the changed line is new
    with pytest.raises(DataFileError, match="needs a name"):
        ingest(db, io.BytesIO(b"\n".join(x.encode() for x in lines)), KEY, resume=True, settings=SETTINGS)
    named = ingest(db, io.BytesIO(path.read_bytes()), KEY, source_name="growing.jsonl", resume=True, settings=SETTINGS)
    assert (named.resumed_after, named.received) == (420, 0)
    assert count(db) == 421
    db.dispose()
    ledger(
        "Ingestion",
        f"{backend.name}: --resume after 300 lines were stored and 120 appended; then one early line changed and --resume again; "
        "then the changed file sent again; stdin-like stream with and without --source-name",
        "the append: 120 lines read, 120 stored; the changed file: refused in one sentence (its first 420 lines no longer match, "
        "send again without --resume); the re-send stored only the changed line (419 duplicates); a stream needs a name to resume",
    )


# --- NUL bytes, byte order marks, numbers out of range, empty files -----------------------------------
def test_nul_bom_numbers_and_empty_files_are_handled_alike_on_both_engines(backend, tmp_path, ledger):
    db = fresh_db(backend, "edges")
    bom = b"\xef\xbb\xbf"
    json_lines = [
        (b'{"type": "page", "userId": "bom-line"}', "stored"),  # after the BOM
        (b'{"type": "pa\x00ge", "userId": "u"}', "NUL byte"),
        (b'{"type": "page", "userId": "u\\u0000"}', "NUL character"),
        (b'{"type": "page", "userId": "u", "data": {"k\\u0000": 1}}', "NUL character"),
        (b'{"type": "page", "userId": "u", "data": {"x": Infinity}}', "not valid JSON"),
        (b'{"type": "page", "userId": "u", "data": {"x": NaN}}', "not valid JSON"),
        (b'{"type": "page", "userId": "u", "data": {"x": 1e400}}', "not valid JSON"),
        (b'{"type": "page", "userId": "u", "occurredAt": 1e30}', "occurredAt"),
        (b'{"type": "page", "userId": "u", "occurredAt": "inf"}', "occurredAt"),
        (b'{"type": "page", "userId": ' + str(10**300).encode() + b"}", "userId is 301 bytes"),
        (b'{"type": "page", "userId": ' + str(2**70).encode() + b', "data": {"n": 18446744073709551617}}', "stored"),
    ]
    path = tmp_path / "edges.jsonl"
    path.write_bytes(bom + b"\n".join(line for line, _ in json_lines) + b"\n")
    counts = ingest(db, path, KEY, quarantine_file=tmp_path / "q.jsonl", settings=SETTINGS)
    expected_bad = {n: fate for n, (_, fate) in enumerate(json_lines, start=1) if fate != "stored"}
    assert (counts.received, counts.stored, counts.quarantined) == (len(json_lines), 2, len(expected_bad))
    reasons = {r["line"]: r["reason"] for r in quarantined(tmp_path / "q.jsonl")}
    assert set(reasons) == set(expected_bad) and all(expected_bad[n] in reasons[n] for n in reasons), reasons
    users = set(db.sql("SELECT user_id FROM grouparoo.events", limit=None)["user_id"])
    assert users == {"bom-line", str(2**70)}
    assert set(db.sql("SELECT value FROM grouparoo.event_data")["value"]) == {"18446744073709551617"}
    # CSV: a BOM before the header, a NUL in a cell, and a NUL in the header
    csv_path = tmp_path / "edges.csv"
    csv_path.write_bytes(bom + b"type,userId,data.note\npage,csv-1,ok\npage,csv-2,n\x00l\npage,csv-3,fine\n")
    csv_counts = ingest(db, csv_path, KEY, quarantine_file=tmp_path / "q-csv.jsonl", settings=SETTINGS)
    assert (csv_counts.received, csv_counts.stored, csv_counts.quarantined) == (3, 2, 1)
    csv_reasons = quarantined(tmp_path / "q-csv.jsonl")
    assert csv_reasons[0]["line"] == 3 and "NUL byte" in csv_reasons[0]["reason"]
    assert csv_reasons[0]["file"] == str(csv_path)
    (tmp_path / "header.csv").write_bytes(b"type,userId,data.n\x00te\npage,csv-9,x\n")
    with pytest.raises(DataFileError) as header_error:
        ingest(db, tmp_path / "header.csv", KEY, settings=SETTINGS)
    assert "header.csv line 1" in str(header_error.value) and "NUL" in str(header_error.value)
    before = count(db)
    # empty inputs through the CLI: one line, exit 0, no traceback
    env = cli_env(tmp_path, backend.new_url("hazards_edges_cli"))
    outputs = {}
    for label, content in (
        ("empty", b""),
        ("bom-only", bom),
        ("blank", b"\n\n  \n"),
        ("bom-csv-header", bom + b"type,userId\n"),
    ):
        file = tmp_path / f"{label}.{'csv' if 'csv' in label else 'jsonl'}"
        file.write_bytes(content)
        run = subprocess.run(
            [WORKBENCH, "ingest", "events", str(file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        outputs[label] = run.stdout.strip()
        assert run.returncode == 0 and "Traceback" not in run.stdout + run.stderr and not run.stderr.strip(), run.stderr
        assert len(run.stdout.strip().splitlines()) == 1 and "received 0, stored 0" in run.stdout, run.stdout
    assert count(db) == before == 4
    db.dispose()
    ledger(
        "Ingestion",
        f"{backend.name}: a UTF-8 BOM before JSON lines and before a CSV header; NUL as a raw byte, a \\u0000 escape (value and key), "
        "a CSV cell and a CSV header; Infinity, NaN, 1e400; occurredAt 1e30 and 'inf'; a 301-digit userId; 2^70 and 2^64+1; "
        "empty, BOM-only, blank-only and header-only files through the CLI",
        f"line 1 after a BOM stored (JSON and CSV); {len(expected_bad)} JSON lines and 1 CSV record quarantined with file, line and "
        "reason (NUL byte / NUL character / not valid JSON / occurredAt / userId is 301 bytes); the NUL header refused in one "
        "sentence naming file and line 1; 2^70 and 2^64+1 stored exactly as text; the 4 empty inputs: exit 0, one line "
        "'received 0, stored 0 …', no traceback",
    )
