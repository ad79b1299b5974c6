"""Read-only analysis (issue 9): every analysis entry point works through read-only sessions, and a
write attempted through each session it used fails, on DuckDB and PostgreSQL; only the loaders,
the generator and ingestion open writable sessions (an AST audit of ``workbench/`` against an
allow-list, and the sessions the commands actually open)."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from connect_audit import audit_entries, audit_env
from typer.testing import CliRunner

import workbench as wb
from support.generated_project import SETUP, experiment_entry
from workbench.db import connection
from workbench.errors import DatabaseError
from workbench.toolkit import magics

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "workbench"
WORKBENCH = str(Path(sys.executable).with_name("workbench"))
KEY = "ro-producer-key-1234"
CONFIG = (
    SETUP
    + "experiments:\n"
    + experiment_entry("price-display")
    + f"""events:
  api_keys:
    web: {KEY}
  properties:
    purchases: {{type: purchase, aggregate: count}}
"""
)
EVENTS = b"".join(
    json.dumps(r).encode() + b"\n"
    for r in (
        {
            "type": "page_view",
            "userId": "u1",
            "messageId": "m1",
            "occurredAt": "2026-10-01T10:00:00Z",
            "data": {"path": "/"},
        },
        {
            "type": "purchase",
            "anonymousId": "a1",
            "messageId": "m2",
            "occurredAt": "2026-10-01T10:05:00Z",
            "data": {"amount": "3"},
        },
        {
            "type": "purchase",
            "userId": "u1",
            "anonymousId": "a1",
            "messageId": "m3",
            "occurredAt": "2026-10-02T10:05:00Z",
        },
    )
)
# one attempted write of each kind; every table named exists, so only the session's mode stops them
WRITES = {
    "CREATE TABLE": "CREATE TABLE wb_write_probe AS SELECT 1 AS x",
    "INSERT": "INSERT INTO orders SELECT * FROM orders",
    "UPDATE": "UPDATE orders SET amount = amount + 1",
    "DELETE": "DELETE FROM experiment_viewed",
    "DROP TABLE": "DROP TABLE sessions",
    "ALTER TABLE": "ALTER TABLE pages ADD COLUMN wb_probe INTEGER",
    "CREATE SCHEMA": "CREATE SCHEMA wb_probe_schema",
    "TRUNCATE": "TRUNCATE grouparoo.events",
}
# (module, function) of every place in workbench/ that opens a writable session, and why
WRITERS = {
    ("workbench/cli/data.py", "load_growthbook_sample_command"): "loader",
    ("workbench/cli/generate.py", "generate_command"): "generator",
    ("workbench/cli/study.py", "generate_command"): "the study's generator",
    ("workbench/cli/events.py", "ingest_events_command"): "ingestion",
    ("workbench/cli/events.py", "resolve_identities_command"): "ingestion (identity resolution)",
    ("workbench/cli/event_service.py", "create_key_command"): "the event service (API keys)",
    ("workbench/cli/event_service.py", "list_keys_command"): "the event service (creates the key table)",
    ("workbench/cli/event_service.py", "revoke_key_command"): "the event service (API keys)",
    ("workbench/cli/event_service.py", "serve_command"): "the event service (ingestion over HTTP)",
    ("workbench/cli/event_service.py", "resolve_command"): "the event service (identity resolution)",
    # incremental refresh: writes only its state (DuckDB: a state file beside the database, which is
    # attached read-only; PostgreSQL: the schema state_schema)
    ("workbench/db/connection.py", "connect_state"): "incremental refresh (its state only)",
}
# the helpers that pass their caller's mode on (the CLI's, connect()'s for Spark); their callers are audited instead
PASS_THROUGH = {("workbench/cli/app.py", "opened_database"), ("workbench/db/spark.py", "open_spark")}
# where engines may be created at all: everything else goes through connect()
ENGINE_MAKERS = {"workbench/db/connection.py", "tests/support/pg_server.py"}


# ------------------------------------------------------------------ the audit of the source
def _calls(tree: ast.AST):
    """(call, enclosing function name) for every call in ``tree``."""

    def walk(node, function):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Call):
                yield child, function
            yield from walk(child, name)

    yield from walk(tree, "<module>")


def _called_name(call: ast.Call) -> str:
    func = call.func
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def source_audit() -> tuple[dict, list, list, int]:
    """Writable call sites, engine makers outside ENGINE_MAKERS, and text that switches a
    PostgreSQL session to read-write, over every module of the package."""
    writable, engines, switches, modules = {}, [], [], 0
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules += 1
        for call, function in _calls(tree):
            for keyword in call.keywords:
                if keyword.arg == "read_only" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is True
                ):
                    writable[(rel, function)] = ast.unparse(call)
            name = _called_name(call)
            makes_engine = name.split(".")[-1] in ("create_engine", "create_async_engine") or name in (
                "duckdb.connect",
                "psycopg.connect",
            )
            if makes_engine and rel not in ENGINE_MAKERS:
                engines.append((rel, function, ast.unparse(call)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and rel != "workbench/db/connection.py":
                low = node.value.lower()
                if "default_transaction_read_only" in low or "read write" in low or "access_mode" in low:
                    switches.append((rel, node.value[:80]))
    return writable, engines, switches, modules


def test_only_loaders_the_generator_and_ingestion_ask_for_writable_sessions(ledger):
    writable, engines, switches, modules = source_audit()
    assert set(writable) == set(WRITERS) | PASS_THROUGH, sorted(set(writable) ^ (set(WRITERS) | PASS_THROUGH))
    assert all("read_only=False" in text for site, text in writable.items() if site in WRITERS)
    assert writable[("workbench/cli/app.py", "opened_database")] == "connect(url, read_only=read_only)"
    assert not engines, engines  # no engine or driver connection that bypasses connect()'s read-only default
    assert not switches, switches  # no SQL that turns a session read-write
    ledger(
        "Read-only",
        f"AST audit of every `read_only=` argument, engine/driver connection and read-write SQL text in "
        f"{modules} modules of workbench/",
        f"writable sessions asked for at exactly {len(WRITERS)} call sites (load, generate, study generate, ingest events, "
        "identities resolve, the event service's keys create/list/revoke, serve and resolve, and the incremental-refresh state session); no engine or driver connection made outside connection.py and pg_server.py; no read-write SQL",
    )


# ------------------------------------------------------------------ behaviour on both engines
@pytest.fixture(scope="module")
def project(backend, tmp_path_factory):
    """A database with generated experiment data, the study and a few ingested events, written
    through writable sessions; the config names it as the project's database."""
    from workbench.events import ingest
    from workbench.events.identities import resolve_identities
    from workbench.events.settings import event_settings
    from workbench.generator import generate
    from workbench.studies.ytdpnl import generate_study

    tmp = tmp_path_factory.mktemp(f"read-only-{backend.name}")
    config = tmp / "workbench.yml"
    config.write_text(CONFIG, encoding="utf-8")
    url = backend.new_url("read_only_data")
    writer = wb.connect(url, read_only=False)
    generate(writer, users=600, seed=4)
    generate_study(writer, "tiny", seed=1, schema="ytdpnl")
    ingest(
        writer,
        io.BytesIO(EVENTS),
        KEY,
        format="jsonl",
        quarantine_file=tmp / "q.jsonl",
        settings=event_settings(config),
    )
    resolve_identities(writer)
    writer.dispose()
    saved = {k: os.environ.get(k) for k in ("WORKBENCH_CONFIG", "WORKBENCH_DATABASE_URL")}
    os.environ.update(WORKBENCH_CONFIG=str(config), WORKBENCH_DATABASE_URL=url)
    yield {"url": url, "config": config, "tmp": tmp, "backend": backend}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def table_counts(url: str) -> dict[str, int]:
    """Rows per table, from a connection of its own."""
    db = wb.connect(url)
    tables = ("orders", "experiment_viewed", "sessions", "pages", "grouparoo.events")
    counts = {t: int(db.sql(f"SELECT count(*) AS n FROM {t}").iloc[0, 0]) for t in tables}
    counts["pages columns"] = len(db.sql("SELECT * FROM pages LIMIT 1").columns)
    db.dispose()
    return counts


