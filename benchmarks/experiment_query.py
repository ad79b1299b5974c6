"""The experiment query against its floor: one experiment, 4 metrics with CUPED covariates, on
data from our generator (1M, 10M, 50M rows over the five tables).

    .venv/bin/python benchmarks/experiment_query.py [--rows 1000000 10000000 50000000] [--postgres-rows 10000000]
                                                    [--spark-rows 1000000] [--pandas-max-rows 10000000] [--keep DIR]

Per engine and size it prints: our query's seconds (``sufficient_stats``), the floor's seconds
(one plain ``SELECT user_id, count(*), sum(value) … GROUP BY user_id`` over each source table the
metrics read, summed), their ratio, the floor plus the same aggregate over the assignment source
(``experiment_viewed``, which any experiment query must read too) and that ratio, the bound (the
least an exact answer needs: the units, then every source row joined to its unit and compared
with that unit's first exposure, counted per unit) against the floor, the peak RSS of the process
running our query, and the same computation done naively in pandas (tables read whole into DataFrames, merged, grouped). Each
measurement runs in its own child process, so peak RSS is that measurement's own; the PostgreSQL
server's memory is not included. DuckDB runs with the workbench defaults (2 threads, 4GB
``memory_limit``); the best of 3 runs is reported for the query, the floor and the bound. Spark (``--spark-rows``,
none by default) runs the same compiled SQL through ``workbench.db.spark`` on a local 2-core
SparkSession over Parquet copies of the generated DuckDB tables; its peak RSS is the Python
driver's, not the JVM's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import resource
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
metrics:
  - name: purchased
    type: binomial
    sql: SELECT userId AS user_id, timestamp, amount AS value FROM orders
    cuped: {lookback_days: 14}
  - name: revenue_per_user
    type: mean
    sql: SELECT userId AS user_id, timestamp, amount AS value FROM orders
    cuped: {lookback_days: 14}
  - name: page_views_per_user
    type: count
    sql: SELECT userId AS user_id, timestamp, 1 AS value FROM pages
    cuped: {lookback_days: 14}
  - name: session_duration
    type: duration
    sql: SELECT userId AS user_id, sessionStart AS timestamp, duration AS value FROM sessions
    cuped: {lookback_days: 14}
experiments:
  - key: checkout-layout
    assignment_query: logged_in
    start: 2026-09-25
    end: 2026-11-22
    variations: ["0", "1", "2"]
    goal_metrics: [purchased, revenue_per_user, page_views_per_user, session_duration]
"""
TABLES = ["experiment_viewed", "orders", "pages", "sessions", "events"]
# the floor: one plain aggregate per source table the metrics read
FLOOR = [
    "SELECT userId AS user_id, COUNT(*) AS n, SUM(amount) AS v FROM orders GROUP BY userId",
    "SELECT userId AS user_id, COUNT(*) AS n, SUM(1) AS v FROM pages GROUP BY userId",
    "SELECT userId AS user_id, COUNT(*) AS n, SUM(duration) AS v FROM sessions GROUP BY userId",
]
# the same plain aggregate over the assignment source, which every experiment query must also read
EXPOSURES_FLOOR = "SELECT userId AS user_id, COUNT(*) AS n, MIN(timestamp) AS v FROM experiment_viewed GROUP BY userId"
# The least an exact answer needs: the units (first exposure of each single-variation unit), then
# every row of each source table next to its unit's first exposure, compared with it and counted
# per unit. No CUPED, no values, no statistics: our query does all of this and more.
BOUND = """
WITH units AS (
  SELECT userId AS unit, MIN(timestamp) AS first_exposure FROM experiment_viewed
  WHERE experimentId = :key AND timestamp >= :start AND timestamp <= :end
  GROUP BY userId HAVING MIN(variationId) = MAX(variationId)
)
SELECT """ + ",\n  ".join(
    f"(SELECT SUM(n) FROM (SELECT u.unit, SUM(CASE WHEN s.{ts} >= u.first_exposure THEN 1 ELSE 0 END) AS n"
    f" FROM units u JOIN {table} s ON s.userId = u.unit GROUP BY u.unit) per_unit) AS {table}"
    for table, ts in (("orders", "timestamp"), ("pages", "timestamp"), ("sessions", "sessionStart"))
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_query(url: str, config_path: str, out: multiprocessing.Queue) -> None:
    """Child: best of 3 runs of sufficient_stats, and this process's peak RSS."""
    import workbench as wb
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment, sufficient_stats

    db = wb.connect(url, statement_timeout_s=3600)
    exp = experiment("checkout-layout", load_config(Path(config_path)))
    times = []
    for _ in range(3):
        started = time.perf_counter()
        stats = sufficient_stats(exp, db=db)
        times.append(time.perf_counter() - started)
    out.put((min(times), peak_rss_mb(), int(stats["users"].sum())))


def measure_floor(url: str, config_path: str, out: multiprocessing.Queue) -> None:
    """Child: best of 3 runs (seconds) of the floor (each metric source table aggregated once per
    user), of the same aggregate over the assignment source, and of the exact answer's bound over
    the experiment's dates in ``config_path``."""
    import workbench as wb
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment

    db = wb.connect(url, statement_timeout_s=3600)
    exp = experiment("checkout-layout", load_config(Path(config_path)))

    def best_of_3(queries: list[str], **params) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            for sql in queries:
                db.sql(sql, **params)
            times.append(time.perf_counter() - started)
        return min(times)

    def summed(queries: list[str]) -> list[str]:
        return [f"SELECT COUNT(*) AS users, SUM(n) AS n, COUNT(v) AS v FROM ({sql}) f" for sql in queries]

    dates = {"key": exp.key, "start": exp.settings.start, "end": exp.settings.end}
    out.put((best_of_3(summed(FLOOR)), best_of_3(summed([EXPOSURES_FLOOR])), best_of_3([BOUND], **dates)))


def measure_spark(parquet_dir: str, config_path: str, out: multiprocessing.Queue) -> None:
    """Child: best of 3 runs of sufficient_stats and of the floor on a local SparkSession reading
    the Parquet files in ``parquet_dir``; also the session start-up and the first (cold) query."""
    import warnings

    from workbench.db.spark import SparkDatabase, local_spark_session
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment, sufficient_stats

    warnings.filterwarnings("ignore", category=FutureWarning)  # PySpark's note about pandas 3
    started = time.perf_counter()
    session = local_spark_session("workbench-bench")
    session.sparkContext.setLogLevel("ERROR")
    db = SparkDatabase(session)
    for table in TABLES:
        db.register_parquet(table, Path(parquet_dir) / f"{table}.parquet")
    startup = time.perf_counter() - started
    exp = experiment("checkout-layout", load_config(Path(config_path)))
    query_times, floor_times = [], []
    for _ in range(3):
        started = time.perf_counter()
        stats = sufficient_stats(exp, db=db)
        query_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        for sql in FLOOR:
            db.sql(f"SELECT COUNT(*) AS users, SUM(n) AS n, SUM(v) AS v FROM ({sql}) f")
        floor_times.append(time.perf_counter() - started)
    session.stop()
    out.put((min(query_times), min(floor_times), startup, query_times[0], peak_rss_mb(), int(stats["users"].sum())))


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


def measure_pandas(url: str, out: multiprocessing.Queue) -> None:
    """Child: the naive way — read the tables whole, then merge and group in pandas."""
    import pandas as pd

    import workbench as wb

    db = wb.connect(url, statement_timeout_s=3600)
    started = time.perf_counter()
    ev = db.sql(
        "SELECT userId AS user_id, timestamp, experimentId AS experiment_id, variationId AS variation_id FROM experiment_viewed",
        limit=None,
    )
    ev = ev[ev["experiment_id"] == "checkout-layout"]
    units = ev.groupby("user_id").agg(
        first=("timestamp", "min"), nvar=("variation_id", "nunique"), variation=("variation_id", "first")
    )
    units = units[units["nvar"] == 1]
    frames = {
        "orders": db.sql("SELECT userId AS user_id, timestamp, amount AS value FROM orders", limit=None),
        "pages": db.sql("SELECT userId AS user_id, timestamp, 1 AS value FROM pages", limit=None),
        "sessions": db.sql(
            "SELECT userId AS user_id, sessionStart AS timestamp, duration AS value FROM sessions", limit=None
        ),
    }
    result = []
    for rows in frames.values():
        m = rows.merge(units[["first", "variation"]], left_on="user_id", right_index=True)
        post = m[m["timestamp"] >= m["first"]]
        pre = m[(m["timestamp"] < m["first"]) & (m["timestamp"] >= m["first"] - pd.Timedelta(days=14))]
        per_unit = (
            pd.DataFrame(
                {
                    "main": post.groupby("user_id")["value"].sum(),
                    "n": post.groupby("user_id").size(),
                    "pre": pre.groupby("user_id")["value"].sum(),
                }
            )
            .reindex(units.index)
            .fillna(0)
        )
        per_unit["variation"] = units["variation"]
        per_unit["main2"], per_unit["pre2"], per_unit["cross"] = (
            per_unit["main"] ** 2,
            per_unit["pre"] ** 2,
            per_unit["main"] * per_unit["pre"],
        )
        result.append(per_unit.groupby("variation").sum())
    out.put((time.perf_counter() - started, peak_rss_mb(), 0))


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
        "--pandas-max-rows", type=int, default=10_000_000, help="skip the naive pandas run above this size"
    )
    parser.add_argument("--keep", type=Path, help="folder for the generated DuckDB files (reused when present)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="experiment-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    config_path = work / "workbench.yml"
    config_path.write_text(CONFIG)
    print(
        f"{'engine':<10} {'rows':>11} {'query s':>8} {'floor s':>8} {'ratio':>6} {'+exp. s':>8} {'ratio':>6} {'bound s':>8} {'ratio':>6} "
        f"{'peak RSS MB':>11} {'pandas s':>9} {'pandas RSS MB':>13}",
        flush=True,
    )
    runs = [("duckdb", n) for n in args.rows] + [("postgresql", n) for n in args.postgres_rows]
    server = None
    try:
        for target in args.spark_rows:
            file = work / f"generated_{target}.duckdb"
            rows = generate_into(f"duckdb:///{file}", target) if not file.exists() else table_rows(f"duckdb:///{file}")
            parquet = parquet_copy(f"duckdb:///{file}", work / f"parquet_{target}")
            query_s, floor_s, startup_s, cold_s, rss, _ = in_child(measure_spark, str(parquet), str(config_path))
            print(
                f"{'spark':<10} {rows:>11,} {query_s:>8.2f} {floor_s:>8.2f} {query_s / floor_s:>6.2f} {'':>8} {'':>6} {'':>8} {'':>6} {rss:>11,.0f} "
                f"{'skipped':>9} {'':>13}  (session start {startup_s:.1f} s, first query {cold_s:.1f} s)",
                flush=True,
            )
        for engine, target in runs:
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
            query_s, query_rss, _ = in_child(measure_query, url, str(config_path))
            floor_s, exposures_s, bound_s = in_child(measure_floor, url, str(config_path))
            with_exposures = floor_s + exposures_s
            if target <= args.pandas_max_rows:
                pandas_s, pandas_rss, _ = in_child(measure_pandas, url)
                pandas = f"{pandas_s:>9.1f} {pandas_rss:>13,.0f}"
            else:
                pandas = f"{'skipped':>9} {'':>13}"
            print(
                f"{engine:<10} {rows:>11,} {query_s:>8.2f} {floor_s:>8.2f} {query_s / floor_s:>6.2f} {with_exposures:>8.2f} "
                f"{query_s / with_exposures:>6.2f} {bound_s:>8.2f} {bound_s / floor_s:>6.2f} {query_rss:>11,.0f} {pandas}",
                flush=True,
            )
    finally:
        if server is not None:
            server.cleanup()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
