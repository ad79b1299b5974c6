"""Spark as a first-class database (issue 24): ``sc://`` URLs against the Spark Connect server the
suite starts once (tests/support/spark_server.py). GrowthBook's sample is loaded by ``workbench load``
into Spark and into DuckDB and gives the same sufficient statistics for every metric type; then the
generator writes into both and ``workbench run-reports`` gives the same results on each. The
generator replaces the sample's tables on the server, so its test comes last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_experiment_engine import ALL_METRICS, assert_matches_reference

import workbench as wb
from support.generated_project import SETUP, experiment_entry
from workbench.db.connection import RowLimitWarning
from workbench.errors import ConfigError, DatabaseError
from workbench.events.store import ensure_event_store

pytestmark = [pytest.mark.spark, pytest.mark.filterwarnings("ignore::FutureWarning:pyspark.*")]
ROOT = Path(__file__).resolve().parents[1]
WORKBENCH = str(Path(sys.executable).with_name("workbench"))


def workbench(
    *args: str, url: str, home: Path, timeout: float = 400, succeeds: bool = True
) -> subprocess.CompletedProcess:
    """Run the CLI on ``url`` with ``home`` as WORKBENCH_HOME; it must exit 0 (``succeeds``) or not."""
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DATABASE_URL": url}
    proc = subprocess.run(
        [WORKBENCH, *args], check=False, capture_output=True, text=True, env=env, timeout=timeout, cwd=home
    )
    assert (proc.returncode == 0) == succeeds, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def sample_on_both(spark_connect_server, sample_dir, tmp_path_factory):
    """GrowthBook's sample loaded by the CLI into the Spark server and into a DuckDB file."""
    home = tmp_path_factory.mktemp("spark-sample-home")
    duck = f"duckdb:///{home / 'sample.duckdb'}"
    for url in (spark_connect_server.url, duck):
        proc = workbench("load", "growthbook-sample", str(sample_dir), url=url, home=home)
        assert "experiment_viewed:      120,280 rows" in proc.stdout
    return spark_connect_server.url, duck


def test_sufficient_statistics_equal_duckdb_for_every_metric_type(sample_on_both):
    from workbench.db.spark import SparkDatabase
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment, sufficient_stats

    spark_url, duck_url = sample_on_both
    spark, duck = wb.connect(spark_url), wb.connect(duck_url)
    assert isinstance(spark, SparkDatabase) and isinstance(spark, wb.Database) and spark.read_only
    exp = experiment("checkout-layout", load_config(ROOT / "workbench.yml"))
    # every metric type (binomial, mean, ratio, CUPED, quantile, retention, fact-table and own SQL), one query
    ours = sufficient_stats(exp, db=spark, metrics=ALL_METRICS)
    assert_matches_reference(ours, sufficient_stats(exp, db=duck, metrics=ALL_METRICS))
    assert len(ours) == len(ALL_METRICS) * 3
    spark.dispose()
    duck.dispose()


def test_checkout_layout_analysed_in_full_equals_duckdb(sample_on_both, tmp_path):
    """`workbench analyze checkout-layout` in full (six metrics, a quantile and CUPED among them,
    overall and by browser and by country, in one query) on the Connect server: it ran the 2 GB
    driver out of heap while the views of the shared CTEs were cached ones, each re-planning every
    view it reads; with checkpointed views it gives DuckDB's sufficient statistics, health facts
    and the same analysis."""
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment, experiment_facts

    spark_url, duck_url = sample_on_both
    exp = experiment("checkout-layout", load_config(ROOT / "workbench.yml"))
    assert exp.settings.dimensions == ("browser", "country") and len(exp.settings.metrics) == 6
    spark, duck = wb.connect(spark_url), wb.connect(duck_url)
    on_spark = experiment_facts(exp, spark, dimensions=exp.settings.dimensions)
    on_duck = experiment_facts(exp, duck, dimensions=exp.settings.dimensions)
    assert not [t.name for t in spark.session.catalog.listTables() if t.name.startswith("wb_")]  # views dropped
    spark.dispose()
    duck.dispose()
    assert set(on_duck.stats["metric"]) == {m.name for m in exp.settings.metrics}
    assert {"Chrome", "US"} <= set(on_duck.stats["dimension_value"])
    assert_matches_reference(on_spark.stats, on_duck.stats)
    for table in ("units", "days"):
        spark_rows, duck_rows = getattr(on_spark, table), getattr(on_duck, table)
        keys = list(duck_rows.columns.drop("users"))
        pd.testing.assert_frame_equal(
            spark_rows.sort_values(keys).reset_index(drop=True),
            duck_rows.sort_values(keys).reset_index(drop=True),
            check_dtype=False,
        )
    config = str(ROOT / "workbench.yml")  # the database from WORKBENCH_DATABASE_URL
    analyses = [
        json.loads(
            workbench(
                "analyze", "checkout-layout", "--format", "json", "--config", config, url=url, home=tmp_path
            ).stdout
        )
        for url in (spark_url, duck_url)
    ]
    assert analyses[0] == analyses[1]