def refused_writes(db) -> dict[str, str]:
    """Each write of WRITES attempted through ``db``: the error sentence it raised."""
    refused = {}
    for kind, statement in WRITES.items():
        with pytest.raises(DatabaseError) as caught:
            db.sql(statement)
        refused[kind] = str(caught.value)
    return refused


@pytest.fixture
def opened(monkeypatch):
    """Every Database that ``connect()`` returns while the test runs."""
    sessions = []
    original = connection.connect

    def spy(*args, **kwargs):
        db = original(*args, **kwargs)
        sessions.append(db)
        return db

    for module, name in ((connection, "connect"), (wb, "connect"), (magics, "connect")):
        monkeypatch.setattr(module, name, spy)
    return sessions


def own_session_entry_points(project) -> dict:
    """Entry points that open the project's database themselves when not given one."""
    from workbench.experiments.analysis import analyze
    from workbench.experiments.discovery import discover_experiments
    from workbench.experiments.engine import (
        experiment,
        health_facts,
        sufficient_stats,
        unit_metrics,
    )
    from workbench.reports.data import report_data
    from workbench.toolkit.magics import SqlMagic

    class Shell:
        def __init__(self) -> None:
            self.user_ns: dict = {}

    return {
        "analyze": lambda: analyze("price-display"),
        "sufficient_stats": lambda: sufficient_stats(experiment("price-display"), "browser"),
        "unit_metrics": lambda: unit_metrics(experiment("price-display")),
        "health_facts": lambda: health_facts(experiment("price-display")),
        "discover_experiments": lambda: discover_experiments(),
        "report_data (reports, dashboard refresh)": lambda: report_data("price-display"),
        "%%sql magic": lambda: SqlMagic(Shell()).database(None).sql("SELECT count(*) AS n FROM orders"),
    }


