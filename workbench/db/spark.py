"""Spark SQL as a workbench database: the same compiled experiment SQL, transpiled by sqlglot,
run by a local (or given) SparkSession. For users who outgrow one machine.

``SparkDatabase`` is a :class:`workbench.db.Database`: its ``dialect`` is Spark SQL's and
``sql(query, **params)`` inlines parameters as typed sqlglot literals (Spark SQL text has no bound
parameters), never by string concatenation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.db.dialects import DIALECTS, IDENTIFIER, transpile
from workbench.errors import DatabaseError


def local_spark_session(app_name: str = "workbench", cores: int = 2, memory: str = "2g"):
    """A local SparkSession in UTC with naive timestamps (``TIMESTAMP_NTZ``), as the data is stored."""
    import os

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    return (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app_name)
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

    dialect = DIALECTS["spark"]

    def __init__(self, session) -> None:
        self.session = session

    def __repr__(self) -> str:
        return f"<workbench.SparkDatabase master={self.session.sparkContext.master}>"

    def dispose(self) -> None:
        """Nothing to release: the SparkSession belongs to the caller (stop it with ``session.stop()``)."""

    def register_parquet(self, table: str, path: Path | str) -> None:
        """Expose the Parquet file or folder ``path`` as the view ``table``."""
        self.session.read.parquet(str(path)).createOrReplaceTempView(table)

    def register_frame(self, table: str, frame) -> None:
        """Expose a pandas DataFrame as the view ``table``."""
        self.session.createDataFrame(frame).createOrReplaceTempView(table)

    def register_from(self, db, tables: list[str]) -> None:
        """Copy ``tables`` of a workbench :class:`~workbench.db.Database` into views
        (small data: the rows travel through Python as Arrow)."""
        for table in tables:
            frame = db.sql(f"SELECT * FROM {_identifier(table)}", limit=None)
            self.register_frame(table, frame)

    def sql(self, query: str, /, *, limit: int | None = None, **params: Any):
        """Run DuckDB/PostgreSQL-dialect ``query`` with ``params`` on Spark; a pandas DataFrame
        (at most ``limit`` rows when given)."""
        spark_sql = transpile(query, self.dialect, params)
        views: list[str] = []
        try:
            spark_sql, views = self._cache_shared_ctes(spark_sql)
            frame = self.session.sql(spark_sql)
            return (frame if limit is None else frame.limit(limit)).toPandas()
        except Exception as exc:  # Spark raises many exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseError(f"Spark SQL reported an error: {first}") from None
        finally:
            for view in reversed(views):
                self.session.catalog.uncacheTable(view)
                self.session.catalog.dropTempView(view)

    def _cache_shared_ctes(self, spark_sql: str) -> tuple[str, list[str]]:
        """Spark inlines a CTE at every reference; cache each CTE used more than once (the units,
        the per-unit values) as a temporary view so it is computed once. Returns the rewritten
        query and the views to drop."""
        import uuid

        import sqlglot
        from sqlglot import exp

        tree = sqlglot.parse_one(spark_sql, read=self.dialect.sqlglot)
        with_key = "with_" if "with_" in tree.args else "with"
        with_ = tree.args.get(with_key)
        if with_ is None:
            return spark_sql, []
        uses: dict[str, int] = {}
        for table in tree.find_all(exp.Table):
            uses[table.name] = uses.get(table.name, 0) + 1
        suffix = uuid.uuid4().hex[:8]
        renamed: dict[str, str] = {}
        views: list[str] = []
        kept = []
        for cte in with_.expressions:
            body = cte.this.transform(
                lambda n: (
                    exp.to_table(renamed[n.name]).as_(n.alias_or_name)
                    if isinstance(n, exp.Table) and n.name in renamed
                    else n
                )
            )
            if uses.get(cte.alias, 0) > 1:
                view = f"wb_{cte.alias}_{suffix}"
                if kept:  # the single-use CTEs defined so far, which this one may read
                    body.set(with_key, exp.With(expressions=[k.copy() for k in kept]))
                self.session.sql(body.sql(dialect=self.dialect.sqlglot)).cache().createOrReplaceTempView(view)
                renamed[cte.alias], views = view, [*views, view]
            else:
                cte.set("this", body)
                kept.append(cte)
        main = tree.copy()
        main.set(with_key, None)
        main = main.transform(
            lambda n: (
                exp.to_table(renamed[n.name]).as_(n.alias_or_name)
                if isinstance(n, exp.Table) and n.name in renamed
                else n
            )
        )
        if kept:
            main.set(with_key, exp.With(expressions=kept))
        return main.sql(dialect=self.dialect.sqlglot), views


def _identifier(name: str) -> str:
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise DatabaseError(f"{name!r} is not a plain table name.")
    return name
