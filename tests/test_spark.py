"""The same compiled experiment SQL on Spark SQL (PySpark local mode) gives the statistics the
independent pandas computation gives. One SparkSession for the module, few queries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from test_experiment_engine import ALL_METRICS, END, START, assert_matches_reference

from support import experiment_reference as ref

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore::FutureWarning:pyspark.*"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
ROOT = Path(__file__).resolve().parents[1]
TABLES = ["experiment_viewed", "orders", "pages", "sessions", "events"]


@pytest.fixture(scope="module")
def spark_db(tmp_path_factory, sample_dir):
    """``connect()`` on ``spark+local://`` (an in-process local session) with GrowthBook's sample as
    Parquet folders named in ``database.spark_tables``, exported from a DuckDB file."""
    pytest.importorskip("pyspark")
    import duckdb

    import workbench as wb
    from workbench.db.spark import SparkDatabase
    from workbench.growthbook_sample import load_growthbook_sample

    tmp = tmp_path_factory.mktemp("spark")
    writer = wb.connect(f"duckdb:///{tmp / 'gb.duckdb'}", read_only=False)
    load_growthbook_sample(writer, sample_dir)
    writer.dispose()
    # workbench sessions write no files: the test exports the Parquet copies through DuckDB itself
    with duckdb.connect(str(tmp / "gb.duckdb"), read_only=True) as con:
        for table in TABLES:
            con.execute(f"COPY {table} TO '{tmp / table}.parquet' (FORMAT parquet)")
    config = tmp / "workbench.yml"
    tables = "".join(f"    {table}: {tmp / table}.parquet\n" for table in TABLES)
    config.write_text(f"database:\n  url: spark+local://\n  spark_tables:\n{tables}", encoding="utf-8")
    db = wb.connect(config_path=config)
    assert isinstance(db, SparkDatabase) and db.read_only and "spark+local" in repr(db)
    db.session.sparkContext.setLogLevel("ERROR")
    yield db
    db.dispose()


def test_spark_statistics_equal_pandas(spark_db, sample_dir):
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment, sufficient_stats

    exp = experiment("checkout-layout", load_config(ROOT / "workbench.yml"))
    # every metric type, both metric styles (fact tables and own SQL), in one query
    ours = sufficient_stats(exp, db=spark_db, metrics=ALL_METRICS)
    expected = ref.sufficient_stats(sample_dir, "checkout-layout", START, END, ["0", "1", "2"], ALL_METRICS)
    assert_matches_reference(ours, expected)


def test_spark_dimension_statistics_and_multiple_exposures(spark_db, sample_dir):
    from workbench.experiments.config import load_config
    from workbench.experiments.engine import experiment, experiment_facts

    exp = experiment("checkout-layout", load_config(ROOT / "workbench.yml"))
    metrics = ("retention_rate", "bulk_buyer", "order_amount_p90")
    facts = experiment_facts(exp, spark_db, dimensions=("browser", "country"), top_n=2, metrics=metrics)
    views = ref.raw(sample_dir, "experimentViews")
    per_user = views[views["experimentId"] == "checkout-layout"].groupby("userId")["variationId"].nunique()
    overall = facts.units[facts.units["dimension"] == "overall"]
    assert overall.set_index("variation").loc[ref.MULTIPLE, "users"] == (per_user > 1).sum()
    for dimension in ("browser", "country"):
        expected = ref.sufficient_stats(
            sample_dir, "checkout-layout", START, END, ["0", "1", "2"], metrics, dimension=dimension, top_n=2
        )
        assert_matches_reference(facts.stats[facts.stats["dimension"].isin(["overall", dimension])], expected)


def test_parameters_are_inlined_as_typed_literals():
    from workbench.db.dialects import transpile

    sql = transpile(
        "SELECT * FROM t WHERE k = :key AND ts >= :start AND n <= :n",
        "spark",
        {"key": "it's", "start": dt.datetime(2026, 9, 25, 1, 2, 3), "n": 20},
    )
    assert sql == "SELECT * FROM t WHERE k = 'it\\'s' AND ts >= CAST('2026-09-25 01:02:03' AS TIMESTAMP) AND n <= 20"