def test_entry_points_that_open_their_own_session_cannot_write(project, opened, ledger):
    before = table_counts(project["url"])
    entry_points = own_session_entry_points(project)
    refusals = 0
    for name, call in entry_points.items():
        del opened[:]
        result = call()
        assert result is not None, name
        assert opened and all(db.read_only for db in opened), name
        for db in opened:
            refused = refused_writes(db)
            assert all("read-only" in message for message in refused.values()), (name, refused)
            refusals += len(refused)
            db.dispose()
    assert table_counts(project["url"]) == before  # nothing changed, counted on a session of its own
    ledger(
        "Read-only",
        f"{len(WRITES)} kinds of write (CREATE/INSERT/UPDATE/DELETE/DROP/ALTER/CREATE SCHEMA/TRUNCATE) through the "
        f"session each of {len(entry_points)} entry points opened itself (analyze, sufficient_stats, unit_metrics, health_facts, "
        f"discover_experiments, report_data, %%sql) on {project['backend'].name}",
        f"{refusals} writes refused with the read-only sentence; row counts of 5 tables and the columns of pages unchanged",
    )


def caller_session_entry_points(project) -> dict:
    """Entry points that run on the session their caller gives (notebooks give ``wb.connect()``)."""
    from workbench.events import explore
    from workbench.events.properties import profile_properties
    from workbench.events.settings import event_settings
    from workbench.studies import ytdpnl
    from workbench.studies.ytdpnl.sanity_checks import sanity_checks
    from workbench.toolkit import Toolkit

    settings = event_settings(project["config"])
    return {
        "toolkit event_counts": lambda db: Toolkit(db).event_counts(by="day"),
        "toolkit funnel": lambda db: Toolkit(db).funnel(["/", "/checkout"], within="1h"),
        "toolkit retention": lambda db: Toolkit(db).retention(cohort="week", periods=2),
        "study participants": lambda db: ytdpnl.participants(db, schema="ytdpnl"),
        "study daily_activity": lambda db: ytdpnl.daily_activity(db, schema="ytdpnl"),
        "study transition_audit": lambda db: ytdpnl.transition_audit(db, schema="ytdpnl"),
        "study home_page_comparison": lambda db: ytdpnl.home_page_comparison(db, schema="ytdpnl"),
        "study channel_positions": lambda db: ytdpnl.channel_positions(db, schema="ytdpnl"),
        "study pool_channels": lambda db: ytdpnl.pool_channels(db, schema="ytdpnl"),
        "study sanity_checks": lambda db: sanity_checks(db, schema="ytdpnl").summary,
        "events event_catalogue": lambda db: explore.event_catalogue(db, settings=settings),
        "events event_counts": lambda db: explore.event_counts(db, settings=settings),
        "events busiest_profiles": lambda db: explore.busiest_profiles(db, settings=settings),
        "events profile_properties": lambda db: profile_properties(db, settings=settings),
    }


