"""Generator throughput: rows per second written by ``workbench generate`` at given user counts.

    .venv/bin/python benchmarks/generator_throughput.py [--users 1000000 10000000] [--postgres] [--seed 1]

Each run generates into a fresh DuckDB file (and, with --postgres, a fresh database on a throwaway
PostgreSQL server) in its own child process, so peak RSS is that run's own (the PostgreSQL
server's memory is not included). Prints one table row per run, then the rows each user adds per
table so other benchmarks can size their data (see ``workbench.generator.users_for_rows``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(url: str, users: int, seed: int, results: multiprocessing.Queue) -> None:
    """In a child process: generate, then report rows, seconds and this process's peak RSS."""
    import workbench as wb
    from workbench.generator import generate

    db = wb.connect(url, read_only=False)
    started = time.perf_counter()
    counts = generate(db, users=users, seed=seed)
    seconds = time.perf_counter() - started
    db.dispose()
    rows = sum(n for table, n in counts.items() if table != "generator_truth")
    results.put((rows, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def timed_run(engine: str, url: str, users: int, seed: int) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=run, args=(url, users, seed, results))
    child.start()
    rows, seconds, peak_mib = results.get()
    child.join()
    print(
        f"| {engine:<10} | {users:>12,} | {rows:>13,} | {seconds:>8.1f} | {rows / seconds:>12,.0f} | {peak_mib:>10,.0f} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--postgres", action="store_true", help="also generate into a throwaway PostgreSQL server")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from workbench.generator import rows_per_user

    folder = Path(tempfile.mkdtemp(prefix="generator-bench-"))
    server = None
    print("| engine     |        users |  rows written |  seconds |   rows / sec | peak RSS MiB |")
    print("|------------|-------------:|--------------:|---------:|-------------:|-------------:|")
    try:
        for users in args.users:
            path = folder / f"generated-{users}.duckdb"
            timed_run("duckdb", f"duckdb:///{path}", users, args.seed)
            path.unlink()
        if args.postgres:
            from tests.support.pg_server import start_postgres

            server = start_postgres()
            for users in args.users:
                name = f"generated_{users}"
                server.create_database(name)
                timed_run("postgresql", server.url_with_password(name), users, args.seed)
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)

    ratios = rows_per_user()
    print(
        "\nRows per user over 60 days: "
        + ", ".join(f"{t} {r:.2f}" for t, r in ratios.items())
        + f"; all five tables {sum(ratios.values()):.2f}"
    )


if __name__ == "__main__":
    main()
