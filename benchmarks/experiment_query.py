"""The whole analysis of one experiment against its floor: 7 metrics over three fact tables (page
views reached through the identity join), overall and by two dimensions, on data from our
generator (1M, 10M, 50M rows over the five tables).

    .venv/bin/python benchmarks/experiment_query.py [--rows 1000000 10000000 50000000] [--postgres-rows 10000000]
                                                    [--spark-rows 1000000] [--spark-connect-rows 1000000]
                                                    [--repeats 3] [--keep DIR]

Per engine and size it prints: the full analysis's seconds (``experiment_facts`` with the
``browser`` and ``country`` breakdowns: the one query ``analyze`` runs, sufficient statistics and
health facts), the overall-only analysis's seconds, the floor's seconds (one plain ``GROUP BY``
over each table the analysis reads, summed: the exposures, the three fact tables, the identity
map's pairs), both ratios, and the peak RSS of the process running the analysis. Each measurement
runs in its own child process, so peak RSS is that measurement's own; the PostgreSQL server's
memory is not included. DuckDB runs with the workbench defaults (2 threads, 4GB
``memory_limit``); the best of ``--repeats`` (3) runs is reported. Spark runs the same compiled
SQL through ``workbench.db.spark`` over Parquet copies of the generated DuckDB tables, on a local
2-core in-process SparkSession (``--spark-rows``) or on a local Spark Connect server (``local[2]``,
2 GB driver, started as the tests start it, ``--spark-connect-rows``), none by default; its peak
RSS is the Python process's, not the JVM's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = """
identifier_types: [user_id, anonymous_id]
identity_joins:
  - sql: SELECT userId AS user_id, anonymousId AS anonymous_id FROM experiment_viewed
assignment_queries:
  - name: logged_in
    identifier_type: user_id
    sql: SELECT userId AS user_id, timestamp, experimentId AS experiment_id, variationId AS variation_id, browser, country FROM experiment_viewed
    dimensions: [browser, country]
fact_tables:
  - name: orders
    sql: SELECT userId AS user_id, anonymousId AS anonymous_id, timestamp, amount, qty FROM orders
  - name: pages
    sql: SELECT anonymousId AS anonymous_id, timestamp, path FROM pages
  - name: sessions
    sql: SELECT userId AS user_id, sessionStart AS timestamp, duration, pages FROM sessions
metrics:
  - {name: purchased, type: binomial, fact_table: orders, cuped: {lookback_days: 14}}
  - {name: revenue_per_user, type: mean, fact_table: orders, column: amount, cuped: {lookback_days: 14}}
  - {name: orders_per_user, type: count, fact_table: orders}
  - {name: bulk_buyer, type: binomial, fact_table: orders, row_filter: qty > 1}
  - {name: average_order_value, type: ratio, numerator: revenue_per_user, denominator: orders_per_user}
  - {name: page_views_per_user, type: count, fact_table: pages, cuped: {lookback_days: 14}}
  - name: session_duration
    type: duration
    fact_table: sessions
    column: duration
    capping: {type: percentile, value: 0.99}
    cuped: {lookback_days: 14}
experiments:
  - key: checkout-layout
    assignment_query: logged_in
    start: 2026-09-25
    end: 2026-11-22
    variations: ["0", "1", "2"]
    dimensions: [browser, country]
    goal_metrics: [purchased, revenue_per_user, orders_per_user, bulk_buyer, average_order_value, page_views_per_user, session_duration]