def test_entry_points_on_the_callers_session_leave_it_read_only(project, ledger):
    before = table_counts(project["url"])
    db = wb.connect()  # what every notebook's first cell does
    assert db.read_only
    entry_points = caller_session_entry_points(project)
    for name, call in entry_points.items():
        frame = call(db)
        assert len(frame) > 0, name
        refused = refused_writes(db)  # the entry point did not switch the session to read-write
        assert all("read-only" in message for message in refused.values()), (name, refused)
    db.dispose()
    assert table_counts(project["url"]) == before
    ledger(
        "Read-only",
        f"toolkit queries, study analyses and sanity checks, events explore and profile properties "
        f"({len(entry_points)} entry points) on `wb.connect()`, a write of each of {len(WRITES)} kinds after each, "
        f"on {project['backend'].name}",
        f"{len(entry_points) * len(WRITES)} writes refused; every entry point returned rows; row counts unchanged",
    )


def test_commands_open_read_only_sessions_and_only_writers_open_writable_ones(project, opened, sample_dir, ledger):
    from workbench.cli import app

    url, config = project["url"], str(project["config"])
    runner = CliRunner()
    readers = {
        "info": ["info"],
        "experiments": ["experiments", "--config", config],
        "stats": ["stats", "price-display", "--config", config],
        "analyze": ["analyze", "price-display"],
        "study check": ["study", "check"],
    }
    for name, args in readers.items():
        del opened[:]
        result = runner.invoke(app, [*args, "--database", url])
        assert result.exit_code in (0, 1) and "error" not in result.output, (
            name,
            result.output,
        )  # study check exits 1 on planted faults
        assert opened and all(db.read_only for db in opened), name
        for db in opened:
            assert all("read-only" in m for m in refused_writes(db).values()), name
        if (
            name == "info"
        ):  # the default schema's tables, counted alone (the study's and the event store's live elsewhere)
            listed = {
                line.split(":")[0].strip(): int(line.split(":")[1].split()[0].replace(",", ""))
                for line in result.output.splitlines()[2:]
            }
            counts = table_counts(url)
            assert {t: listed[t] for t in ("orders", "experiment_viewed", "sessions", "pages")} == {
                t: counts[t] for t in ("orders", "experiment_viewed", "sessions", "pages")
            }
            assert "admin" not in listed
    scratch = project["backend"].new_url("read_only_writers")
    events = project["tmp"] / "events.jsonl"
    events.write_bytes(EVENTS)
    writers = {
        "generate": ["generate", "--users", "200", "--seed", "1"],
        "study generate": ["study", "generate", "--size", "tiny"],
        "load growthbook-sample": ["load", "growthbook-sample", str(sample_dir)],
        "ingest events": [
            "ingest",
            "events",
            str(events),
            "--producer-key",
            KEY,
            "--quarantine",
            str(project["tmp"] / "q2.jsonl"),
        ],
        "identities resolve": ["identities", "resolve"],
    }
    for name, args in writers.items():
        del opened[:]
        result = runner.invoke(app, [*args, "--database", scratch])
        assert result.exit_code == 0, (name, result.output)
        assert opened and not any(db.read_only for db in opened), name
    ledger(
        "Read-only",
        f"the sessions {len(readers)} analysis commands and {len(writers)} writing commands opened "
        f"(spied connect(), typer in-process) on {project['backend'].name}",
        f"info, experiments, stats, analyze, study check: read-only, all {len(WRITES)} kinds of write refused; "
        "writable only for generate, study generate, load, ingest events, identities resolve",
    )


