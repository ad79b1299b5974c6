"""Incremental refresh against a full analysis: a 28-day experiment, then one more day appended.

    .venv/bin/python benchmarks/incremental_refresh.py [--rows 10000000] [--postgres-rows 1000000] [--keep DIR]
        [--spark-connect-rows 1000000] [--without-pages] [--identity-timestamp]

Data from our generator (its ``checkout-layout`` experiment starts 2026-09-25); the benchmark's
database holds the rows of the first 28 days, then the 29th day's rows are appended. The
analysis of benchmarks/experiment_query.py without an end date: seven metrics over ``orders``,
``sessions`` and ``pages`` (a binomial and a mean with 14-day CUPED, a count, a filtered binomial,
a ratio, page views per user with 14-day CUPED through the identity join, a percentile-capped
duration with CUPED), overall and by ``browser`` and ``country``; with ``--without-pages``, the
same without the page views (no identity join); with ``--identity-timestamp``, the identity join
also returns the exposures' timestamp, so an incremental run reads only its pairs since the
settled boundary (and every pair of the units first exposed since). Per engine it prints, each
the best of 3 and against the floor (one plain ``GROUP BY`` over each table the analysis reads,
on the 29-day data):

- ``build``: the first incremental run on the 28-day data (the state built from every row, then
  the statistics read from it);
- ``full``: the full analysis of the 29-day data (no state);
- ``next day``: the incremental run on the 29-day data, from the 28-day state (restored before
  each repetition; on PostgreSQL by ``TRUNCATE``, ``INSERT`` and ``ANALYZE``, the state as
  autovacuum leaves it);

and the state's size against the exposures' (DuckDB: the state file's used blocks against a file
holding only the exposures table; PostgreSQL: ``pg_total_relation_size``; Spark: the tables'
Parquet files).
DuckDB runs with the workbench defaults (2 threads, 4GB ``memory_limit``). Spark runs on a local
Spark Connect server (``local[2]``, 2 GB driver, started as the tests start it), the tables
written into its catalog; a next-day run there starts from a new session.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START = dt.datetime(2026, 9, 25)
# table -> its timestamp column
TABLES = {"experiment_viewed": "timestamp", "orders": "timestamp", "sessions": "sessionStart", "pages": "timestamp"}
DIMENSIONS = ("browser", "country")


def config_text(pages: bool, identity_timestamp: bool) -> str:
    """benchmarks/experiment_query.py's config without an end date; without ``pages``, also
    without the page views and the identity join they are reached through; with
    ``identity_timestamp``, the identity join returns the exposures' timestamp too."""
    import yaml

    from benchmarks.experiment_query import CONFIG

    data = yaml.safe_load(CONFIG)
    if identity_timestamp:
        (join,) = data["identity_joins"]
        join["sql"] = join["sql"].replace(" FROM ", ", timestamp FROM ")
    if not pages:
        del data["identity_joins"]
        data["identifier_types"] = ["user_id"]
        data["fact_tables"] = [t for t in data["fact_tables"] if t["name"] != "pages"]
        data["metrics"] = [m for m in data["metrics"] if m.get("fact_table") != "pages"]
    (entry,) = data["experiments"]
    del entry["end"]
    entry["goal_metrics"] = [m["name"] for m in data["metrics"]]
    return yaml.safe_dump(data, sort_keys=False)


def floor_queries(pages: bool) -> list[str]:
    """benchmarks/experiment_query.py's floor over the tables read here."""
    from benchmarks.experiment_query import FLOOR

    return [sql for sql in FLOOR if pages or not ("FROM pages" in sql or "anonymousId" in sql)]


