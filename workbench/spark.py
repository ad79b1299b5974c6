"""Spark SQL as a workbench database: the same compiled experiment SQL, transpiled by sqlglot,
run by a local (or given) SparkSession. For users who outgrow one machine.

``SparkDatabase`` has the two things the experiment engine uses, ``dialect_name`` and
``sql(query, **params)``; parameters are inlined as typed sqlglot literals (Spark SQL text has no
bound parameters), never by string concatenation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.errors import DatabaseError


def local_spark_session(app_name: str = "workbench", cores: int = 2, memory: str = "2g"):
    """A local SparkSession in UTC with naive timestamps (``TIMESTAMP_NTZ``), as the data is stored."""
    import os

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    return (
        SparkSession.builder.master(f"local[{cores}]").appName(app_name)
        .config("spark.driver.memory", memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.timestampType", "TIMESTAMP_NTZ")
        .config("spark.sql.shuffle.partitions", str(max(cores * 2, 2)))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .getOrCreate()
    )


class SparkDatabase:
    """Runs workbench SQL on a SparkSession; register tables first."""

    dialect_name = "spark"

    def __init__(self, session) -> None:
        self.session = session

    def __repr__(self) -> str:
        return f"<workbench.SparkDatabase master={self.session.sparkContext.master}>"

    def register_parquet(self, table: str, path: Path | str) -> None:
        """Expose the Parquet file or folder ``path`` as the view ``table``."""
        self.session.read.parquet(str(path)).createOrReplaceTempView(table)

    def register_frame(self, table: str, frame) -> None:
        """Expose a pandas DataFrame as the view ``table``."""
        self.session.createDataFrame(frame).createOrReplaceTempView(table)

    def register_from(self, db, tables: list[str]) -> None:
        """Copy ``tables`` of a workbench :class:`~workbench.connection.Database` into views
        (small data: the rows travel through Python as Arrow)."""
        for table in tables:
            frame = db.sql(f"SELECT * FROM {_identifier(table)}", limit=None)
            self.register_frame(table, frame)

    def sql(self, query: str, /, *, limit: int | None = None, **params: Any):
        """Run DuckDB/PostgreSQL-dialect ``query`` with ``params`` on Spark; a pandas DataFrame
        (at most ``limit`` rows when given)."""
        from workbench.sql_builder import transpile

        spark_sql = transpile(query, "spark", params)
        try:
            frame = self.session.sql(spark_sql)
            return (frame if limit is None else frame.limit(limit)).toPandas()
        except Exception as exc:  # noqa: BLE001 - Spark raises many exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseError(f"Spark SQL reported an error: {first}") from None


def _identifier(name: str) -> str:
    from workbench.sql_files import IDENTIFIER

    if not IDENTIFIER.match(name):
        raise DatabaseError(f"{name!r} is not a plain table name.")
    return name