def test_report_and_notebook_kernels_open_read_only_sessions(project, ledger):
    """The kernels papermill starts (reports, overview, study report) connect in processes of their
    own: sitecustomize logs each session and the write tried through it (PostgreSQL: test_secrets)."""
    if project["backend"].name != "duckdb":
        pytest.skip("kernels on PostgreSQL are audited by test_secrets.py's runs")
    home = project["tmp"] / "home"
    home.mkdir(exist_ok=True)
    log = project["tmp"] / "kernel-audit.jsonl"
    env = {**os.environ, "WORKBENCH_HOME": str(home), **audit_env(log)}
    started, before = time.perf_counter(), table_counts(project["url"])
    for args in (["report", "price-display", "--config", str(project["config"])], ["overview"], ["study", "report"]):
        proc = subprocess.run([WORKBENCH, *args], capture_output=True, text=True, env=env, timeout=400, check=False)
        assert proc.returncode == 0, (args, proc.stderr)
    entries = audit_entries(log)
    kernels = [e for e in entries if "ipykernel_launcher" in " ".join(e["argv"])]
    assert len({e["pid"] for e in kernels}) == 3, entries
    assert all(e["read_only"] and e["write"] == "refused" and "read-only" in e["error"].lower() for e in entries), (
        entries
    )
    assert table_counts(project["url"]) == before
    ledger(
        "Read-only",
        "CREATE TABLE through every session opened by the report, overview and study report kernels on DuckDB "
        "(audited inside each kernel via sitecustomize)",
        f"{len(entries)} sessions in {len({e['pid'] for e in entries})} processes, all read-only, every write refused; "
        f"{time.perf_counter() - started:.0f} s",
    )


def switch_attempts(project) -> list[str]:
    """Statements that would turn a read-only session writable, if the engine let them."""
    if project["backend"].name == "postgresql":
        return [
            "SET default_transaction_read_only = off",
            "SET transaction_read_only TO off",
            "set  Default_Transaction_Read_Only=0",
            "SELECT set_config('default_transaction_read_only', 'off', false)",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            "SET TRANSACTION READ WRITE",
            "BEGIN READ WRITE",
            "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ\tWRITE",
            # what passed the old text guard (issue 17's review): escapes, comments, built names, DO blocks, two statements
            'SET U&"default_transaction_read\\005fonly" = off',
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ/**/WRITE",
            "SET TRANSACTION READ/**/WRITE",
            "SELECT set_config(E'default_transaction_read\\x5fonly', 'off', false)",
            "SELECT set_config(E'transaction_read\\x5fonly', 'off', true)",
            "SELECT set_config('default_transaction_read' || chr(95) || 'only', 'off', false)",
            "DO $$ BEGIN EXECUTE 'SET default_transaction_read_only = off'; END $$",
            "SET TRANSACTION READ/**/WRITE; CREATE TABLE wb_write_probe AS SELECT 1 AS x",
            "COMMIT",
        ]
    path = sa.make_url(project["url"]).database
    return [
        "SET access_mode = 'READ_WRITE'",
        f"ATTACH '{path}' AS wb_again",
        f"ATTACH '{path}' AS wb_rw (READ_WRITE)",
        "PRAGMA enable_checkpoint_on_shutdown",
    ]


def test_a_read_only_session_cannot_be_switched_to_read_write(project, ledger):
    before = table_counts(project["url"])
    db = wb.connect()
    switches = switch_attempts(project)
    refused_switches = 0
    for switch in switches:
        try:
            db.sql(switch)
        except DatabaseError:
            refused_switches += 1
        refused = refused_writes(db)  # on the pooled connection the switch ran on, in later transactions
        assert all("read-only" in m for m in refused.values()), (switch, refused)
        with (
            pytest.raises((DatabaseError, sa.exc.DBAPIError)) as caught,
            db.engine.connect() as conn,
            conn.begin(),
        ):  # switch and write in one transaction
            conn.exec_driver_sql(switch)
            conn.exec_driver_sql(WRITES["INSERT"])
        assert re.search(
            r"read[- _]only|access_mode|file handle conflict|file system operations are disabled|their own tables only|configuration has been locked|"
            r"before any query|multiple commands",
            str(caught.value),
            re.IGNORECASE,
        ), (
            switch,
            str(caught.value),
        )
    if project["backend"].name == "postgresql":  # reading the setting stays allowed, and it still says on
        assert db.sql("SELECT current_setting('default_transaction_read_only') AS ro")["ro"].iloc[0] == "on"
    db.dispose()
    assert table_counts(project["url"]) == before
    kinds = {
        "postgresql": "SET [default_]transaction_read_only, set_config, SET SESSION CHARACTERISTICS, SET TRANSACTION/BEGIN/START READ WRITE, "
        "and the forms that passed the old text guard: U&\"…\\005f…\", READ/**/WRITE, E'…\\x5f…', a name built with chr(), a DO block, "
        "two statements in one call, COMMIT",
        "duckdb": "SET access_mode, ATTACH of the same file (read-write), a checkpoint pragma",
    }[project["backend"].name]
    ledger(
        "Read-only",
        f"{len(switches)} statements that would turn a {project['backend'].name} analysis session writable ({kinds}), "
        "each followed by every kind of write, in later transactions and in the same one",
        f"{refused_switches} of {len(switches)} switches refused outright; all {len(switches) * (len(WRITES) + 1)} later writes refused; "
        "row counts unchanged",
    )