"""
TABLES = ["experiment_viewed", "orders", "pages", "sessions", "events"]
# the floor: one plain aggregate over each table the analysis reads, keyed as the analysis joins it
FLOOR = [
    "SELECT userId AS k, COUNT(*) AS n, MIN(timestamp) AS v FROM experiment_viewed GROUP BY userId",
    "SELECT userId AS k, COUNT(*) AS n, SUM(amount) AS v FROM orders GROUP BY userId",
    "SELECT anonymousId AS k, COUNT(*) AS n, SUM(1) AS v FROM pages GROUP BY anonymousId",
    "SELECT userId AS k, COUNT(*) AS n, SUM(duration) AS v FROM sessions GROUP BY userId",
    "SELECT userId AS k, COUNT(*) AS n, MIN(anonymousId) AS v FROM experiment_viewed GROUP BY userId, anonymousId",
]


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM): ``getrusage``'s ``ru_maxrss`` survives ``exec``, so a
    child spawned by a parent that had grown (generating 50M rows) reported the parent's peak."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def measure_query(url: str, config_path: str, repeats: int, out: multiprocessing.Queue) -> None:
    """Child: best of ``repeats`` runs of the full analysis (two breakdowns) and of the
    overall-only one, and this process's peak RSS."""
    import workbench as wb
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment

    db = wb.connect(url, statement_timeout_s=3600)
    exp = experiment("checkout-layout", load_config(Path(config_path)))
    out.put((*run_analysis(db, exp, repeats), peak_rss_mb()))


def run_analysis(db, exp, repeats: int) -> tuple[float, float]:
    from workbench.experiments.engine import experiment_facts

    full, overall = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        experiment_facts(exp, db, dimensions=("browser", "country"))
        full.append(time.perf_counter() - started)
        started = time.perf_counter()
        experiment_facts(exp, db)
        overall.append(time.perf_counter() - started)
    return min(full), min(overall)


def best_floor(db, repeats: int) -> float:
    """Best of ``repeats`` runs (seconds) of the floor: each table the analysis reads aggregated once."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for sql in FLOOR:
            db.sql(f"SELECT COUNT(*) AS keys, SUM(n) AS n, COUNT(v) AS v FROM ({sql}) f")
        times.append(time.perf_counter() - started)
    return min(times)


def measure_floor(url: str, repeats: int, out: multiprocessing.Queue) -> None:
    """Child: the floor on the database at ``url``."""
    import workbench as wb

    out.put((best_floor(wb.connect(url, statement_timeout_s=3600), repeats),))


def measure_spark(
    parquet_dir: str, config_path: str, connect_url: str | None, repeats: int, out: multiprocessing.Queue
) -> None:
    """Child: the analysis and the floor on Spark reading the Parquet files in ``parquet_dir``:
    a local in-process SparkSession, or a session on the Spark Connect server at ``connect_url``;
    also the session's start-up."""
    import warnings

    import workbench as wb
    from workbench.db.spark import SparkDatabase, local_spark_session
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment

    warnings.filterwarnings("ignore", category=FutureWarning)  # PySpark's note about pandas 3
    started = time.perf_counter()
    if connect_url is None:
        session = local_spark_session("workbench-bench")
        session.sparkContext.setLogLevel("ERROR")
        db = SparkDatabase(session)
    else:
        db = wb.connect(connect_url, statement_timeout_s=3600)
    for table in TABLES:
        db.register_parquet(table, Path(parquet_dir) / f"{table}.parquet")
    startup = time.perf_counter() - started
    exp = experiment("checkout-layout", load_config(Path(config_path)))
    full, overall = run_analysis(db, exp, repeats)
    floor = best_floor(db, repeats)
    if connect_url is None:
        session.stop()
    else:
        db.dispose()
    out.put((full, overall, floor, startup, peak_rss_mb()))