def test_read_only_timeouts_and_the_token_stay_safe(spark_connect_server, monkeypatch):
    db = wb.connect(spark_connect_server.url, statement_timeout_s=2)
    for statement in ("DROP TABLE orders", "CREATE TABLE x (a INT)", "SELECT 1; DROP TABLE orders"):
        with pytest.raises(DatabaseError, match="is read-only: it runs one query"):
            db.sql(statement)
    with pytest.raises(DatabaseError, match="do not call Java methods"):
        db.sql("SELECT reflect('java.lang.System', 'exit', 1)")
    with pytest.raises(DatabaseError, match=r"missing from .*TABLE_OR_VIEW_NOT_FOUND"):
        db.sql("SELECT * FROM no_such_table")
    started = time.perf_counter()
    with pytest.raises(DatabaseError, match=r"longer than the statement timeout \(2 s\)"):
        db.sql("SELECT COUNT(*) AS n FROM range(100000000000) a")
    assert time.perf_counter() - started < 15
    assert db.sql("SELECT 41 + 1 AS x")["x"].iloc[0] == 42  # the session works after the cancel
    with pytest.warns(RowLimitWarning):
        assert len(db.sql("SELECT id FROM range(10) a", limit=3)) == 3
    db.dispose()
    writer = wb.connect(spark_connect_server.url, read_only=False)
    with pytest.raises(
        DatabaseError, match="Spark, which has no transactions: this write runs on DuckDB or PostgreSQL"
    ):
        ensure_event_store(writer)  # event ingestion and the service start here
    writer.dispose()

    token = "tok-" + "9f2c71e05a"
    with pytest.raises(ConfigError, match="WORKBENCH_DATABASE_PASSWORD") as refused:
        wb.connect(f"{spark_connect_server.url}/;token={token}")
    assert token not in str(refused.value)
    monkeypatch.setenv("WORKBENCH_DATABASE_PASSWORD", token)
    # with a token the client insists on TLS, which this server does not speak: refused, token unshown
    unchecked = wb.connect(spark_connect_server.url, check=False)
    assert token not in repr(unchecked)
    with pytest.raises(DatabaseError) as failed:
        unchecked.sql("SELECT 1")
    assert token not in str(failed.value) and "127.0.0.1" in str(failed.value)


def test_the_study_generator_is_refused_on_spark_naming_the_alternative(spark_connect_server, tmp_path):
    """`workbench study generate` needs transactions (its schema, enum types and tables are created
    by its own SQL): on Spark it stops at once with one sentence naming DuckDB or PostgreSQL and the
    Parquet route, and writes nothing."""
    proc = workbench("study", "generate", "--size", "tiny", url=spark_connect_server.url, home=tmp_path, succeeds=False)
    message = " ".join(proc.stderr.split())
    assert "is Spark, which has no transactions: this write runs on DuckDB or PostgreSQL" in message
    assert "export its tables to Parquet and name them in database.spark_tables" in message
    assert "Traceback" not in proc.stderr
    db = wb.connect(spark_connect_server.url)
    assert not db.session.catalog.databaseExists("ytdpnl")
    db.dispose()


def test_run_reports_on_spark_equal_duckdb(spark_connect_server, tmp_path_factory):
    """The acceptance test: `workbench run-reports` with WORKBENCH_DATABASE_URL=sc://… gives the
    results DuckDB gives on the same generated data (written by `workbench generate` into each)."""
    from workbench.reports.data import load_report_cache

    keys = ("price-display", "add-to-cart-cta")
    results = {}
    for name, url in (("spark", spark_connect_server.url), ("duckdb", None)):
        home = tmp_path_factory.mktemp(f"run-reports-{name}")
        url = url or f"duckdb:///{home / 'generated.duckdb'}"
        config = home / "workbench.yml"
        config.write_text(SETUP + "experiments:\n" + "".join(experiment_entry(k) for k in keys), encoding="utf-8")
        generated = workbench("generate", "--users", "3000", "--seed", "5", url=url, home=home)
        assert "generator_truth" in generated.stdout
        run = workbench("run-reports", *keys, "--config", str(config), url=url, home=home, timeout=600)
        assert "ok     price-display" in run.stdout and "ok     add-to-cart-cta" in run.stdout
        results[name] = {k: load_report_cache(home / "reports" / k / "cache").results.to_pandas() for k in keys}
        assert (home / "reports" / "index.html").is_file()
    for key in keys:
        spark, duck = results["spark"][key], results["duckdb"][key]
        assert len(spark) >= 2
        pd.testing.assert_frame_equal(spark, duck, check_dtype=False, rtol=1e-9)


def test_a_standalone_worker_runs_the_analysis(tmp_path_factory):
    """A Connect server submitting to a standalone master with one worker (one core, small memory):
    generated data gives DuckDB's sufficient statistics, and the worker's executor ran the tasks."""
    from support.spark_server import java_missing_reason, start_spark_connect, start_standalone
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment, sufficient_stats

    if reason := java_missing_reason():
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("spark-standalone")
    cluster = start_standalone(root / "cluster", worker_cores=1, worker_memory="1g")
    conf = {"spark.executor.cores": "1", "spark.executor.memory": "512m", "spark.cores.max": "1"}
    try:
        server = start_spark_connect(root / "connect", master=cluster.master_url, extra_conf=conf)
        try:
            config = root / "workbench.yml"
            config.write_text(SETUP + "experiments:\n" + experiment_entry("price-display"), encoding="utf-8")
            duck = f"duckdb:///{root / 'generated.duckdb'}"
            for url in (server.url, duck):
                workbench("generate", "--users", "1000", "--seed", "3", url=url, home=root)
            exp = experiment("price-display", load_config(config))
            on_cluster, on_duck = wb.connect(server.url, config_path=config), wb.connect(duck, config_path=config)
            ours = sufficient_stats(exp, db=on_cluster)
            assert ours["users"].sum() > 0
            assert_matches_reference(ours, sufficient_stats(exp, db=on_duck))
            on_cluster.dispose()
            on_duck.dispose()
        finally:
            server.stop()
        logs = list(cluster.work_dir.glob("app-*/*/stderr"))
        assert logs and any("Finished task" in log.read_text(errors="replace") for log in logs), logs
    finally:
        cluster.stop()