def outside_probes(folder: Path, own_file: Path) -> dict[str, str]:
    """SQL that would reach beyond a DuckDB session's own database (issue 17's review), by what it tries."""
    import site

    return {
        "COPY over its own database file": f"COPY (SELECT 'x' AS x) TO '{own_file}'",
        "COPY to a .pth file in the virtual environment": f"COPY (SELECT 1 AS x) TO '{Path(site.getsitepackages()[0]) / 'wb_probe.pth'}'",
        "read_csv('/etc/passwd')": "SELECT * FROM read_csv('/etc/passwd')",
        "read_text": "SELECT * FROM read_text('/etc/hostname')",
        "glob('/root/**')": "SELECT * FROM glob('/root/**')",
        "ATTACH another database read-write": f"ATTACH '{folder / 'victim.duckdb'}' AS victim (READ_WRITE)",
        "ATTACH a hard link to its own file": f"ATTACH '{folder / 'link.duckdb'}' AS again",
        "EXPORT DATABASE": f"EXPORT DATABASE '{folder / 'export'}'",
        "INSTALL an extension": "INSTALL httpfs",
        "turn external access back on": "SET enable_external_access = true",
        "unlock the configuration": "SET lock_configuration = false",
        "raise its threads": "SET threads = 64",
    }


@pytest.mark.parametrize("read_only", [True, False], ids=["analysis session", "writable session"])
def test_duckdb_sessions_touch_nothing_outside_their_own_database(tmp_path, read_only, ledger):
    import hashlib
    import site

    import pyarrow as pa

    from workbench.db.bulk_write import write_tables
    from workbench.db.sql_files import TableDefinition

    own, victim = tmp_path / "own.duckdb", tmp_path / "victim.duckdb"
    for path in (own, victim):
        writer = wb.connect(f"duckdb:///{path}", read_only=False)
        writer.sql("CREATE TABLE t AS SELECT 1 AS x")
        writer.dispose()
    os.link(own, tmp_path / "link.duckdb")  # the same file under another name
    digest = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in (own, victim)}
    pth = Path(site.getsitepackages()[0]) / "wb_probe.pth"
    db = wb.connect(f"duckdb:///{own}", read_only=read_only)
    probes = outside_probes(tmp_path, own)
    refused = {}
    try:
        for what, statement in probes.items():
            with pytest.raises(DatabaseError) as caught:
                db.sql(statement)
            refused[what] = str(caught.value)
            assert "read and write their own tables only" in refused[what] and "Traceback" not in refused[what], what
            assert int(db.sql("SELECT count(*) FROM t").iloc[0, 0]) == 1  # the session goes on working
        if not read_only:  # a writer still writes its own tables, through SQL and Arrow batches
            db.sql("INSERT INTO t VALUES (2)")
            write_tables(db, [(TableDefinition("loaded", (("x", "INTEGER"),)), [pa.table({"x": [1, 2, 3]})])])
            assert int(db.sql("SELECT count(*) FROM loaded").iloc[0, 0]) == 3
    finally:
        db.dispose()
        pth.unlink(missing_ok=True)
    assert not pth.exists() and not (tmp_path / "export").exists()
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == digest[victim]
    if read_only:
        assert hashlib.sha256(own.read_bytes()).hexdigest() == digest[own]
    session = "an analysis (read-only)" if read_only else "a writable (loader)"
    ledger(
        "Read-only",
        f"{len(probes)} statements from {session} DuckDB session reaching beyond its own database: "
        + ", ".join(probes),
        f"{len(refused)} of {len(probes)} refused with one sentence, the session still answering after each; "
        + (
            "the database file byte-identical; "
            if read_only
            else "its own tables still written through SQL and Arrow; "
        )
        + "no .pth file, no export folder, the other database byte-identical (before: the file was overwritten with 4 bytes, "
        "any path written, /etc/passwd read, another database attached read-write)",
    )


