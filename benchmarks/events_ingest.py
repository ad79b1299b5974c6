"""Ingestion throughput: N events (default 1,000,000) as JSON lines with 1% malformed lines.

    .venv/bin/python benchmarks/events_ingest.py [--events 1000000] [--postgres] [--batch-size 50000]

Builds the file from the stream simulator, then times ``workbench.events.ingest`` into a fresh
DuckDB file (and a throwaway PostgreSQL server with --postgres), and checks that every line is
accounted for. Prints one table row per engine.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import workbench as wb
from workbench.events.ingest import ingest
from workbench.events.settings import EventSettings
from workbench.events.simulate import simulate_stream

KEY = "benchmark-key-0001"
SETTINGS = EventSettings(schema="grouparoo", api_keys={"benchmark": KEY}, source="the benchmark")
MALFORMED = [
    b"{not json",
    b'{"type": "x"}',
    b'{"userId": "u"}',
    b'{"type": "x", "userId": "u", "data": {"a": {"b": 1}}}',
    b"\xff\xfe garbage",
]


def build_file(events: int, folder: Path) -> tuple[Path, int, int]:
    """A JSON lines file of about ``events`` good records plus 1% malformed lines; (path, good, bad)."""
    users = max(1, round(events / 13.0))  # the simulator yields about 13.9 events per user: a margin, then cut
    stream = simulate_stream(users, seed=7)
    records = stream.records()[:events]
    rng = random.Random(7)
    lines = [json.dumps(r).encode() for r in records]
    bad = len(lines) // 100
    for _ in range(bad):
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(MALFORMED))
    path = folder / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, len(records), bad


def run(url: str, path: Path, good: int, bad: int, batch_size: int, engine: str) -> None:
    db = wb.connect(url, read_only=False)
    started = time.perf_counter()
    counts = ingest(
        db,
        path,
        KEY,
        batch_size=batch_size,
        quarantine_file=path.with_suffix(f".{engine}.rejected.jsonl"),
        settings=SETTINGS,
    )
    elapsed = time.perf_counter() - started
    db.dispose()
    assert (counts.received, counts.stored, counts.quarantined, counts.duplicates) == (good + bad, good, bad, 0), counts
    print(
        f"| {engine:<10} | {counts.received:>10,} | {counts.stored:>10,} | {counts.quarantined:>8,} | {elapsed:>8.1f} | {counts.received / elapsed:>10,.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--postgres", action="store_true", help="also ingest into a throwaway PostgreSQL server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        path, good, bad = build_file(args.events, folder)
        print(
            f"built {path.stat().st_size / 1e6:,.0f} MB of JSON lines ({good:,} events, {bad:,} malformed) in {time.perf_counter() - started:.0f} s"
        )
        print("| engine     |   received |     stored | quarant. |  seconds |   events/s |")
        print("|------------|-----------:|-----------:|---------:|---------:|-----------:|")
        run(f"duckdb:///{folder / 'bench.duckdb'}", path, good, bad, args.batch_size, "duckdb")
        if args.postgres:
            from tests.support.pg_server import start_postgres

            server = start_postgres()
            try:
                server.create_database("bench")
                run(server.url_with_password("bench"), path, good, bad, args.batch_size, "postgresql")
            finally:
                server.cleanup()


if __name__ == "__main__":
    main()
