"""Identity resolution at scale: N simulated events (default 10,000,000) written straight into
the events table, then ``resolve_identities`` timed, then checked against the generator's truth
inside the database.

    .venv/bin/python benchmarks/identity_resolution.py [--events 10000000] [--batch-size 1000000] [--postgres]

Users browse anonymously on one to three devices and most devices sign in; the truth table (who
owns each anonymous id) is loaded next to the events and the check is one SQL query: every true
owner ends in exactly one profile and every profile holds exactly one owner.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow as pa

import workbench as wb
from workbench.db.bulk_write import write_transaction
from workbench.db.sql_files import TableDefinition
from workbench.events.identities import resolve_identities
from workbench.events.settings import EventSettings
from workbench.events.simulate import simulate_stream
from workbench.events.statements import event_tables
from workbench.events.store import ensure_event_store

SETTINGS = EventSettings(schema="grouparoo", source="the benchmark")
USERS_PER_CHUNK = 50_000
TRUTH = TableDefinition("bench_truth", (("anonymous_id", "TEXT"), ("user_id", "TEXT")))
CHECK = """
WITH owned AS (
  SELECT e.profile_id, COALESCE(e.user_id, t.user_id, 'anon:' || e.anonymous_id) AS owner
  FROM grouparoo.events e LEFT JOIN bench_truth t ON t.anonymous_id = e.anonymous_id
)
SELECT (SELECT count(*) FROM owned WHERE profile_id IS NULL) AS unassociated,
       (SELECT count(*) FROM (SELECT owner FROM owned GROUP BY owner HAVING count(DISTINCT profile_id) > 1) x) AS split_owners,
       (SELECT count(*) FROM (SELECT profile_id FROM owned GROUP BY profile_id HAVING count(DISTINCT owner) > 1) y) AS mixed_profiles,
       (SELECT count(DISTINCT owner) FROM owned) AS true_owners,
       (SELECT count(*) FROM grouparoo.profiles) AS profiles
"""


def load(db, events: int) -> int:
    """Write whole chunks of simulated users until at least ``events`` events; the number written.
    (Chunks are never cut: a cut could drop the sign-in that links a device to its user.)"""
    tables, written, first_user = event_tables("grouparoo"), 0, 0
    with write_transaction(db) as writer:
        writer.execute(TRUTH.create_statement())
    while written < events:
        stream = simulate_stream(USERS_PER_CHUNK, seed=first_user, first_user=first_user)
        table, _ = stream.arrow_tables("benchmark")
        truth = pa.Table.from_pandas(stream.truth, preserve_index=False).cast(
            pa.schema([("anonymous_id", pa.string()), ("user_id", pa.string())])
        )
        with write_transaction(db) as writer:
            writer.append(tables["events"], table)
            writer.append(TRUTH, truth)
        written += table.num_rows
        first_user += USERS_PER_CHUNK
    return written


def run(url: str, events: int, batch_size: int, engine: str) -> None:
    db = wb.connect(url, read_only=False, statement_timeout_s=0)
    ensure_event_store(db, SETTINGS)
    started = time.perf_counter()
    written = load(db, events)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    counts = resolve_identities(db, batch_size=batch_size, settings=SETTINGS)
    elapsed = time.perf_counter() - started
    check = db.sql(CHECK).iloc[0]
    db.dispose()
    exact = (
        check["unassociated"] == 0
        and check["split_owners"] == 0
        and check["mixed_profiles"] == 0
        and check["profiles"] == check["true_owners"]
    )
    print(
        f"| {engine:<10} | {written:>11,} | {batch_size:>9,} | {loaded:>7.0f} | {elapsed:>8.0f} | {written / elapsed:>9,.0f} | "
        f"{counts.profiles:>9,} | {counts.merges:>9,} | {'yes' if exact else 'NO'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch-size", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres", action="store_true", help="run on a throwaway PostgreSQL server instead of DuckDB"
    )
    args = parser.parse_args()
    print("| engine     |      events |     batch | load s | resolve s |  events/s |  profiles |    merges | = truth |")
    print("|------------|------------:|----------:|-------:|---------:|----------:|----------:|----------:|---------|")
    if args.postgres:
        from tests.support.pg_server import start_postgres

        server = start_postgres()
        try:
            server.create_database("bench")
            run(server.url_with_password("bench"), args.events, args.batch_size, "postgresql")
        finally:
            server.cleanup()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(f"duckdb:///{Path(tmp) / 'bench.duckdb'}", args.events, args.batch_size, "duckdb")


if __name__ == "__main__":
    main()