@pytest.mark.postgres
def test_postgresql_analysis_refuses_privileged_roles_and_runs_as_a_select_only_role(pg_server, tmp_path, ledger):
    """Analysis sessions as a superuser are refused (one sentence), allowed with a warning when the
    config says so; a role with SELECT grants only analyses an experiment (docs/reliability.md)."""
    import warnings

    from support.generated_project import generated
    from support.pg_server import SUPERUSER
    from workbench.db.connection import PrivilegedRoleWarning
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment

    url = generated(pg_server.url_with_password(pg_server.create_database("least_privilege").split("/")[-1]), users=600)
    with pg_server.admin() as admin:  # the role of docs/reliability.md, as a DBA would create it
        admin.execute("DROP ROLE IF EXISTS wb_analyst")
        admin.execute(f"CREATE ROLE wb_analyst LOGIN PASSWORD '{pg_server.password}'")
    owner = wb.connect(url, read_only=False)
    with owner.transaction() as conn:
        for statement in ANALYST_GRANTS:
            conn.exec_driver_sql(statement.format(database="least_privilege", role="wb_analyst"))
    owner.dispose()
    config = tmp_path / "workbench.yml"
    config.write_text(SETUP + "experiments:\n" + experiment_entry("price-display"), encoding="utf-8")
    analyst = wb.connect(pg_server.url_with_password("least_privilege", role="wb_analyst"))
    results = wb.analyze(experiment("price-display", load_config(config)), analyst, dimensions=())
    assert len(results.to_pandas()) == 2 and results.to_pandas()["units"].sum() > 0
    refused = refused_writes(analyst)
    analyst.dispose()
    superuser = pg_server.url_with_password("least_privilege", role=SUPERUSER)
    with pytest.raises(DatabaseError) as caught:
        wb.connect(superuser)
    message = str(caught.value)
    assert (
        message.startswith(f"The role {SUPERUSER} on ")
        and "superuser" in message
        and "allow_privileged_role" in message
    )
    assert pg_server.password not in message and len(message.splitlines()) == 1
    allowed = tmp_path / "allowed.yml"
    allowed.write_text("database:\n  allow_privileged_role: true\n", encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught_warnings:
        warnings.simplefilter("always")
        db = wb.connect(superuser, config_path=allowed)
        assert int(db.sql("SELECT count(*) FROM experiment_viewed").iloc[0, 0]) > 0
        db.dispose()
    assert [w for w in caught_warnings if issubclass(w.category, PrivilegedRoleWarning)]
    ledger(
        "Read-only",
        "PostgreSQL analysis as a superuser (also a member of pg_execute_server_program / pg_read_server_files / "
        "pg_write_server_files), with and without `database.allow_privileged_role: true`; analysis as a role created with "
        "the grants of docs/reliability.md (CONNECT, USAGE, SELECT)",
        f"the superuser refused in one sentence naming its privileges and the setting; allowed with a PrivilegedRoleWarning "
        f"when set; the SELECT-only role analysed price-display ({int(results.to_pandas()['units'].sum()):,} units) and "
        f"all {len(refused)} writes through it were refused (before: analysis ran as the test server's superuser, "
        "which ran COPY … TO PROGRAM and pg_read_file)",
    )


# The grants of docs/reliability.md's least-privilege analysis role ({database}, {role} filled in).
ANALYST_GRANTS = [
    "GRANT CONNECT ON DATABASE {database} TO {role}",
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {role}",
]
