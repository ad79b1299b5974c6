"""Seconds per toolkit query on N events: DuckDB (default 10,000,000) and PostgreSQL (smaller).

    .venv/bin/python benchmarks/toolkit_queries.py [--events 10000000] [--pg-events 1000000] [--no-postgres]

The events are built inside DuckDB with ``range()`` and ``random()`` (seeded): sessions of eight
events a few minutes apart, spread over 60 days and 250 units per 10,000 events; types view /
search / cart / buy, a value on buys. PostgreSQL gets the events of the first units (about ``--pg-events``) by COPY
(then ANALYZE) on a throwaway server. Every query runs in the database; sessionization is the
window-function SQL of ``sql/toolkit/sessions_derived.sql``. Prints one table: seconds per query
and engine, and the rows each returned.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow as pa

import workbench as wb
from workbench.db.bulk_write import write_tables
from workbench.db.connection import RowLimitWarning
from workbench.db.sql_files import TableDefinition
from workbench.toolkit import Toolkit, event_source

TABLE = TableDefinition(
    "bench_events", (("user_id", "TEXT"), ("ts", "TIMESTAMP"), ("type", "TEXT"), ("value", "DOUBLE PRECISION"))
)
SOURCE = event_source(
    "bench",
    {
        "table": "bench_events",
        "unit": "user_id",
        "timestamp": "ts",
        "type": "type",
        "value": "value",
        "page_type": "view",
    },
)
EVENTS_PER_SESSION = 8

BUILD = """
CREATE TABLE bench_events AS
WITH visits AS (
  SELECT range AS visit,
         'u' || CAST(hash(range * 7919) % {units} AS VARCHAR) AS user_id,
         TIMESTAMP '2026-01-01' + to_seconds(CAST(floor(random() * 86400 * 60) AS BIGINT)) AS started
  FROM range({visits})
),
steps AS (
  SELECT v.user_id, v.started, s.range AS step, random() AS draw
  FROM visits v, range({per_visit}) s
)
SELECT user_id,
       started + to_seconds(CAST(step * (20 + floor(draw * 400)) AS BIGINT)) AS ts,
       CASE WHEN step = 0 OR draw < 0.45 THEN 'view' WHEN draw < 0.75 THEN 'search'
            WHEN draw < 0.93 THEN 'cart' ELSE 'buy' END AS type,
       CASE WHEN draw >= 0.93 THEN round(draw * 1000) / 10 END AS value
FROM steps
"""


def build_duckdb(path: Path, events: int) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("SELECT setseed(0.42)")
    visits = events // EVENTS_PER_SESSION
    con.execute(BUILD.format(units=max(1, events // 40), visits=visits, per_visit=EVENTS_PER_SESSION))
    con.close()


def copy_to_postgres(duckdb_path: Path, url: str, events: int, all_events: int) -> int:
    """Copy the events of the first units (about ``events`` of them) to ``url``; rows copied."""
    import duckdb

    units = max(1, all_events // 40 * events // all_events)
    con = duckdb.connect(str(duckdb_path), read_only=True)
    reader = con.sql(
        f"SELECT * FROM bench_events WHERE CAST(substr(user_id, 2) AS BIGINT) < {int(units)}"
    ).to_arrow_reader(500_000)
    db = wb.connect(url, read_only=False)
    counts = write_tables(db, [(TABLE, (pa.Table.from_batches([b]) for b in reader))])
    db.sql("ANALYZE bench_events")
    db.dispose()
    con.close()
    return counts[TABLE.name]


def timed_queries(db: wb.Database) -> list[tuple[str, float, int]]:
    tk = Toolkit(db, SOURCE)
    calls = [
        ("events(types=buy, one day)", lambda: tk.events(types="buy", start="2026-01-10", end="2026-01-11")),
        ("event_counts(by=day)", lambda: tk.event_counts(by="day")),
        ("event_counts(by=hour, 2 types)", lambda: tk.event_counts(by="hour", types=["cart", "buy"])),
        ("sessions(30min), first 100k rows", lambda: tk.sessions(inactivity="30min")),
        ("sessions(30min), all rows", lambda: tk.sessions(inactivity="30min", limit=None)),
        ("funnel(4 steps, 1h)", lambda: tk.funnel(["view", "search", "cart", "buy"], within="1h")),
        ("retention(week, 8 periods)", lambda: tk.retention(cohort="week", activity="buy", periods=8)),
        ("user_metrics(), all units", lambda: tk.user_metrics(types=["buy"], limit=None)),
    ]
    rows = []
    for name, call in calls:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RowLimitWarning)
            result = call()
        rows.append((name, time.perf_counter() - started, len(result)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--pg-events", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    results: dict[str, list[tuple[str, float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="toolkit-bench-") as tmp:
        path = Path(tmp) / "events.duckdb"
        started = time.perf_counter()
        build_duckdb(path, args.events)
        print(f"built {args.events:,} events in DuckDB in {time.perf_counter() - started:.1f} s", flush=True)
        db = wb.connect(f"duckdb:///{path}", statement_timeout_s=1800)
        label = f"DuckDB {args.events / 1e6:g}M"
        results[label] = timed_queries(db)
        db.dispose()
        if not args.no_postgres:
            from tests.support.pg_server import start_postgres

            server = start_postgres()
            try:
                server.create_database("bench")
                started = time.perf_counter()
                copied = copy_to_postgres(path, server.url_with_password("bench"), args.pg_events, args.events)
                print(f"copied {copied:,} events to PostgreSQL in {time.perf_counter() - started:.1f} s", flush=True)
                db = wb.connect(server.url_with_password("bench"), statement_timeout_s=1800)
                results[f"PostgreSQL {copied / 1e6:.2g}M"] = timed_queries(db)
                db.dispose()
            finally:
                server.cleanup()
    engines = list(results)
    print()
    print(f"| query | {' | '.join(f'{e} (s)' for e in engines)} | {' | '.join(f'{e} rows' for e in engines)} |")
    print("|---|" + "---:|" * (2 * len(engines)))
    for i, (name, _, _) in enumerate(results[engines[0]]):
        seconds = " | ".join(f"{results[e][i][1]:.2f}" for e in engines)
        counts = " | ".join(f"{results[e][i][2]:,}" for e in engines)
        print(f"| {name} | {seconds} | {counts} |")


if __name__ == "__main__":
    main()