def parquet_copy(url: str, folder: Path) -> Path:
    """The five tables of the DuckDB file at ``url`` as ``folder/<table>.parquet`` (reused when present)."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(url.removeprefix("duckdb:///"), read_only=True)
    for table in TABLES:
        if not (folder / f"{table}.parquet").exists():
            con.execute(f"COPY {table} TO '{folder / table}.parquet' (FORMAT parquet)")
    con.close()
    return folder


def in_child(target, *args) -> tuple:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=target, args=(*args, out))
    process.start()
    while True:
        try:
            result = out.get(timeout=5)
            break
        except queue.Empty:
            if not process.is_alive():
                raise SystemExit(f"{target.__name__} failed in its child process (see above)") from None
    process.join()
    return result


def table_rows(url: str) -> int:
    """Rows in the five generated tables (for a DuckDB file kept from an earlier run)."""
    import workbench as wb

    db = wb.connect(url)
    total = sum(int(db.sql(f"SELECT COUNT(*) AS n FROM {t}")["n"].iloc[0]) for t in TABLES)
    db.dispose()
    return total


def generate_into(url: str, rows: int) -> int:
    import workbench as wb
    from workbench.generator import generate, users_for_rows

    db = wb.connect(url, read_only=False)
    counts = generate(db, users=users_for_rows(rows), seed=1)
    db.dispose()
    return sum(n for table, n in counts.items() if table != "generator_truth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 10_000_000, 50_000_000])
    parser.add_argument("--postgres-rows", type=int, nargs="*", default=[10_000_000])
    parser.add_argument(
        "--spark-rows", type=int, nargs="*", default=[], help="also run on Spark local (PySpark) at these sizes"
    )
    parser.add_argument(
        "--spark-connect-rows",
        type=int,
        nargs="*",
        default=[],
        help="also run on a local Spark Connect server (started here, stopped after) at these sizes",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the best is reported")
    parser.add_argument("--keep", type=Path, help="folder for the generated DuckDB files (reused when present)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="experiment-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    config_path = work / "workbench.yml"
    config_path.write_text(CONFIG)
    print(
        f"{'engine':<10} {'rows':>11} {'full s':>7} {'overall s':>9} {'floor s':>8} {'full/floor':>10} "
        f"{'overall/floor':>13} {'peak RSS MB':>11}",
        flush=True,
    )

    def row(engine: str, rows: int, full: float, overall: float, floor: float, rss: float, note: str = "") -> None:
        print(
            f"{engine:<10} {rows:>11,} {full:>7.2f} {overall:>9.2f} {floor:>8.2f} {full / floor:>10.2f} "
            f"{overall / floor:>13.2f} {rss:>11,.0f}{note}",
            flush=True,
        )

    server = connect_server = None
    try:
        spark_runs = [("spark", n) for n in args.spark_rows] + [("spark-sc", n) for n in args.spark_connect_rows]
        for engine, target in spark_runs:
            file = work / f"generated_{target}.duckdb"
            rows = generate_into(f"duckdb:///{file}", target) if not file.exists() else table_rows(f"duckdb:///{file}")
            parquet = parquet_copy(f"duckdb:///{file}", work / f"parquet_{target}")
            connect_url = None
            if engine == "spark-sc":
                sys.path.insert(0, str(ROOT / "tests"))
                from support.spark_server import start_spark_connect

                connect_server = connect_server or start_spark_connect(work / "spark-connect")
                connect_url = connect_server.url
            full, overall, floor, startup, rss = in_child(
                measure_spark, str(parquet), str(config_path), connect_url, args.repeats
            )
            row(engine, rows, full, overall, floor, rss, f"  (session start {startup:.1f} s)")
        for engine, target in [("duckdb", n) for n in args.rows] + [("postgresql", n) for n in args.postgres_rows]:
            if engine == "duckdb":
                file = work / f"generated_{target}.duckdb"
                url = f"duckdb:///{file}"
                rows = generate_into(url, target) if not file.exists() else table_rows(url)
            else:
                from tests.support.pg_server import start_postgres

                server = server or start_postgres()
                name = f"bench_{target}"
                server.create_database(name)
                url = server.url_with_password(name)
                rows = generate_into(url, target)
            full, overall, rss = in_child(measure_query, url, str(config_path), args.repeats)
            (floor,) = in_child(measure_floor, url, args.repeats)
            row(engine, rows, full, overall, floor, rss)
    finally:
        if connect_server is not None:
            connect_server.stop()
        if server is not None:
            server.cleanup()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