def best(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def floor_seconds(db, pages: bool) -> float:
    def run() -> None:
        for sql in floor_queries(pages):
            db.sql(f"SELECT COUNT(*) AS keys, SUM(n) AS n, COUNT(v) AS v FROM ({sql}) f")

    return best(3, run)


def copy_days(source_url: str, target_url: str, days: int, append: bool, tables: dict[str, str]) -> int:
    """Copy the generated rows of ``tables`` (name -> timestamp column) of day ``days`` (append)
    or of the first ``days`` days (replace) from ``source_url`` (a DuckDB file) into
    ``target_url`` with the loaders' bulk writer (Arrow on DuckDB, COPY on PostgreSQL); returns
    the rows now in the target's tables."""
    import duckdb

    import workbench as wb
    from workbench.db.bulk_write import write_transaction
    from workbench.db.sql_files import table_definitions
    from workbench.generator import SCHEMA

    definitions = table_definitions(SCHEMA)
    source = duckdb.connect(source_url.removeprefix("duckdb:///"), read_only=True)
    target = wb.connect(target_url, read_only=False)
    low, high = START + dt.timedelta(days=days - 1 if append else -400), START + dt.timedelta(days=days)
    query = "SELECT * FROM {table} WHERE {ts} >= ? AND {ts} < ?"
    if target.dialect.name == "spark":  # catalog tables, written (or appended to) one by one from Parquet
        # files the local server reads (millions of rows sent through the session ran its 2 GB driver out of heap)
        folder = Path(source_url.removeprefix("duckdb:///")).with_name("spark-load")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for table, ts in tables.items():
            path = str(folder / f"{table}.parquet")
            source.execute(f"COPY ({query.format(table=table, ts=ts)}) TO '{path}' (FORMAT parquet)", [low, high])
            target.session.read.parquet(path).write.mode("append" if append else "overwrite").saveAsTable(table)
    else:
        with write_transaction(target) as writer:
            for table, ts in tables.items():
                if not append:
                    writer.replace_table(definitions[table])
                rows = source.sql(query.format(table=table, ts=ts), params=[low, high]).to_arrow_table()
                writer.append(definitions[table], rows)
    source.close()
    total = sum(int(target.sql(f"SELECT COUNT(*) AS n FROM {t}")["n"].iloc[0]) for t in tables)
    target.dispose()
    return total


def state_bytes(db, exp) -> tuple[int, int]:
    """(state, exposures) sizes in bytes."""
    from workbench.experiments.incremental import state_table

    if db.dialect.name == "spark":  # the Parquet files in the (local) warehouse

        def files(table: str) -> int:
            details = db.session.sql(f"DESCRIBE TABLE EXTENDED {table}").toPandas()
            location = details.loc[details["col_name"] == "Location", "data_type"].iloc[0]
            return sum(f.stat().st_size for f in Path(location.removeprefix("file:")).rglob("*.parquet"))

        return files(current_state(db, exp)), files("experiment_viewed")
    if db.dialect.name == "postgresql":
        size = "SELECT pg_total_relation_size(CAST(:t AS regclass)) AS b"
        return (
            int(db.sql(size, t=state_table(exp))["b"].iloc[0]),
            int(db.sql(size, t="experiment_viewed")["b"].iloc[0]),
        )
    import duckdb

    from workbench.paths import state_path

    source = Path(db.settings.url.database)
    only = source.with_name("exposures_only.duckdb")
    only.unlink(missing_ok=True)
    con = duckdb.connect(str(only))
    con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
    con.execute("CREATE TABLE experiment_viewed AS SELECT * FROM src.experiment_viewed")
    con.execute("CHECKPOINT")
    con.close()
    # the state file's used blocks: the repeated builds leave free blocks DuckDB does not give back
    state = duckdb.connect(str(state_path(source)), read_only=True)
    size = state.execute("SELECT block_size * used_blocks FROM pragma_database_size()").fetchall()[0][0]
    state.close()
    return size, only.stat().st_size


def current_state(db, exp) -> str:
    """On Spark: the generation of the state table the newest bookkeeping row names."""
    log = f"{exp.config.state_schema}.experiment_state"
    return db.sql(f"SELECT units_table FROM {log} ORDER BY generation DESC LIMIT 1")["units_table"].iloc[0]


def measure(engine: str, source_url: str, url: str, config_path: Path, pages: bool) -> None:
    import workbench as wb
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment, experiment_facts
    from workbench.experiments.incremental import state_table

    exp = experiment("checkout-layout", load_config(config_path))
    tables = {t: ts for t, ts in TABLES.items() if pages or t != "pages"}
    copy_days(source_url, url, 28, append=False, tables=tables)
    db = wb.connect(url, statement_timeout_s=3600)
    build = best(3, lambda: experiment_facts(exp, db, dimensions=DIMENSIONS, full_refresh=True))
    if engine == "duckdb":  # the 28-day state, restored before each next-day run
        from workbench.paths import state_path

        state_file = state_path(Path(db.settings.url.database))
        saved = state_file.with_suffix(".day28")
        shutil.copy(state_file, saved)
    else:
        snapshot = f"{exp.config.state_schema}.day28"
        units = current_state(db, exp) if engine == "spark" else state_table(exp)
        # the state table and its bookkeeping, each with its day-28 copy
        copies = ((units, snapshot), (f"{exp.config.state_schema}.experiment_state", f"{snapshot}_meta"))
        db.dispose()
        writer = wb.connect(url, read_only=False)
        for table, copy in copies:
            writer.sql(f"DROP TABLE IF EXISTS {copy}")
            writer.sql(f"CREATE TABLE {copy} AS SELECT * FROM {table}")
        writer.dispose()
    db.dispose()
    rows = copy_days(source_url, url, 29, append=True, tables=tables)
    db = wb.connect(url, statement_timeout_s=3600)
    full = best(3, lambda: experiment_facts(exp, db, dimensions=DIMENSIONS, incremental=False))
    floor = floor_seconds(db, pages)

    def next_day() -> None:
        if engine == "duckdb":
            db.dispose()
            shutil.copy(saved, state_file)
            state_file.with_name(state_file.name + ".wal").unlink(missing_ok=True)
        elif engine == "spark":  # the day-28 generation and log back; a new session, opened untimed
            db.dispose()
            writer = wb.connect(url, read_only=False)
            for table in writer.tables(exp.config.state_schema, "units_*"):
                writer.sql(f"DROP TABLE {exp.config.state_schema}.{table}")
            for table, copy in copies:
                writer.sql(f"DROP TABLE IF EXISTS {table}")
                writer.sql(f"CREATE TABLE {table} AS SELECT * FROM {copy}")
            writer.dispose()
            db.sql("SELECT 1 AS ok")
        else:
            # TRUNCATE, not DELETE: each repetition's deleted rows would stay in the table as
            # dead tuples (no autovacuum between runs here); ANALYZE as autovacuum would have
            writer = wb.connect(url, read_only=False)
            with writer.transaction() as conn:
                import sqlalchemy as sa

                for table, copy in copies:
                    conn.execute(sa.text(f"TRUNCATE {table}"))
                    conn.execute(sa.text(f"INSERT INTO {table} SELECT * FROM {copy}"))
                conn.execute(sa.text(f"ANALYZE {state_table(exp)}"))
            writer.dispose()
        started = time.perf_counter()
        facts = experiment_facts(exp, db, dimensions=DIMENSIONS, incremental=True)
        times.append(time.perf_counter() - started)
        assert facts.stats.attrs["refresh"].built is False

    times: list[float] = []
    for _ in range(3):
        next_day()
    incremental = min(times)
    state, exposures = state_bytes(db, exp)
    db.dispose()
    print(
        f"{engine:<10} {rows:>11,} {build:>7.2f} {full:>7.2f} {incremental:>9.2f} {floor:>7.2f} "
        f"{build / floor:>11.2f} {full / floor:>10.2f} {incremental / floor:>14.2f} {incremental / full:>13.3f} "
        f"{state / 2**20:>9.1f} {exposures / 2**20:>12.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000_000], help="DuckDB sizes (generated rows)")
    parser.add_argument("--postgres-rows", type=int, nargs="*", default=[], help="PostgreSQL sizes (generated rows)")
    parser.add_argument("--keep", type=Path, help="folder for the generated DuckDB files (reused when present)")
    parser.add_argument(
        "--spark-connect-rows", type=int, nargs="*", default=[], help="Spark Connect sizes (generated rows)"
    )
    parser.add_argument("--without-pages", action="store_true", help="leave out the page views and the identity join")
    parser.add_argument(
        "--identity-timestamp",
        action="store_true",
        help="the identity join returns a timestamp (read since the boundary)",
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="incremental-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["WORKBENCH_HOME"] = str(work)  # the DuckDB state files go to work/data/state/
    config_path = work / "workbench.yml"
    config_path.write_text(config_text(not args.without_pages, args.identity_timestamp))
    from benchmarks.experiment_query import generate_into

    print(
        f"{'engine':<10} {'rows':>11} {'build s':>7} {'full s':>7} {'next day s':>9} {'floor s':>7} "
        f"{'build/floor':>11} {'full/floor':>10} {'next day/floor':>14} {'next day/full':>13} "
        f"{'state MB':>9} {'exposures MB':>12}",
        flush=True,
    )
    server = spark = None
    runs = [("duckdb", n) for n in args.rows] + [("postgresql", n) for n in args.postgres_rows]
    try:
        for engine, target in runs + [("spark", n) for n in args.spark_connect_rows]:
            generated = work / f"generated_{target}.duckdb"
            if not generated.exists():
                generate_into(f"duckdb:///{generated}", target)
            if engine == "duckdb":
                url = f"duckdb:///{work / f'bench_{target}.duckdb'}"
            elif engine == "spark":
                sys.path.insert(0, str(ROOT / "tests"))
                from support.spark_server import start_spark_connect

                if spark is None:  # a new server's catalog is empty: an earlier run's warehouse files go too
                    shutil.rmtree(work / "spark-connect", ignore_errors=True)
                    spark = start_spark_connect(work / "spark-connect")
                url = spark.url
            else:
                from tests.support.pg_server import start_postgres

                server = server or start_postgres()
                server.create_database(f"incr_{target}")
                url = server.url_with_password(f"incr_{target}")
            measure(engine, f"duckdb:///{generated}", url, config_path, not args.without_pages)
    finally:
        if server is not None:
            server.cleanup()
        if spark is not None:
            spark.stop()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
