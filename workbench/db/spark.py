"""Spark SQL as a workbench database: the same compiled experiment SQL, transpiled by sqlglot,
run by a Spark Connect server (``sc://host:15002``), an in-process local session
(``spark+local://``) or a given SparkSession. For users who outgrow one machine.

``SparkDatabase`` is a :class:`workbench.db.Database`: its ``dialect`` is Spark SQL's and
``sql(query, **params)`` inlines parameters as typed sqlglot literals (Spark SQL text has no bound
parameters), never by string concatenation. Spark has no read-only sessions, so a read-only
``SparkDatabase`` reads each statement with sqlglot first and runs only a single query that names
no file and calls no Java method (one that ``writes_to`` a database also runs statements creating,
filling or dropping that database's tables, and nothing else); the statement timeout cancels the
query's Spark jobs by tag.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.db.connection import DEFAULT_ROW_LIMIT, check_limit, explain_error, limited_frame, timeout_error
from workbench.db.dialects import DIALECTS, IDENTIFIER, SOURCE_DIALECT, transpile
from workbench.db.settings import DatabaseSettings
from workbench.errors import DatabaseError

# Tested with the pandas our pins allow (3.x): PySpark 4.3 warns on every conversion that it does
# not yet fully support it; tests/test_spark_connect.py proves the results equal DuckDB's.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

DEFAULT_CONNECT_PORT = 15002
CONNECT_RETRIES = 5  # retries of an unavailable Spark Connect server (about 5 s in all), then one error
# Spark SQL reads files directly as `format`.`path`; an analysis session reads catalog tables only
_FILE_SOURCES = frozenset({"parquet", "csv", "json", "orc", "text", "avro", "binaryfile", "delta", "jdbc"})
# functions that call any static Java method on the driver
_JAVA_CALLS = frozenset({"reflect", "java_method", "try_reflect"})
_GRPC_DETAILS = re.compile(r'details = "([^"]*)"')  # in the text of a gRPC error
_SESSION_CONF = {"spark.sql.session.timeZone": "UTC", "spark.sql.timestampType": "TIMESTAMP_NTZ"}


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


def connect_url(settings: DatabaseSettings) -> str:
    """The ``sc://host:port/;key=value`` string PySpark's client takes, token (password) included:
    never show it."""
    url = settings.url
    params = [f"{key}={value}" for key, value in url.query.items()]
    if url.password:
        params.append(f"token={url.password}")
    return f"sc://{url.host or 'localhost'}:{url.port or DEFAULT_CONNECT_PORT}/" + "".join(f";{p}" for p in params)


def open_spark(
    settings: DatabaseSettings, read_only: bool, statement_timeout_s: float, config_path: Path, check: bool
) -> SparkDatabase:
    """The Spark database ``settings`` names (``spark+connect``: a new Spark Connect session;
    ``spark+local``: the process's local session), in UTC with naive timestamps, with
    ``database.spark_tables`` registered as views. ``check`` opens the session at once."""

    def opener():
        import os

        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # gRPC's own INFO lines (TLS handshakes) stay off stderr
        from pyspark.sql import SparkSession

        if settings.url.drivername == "spark+local":
            session = local_spark_session()
        else:
            from pyspark.sql.connect.client.retries import DefaultPolicy

            marked = "SPARK_CONNECT_MODE_ENABLED" in os.environ
            session = SparkSession.builder.remote(connect_url(settings)).create()
            if not marked:  # PySpark marks the whole process as Spark Connect: a later spark+local:// stays classic
                os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
            # a server that is down fails in seconds, not after the client's 10 minutes of retries
            session.client.set_retry_policies([DefaultPolicy(max_retries=CONNECT_RETRIES, max_backoff=2000)])
            warnings.filterwarnings("ignore", message=r"\[RETRIES_EXCEEDED\]", category=UserWarning)
        for key, value in _SESSION_CONF.items():
            session.conf.set(key, value)
        for name, path in settings.spark_tables:
            try:
                session.read.parquet(path).createOrReplaceTempView(name)
            except Exception as exc:
                raise DatabaseError(
                    f"database.spark_tables.{name} names {path}, which Spark cannot read as Parquet: "
                    f"fix the path (as the Spark server sees it). ({explain_error(exc)})"
                ) from None
        return session

    db = SparkDatabase(
        None,
        settings=settings,
        read_only=read_only,
        statement_timeout_s=statement_timeout_s,
        config_path=config_path,
        opener=opener,
    )
    if check:
        db.sql("SELECT 1 AS ok")
    return db


@contextlib.contextmanager
def _active(session: Any):
    """``session`` as this thread's active Spark Connect session meanwhile: PySpark's Connect client
    builds a checkpoint's DataFrame on the *active* session
    (``pyspark.sql.connect.conversion.proto_to_remote_cached_dataframe``), not on the one that ran
    it, so with two sessions in one process the view was registered through the other one (in the
    test suite: a session to another server, over TLS). A classic session has nothing to switch."""
    holder = getattr(type(session), "_active_session", None)
    if holder is None:
        yield
        return
    before = getattr(holder, "session", None)
    holder.session = session
    try:
        yield
    finally:
        holder.session = before


class SparkDatabase:
    """Runs workbench SQL on Spark. Given a ``session`` it uses it (views registered by hand, the
    caller stops it); :func:`open_spark` gives it an ``opener`` instead, which opens a session on
    first use and again after :meth:`dispose`. ``writes_to``: a read-only database that may also
    write the tables of that catalog database (an incremental refresh's state)."""

    dialect = DIALECTS["spark"]

    def __init__(
        self,
        session=None,
        *,
        settings: DatabaseSettings | None = None,
        read_only: bool = False,
        statement_timeout_s: float = 0.0,
        config_path: Path | None = None,
        opener: Callable[[], Any] | None = None,
        writes_to: str | None = None,
    ) -> None:
        import sqlalchemy as sa

        self._session = session
        self._opener = opener
        self.settings = settings or DatabaseSettings(url=sa.URL.create("spark+local"), source="argument")
        self.read_only = read_only
        self.writes_to = writes_to
        self.statement_timeout_s = statement_timeout_s  # 0: none
        self.config_path = config_path or Path("workbench.yml")  # where database.statement_timeout_seconds is set

    def __repr__(self) -> str:
        writes = f", writes {self.writes_to}" if self.writes_to else ""
        mode = f"read-only{writes}" if self.read_only else "writable"
        return f"<workbench.SparkDatabase {self.settings.display_url} ({mode})>"

    __str__ = __repr__

    @property
    def session(self):
        """The SparkSession (opened on first use when this database has an opener)."""
        if self._session is None and self._opener is not None:
            _quiet_query_errors()
            try:
                self._session = self._opener()
            except DatabaseError:
                raise
            except Exception as exc:
                raise self._explained(exc) from None
        return self._session

    def _explained(self, exc: BaseException) -> DatabaseError:
        """:func:`~workbench.db.connection.explain_error` of a Spark error, reading a gRPC error's
        details (``Connection refused``, the server's message) rather than its wrapper's first line."""
        text = str(exc)
        if details := _GRPC_DETAILS.search(text):
            text = details.group(1)
        return explain_error(RuntimeError(text), self)

    def dispose(self) -> None:
        """Stop the session this database opened (it opens a new one when used again); a session
        given by the caller is the caller's to stop."""
        if self._opener is not None and self._session is not None:
            session, self._session = self._session, None
            with contextlib.suppress(Exception):  # a server already gone: nothing left to release
                session.stop()

    def transaction(self):
        """Spark has no transactions: refused with the alternative."""
        raise DatabaseError(
            f"{self.settings.display_url} is Spark, which has no transactions: this write runs on DuckDB or "
            "PostgreSQL; export its tables to Parquet and name them in database.spark_tables to analyse them on Spark."
        )

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

    def sql(self, query: str, /, *, limit: int | None = DEFAULT_ROW_LIMIT, **params: Any):
        """Run DuckDB/PostgreSQL-dialect ``query`` with ``params`` on Spark; a pandas DataFrame of at
        most ``limit`` rows (``None``: all), like :meth:`SqlDatabase.sql
        <workbench.db.connection.SqlDatabase.sql>`. A read-only session runs only one query; a
        query running longer than ``statement_timeout_s`` seconds is cancelled (its Spark jobs too)."""
        check_limit(limit)
        if self.read_only:
            self._check_read_only(query)
        try:
            spark_sql = transpile(query, self.dialect, params)
        except KeyError as exc:
            raise DatabaseError(
                f"The query has a placeholder :{exc.args[0]} with no value: pass one, e.g. db.sql(query, {exc.args[0]}=…)."
            ) from None
        session = self.session
        tag = f"workbench-{uuid.uuid4().hex}"
        timer = threading.Timer(self.statement_timeout_s, session.interruptTag, (tag,))
        timer.daemon = True
        views: dict[str, Any] = {}  # checkpointed view -> its DataFrame, kept until the query is done
        started = time.perf_counter()
        session.addTag(tag)
        try:
            if self.statement_timeout_s > 0:
                timer.start()
            spark_sql = self._checkpoint_shared_ctes(spark_sql, views)
            frame = session.sql(spark_sql)
            frame = (frame if limit is None else frame.limit(limit + 1)).toPandas()
        except Exception as exc:  # Spark raises many exception types
            if timer.finished.is_set():
                raise timeout_error(self, f"{time.perf_counter() - started:.1f} s") from None
            raise self._explained(exc) from None
        finally:
            timer.cancel()
            session.removeTag(tag)
            for view in reversed(views):
                session.catalog.dropTempView(view)
            views.clear()  # the last references to the checkpoints, so Spark can free them
        return limited_frame(frame, limit, time.perf_counter() - started)

    def tables(self, database: str, pattern: str) -> list[str]:
        """The names of the tables of the catalog ``database`` matching ``pattern`` (``*`` any text)."""
        try:
            return [table.name for table in self.session.catalog.listTables(database, pattern)]
        except Exception as exc:
            raise self._explained(exc) from None

    def _check_read_only(self, query: str) -> None:
        """Refuse anything but one query reading catalog tables (Spark sessions cannot be made
        read-only); with ``writes_to``, also one statement creating, filling or dropping a table
        of that database (or creating it)."""
        import sqlglot
        from sqlglot import exp

        where = self.settings.display_url
        try:
            trees = [t for t in sqlglot.parse(query, read=SOURCE_DIALECT) if t is not None]
        except sqlglot.errors.SqlglotError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DatabaseError(f"The query cannot be read as SQL, so {where} does not run it: {first}") from None
        if len(trees) == 1 and self.writes_to and isinstance(trees[0], (exp.Create, exp.Drop, exp.Insert)):
            tree = trees[0]
            kind = str(tree.args.get("kind") or "TABLE").upper()  # an INSERT has none
            targets = tree.args.get("tables") or [tree.this.this if isinstance(tree.this, exp.Schema) else tree.this]
            for target in targets:  # CREATE SCHEMA s names the table "s."
                if kind not in ("TABLE", "SCHEMA", "DATABASE") or target.db.lower() != self.writes_to:
                    raise DatabaseError(
                        f"This refresh session on {where} writes only the tables of {self.writes_to}, "
                        f"not {kind.lower()} {target.sql()}."
                    )
        elif (len(trees) != 1 or not isinstance(trees[0], exp.Query)) and self.writes_to:
            raise DatabaseError(
                f"This refresh session on {where} runs one query, or one statement creating, filling or dropping "
                f"a table of {self.writes_to}, per call."
            )
        elif len(trees) != 1 or not isinstance(trees[0], exp.Query):
            raise DatabaseError(
                f"This analysis session on {where} is read-only: it runs one query (SELECT or WITH) per call; "
                "writes go through the loaders or the generator (connect(read_only=False))."
            )
        for table in trees[0].find_all(exp.Table):
            if table.db.lower() in _FILE_SOURCES:
                raise DatabaseError(
                    f"Sessions on {where} read catalog tables only, not files ({table.db}.`…`): "
                    "name the folder in database.spark_tables instead."
                )
        for call in trees[0].find_all(exp.Anonymous):
            if str(call.name).lower() in _JAVA_CALLS:
                raise DatabaseError(
                    f"Sessions on {where} do not call Java methods ({call.name}): remove it from the query."
                )

    def _checkpoint_shared_ctes(self, spark_sql: str, views: dict[str, Any]) -> str:
        """Spark inlines a CTE at every reference; compute each CTE used more than once (the units,
        the per-unit values) once, as a locally checkpointed temporary view, added to ``views``
        (name -> DataFrame; the caller drops them after the query). Returns the rewritten query.

        Checkpointed, not cached: a cached view keeps its whole plan, so every reference to it
        re-plans the views it reads, and so on down. checkout-layout by two dimensions planned a
        tree of about 107,000 nodes (``experiment_viewed`` 4,576 times), which took 40 s and the
        driver's heap; a checkpoint is one leaf."""

        import sqlglot
        from sqlglot import exp

        statement = sqlglot.parse_one(spark_sql, read=self.dialect.sqlglot)
        # CREATE TABLE … AS <query>: the query's CTEs
        tree = statement.expression if isinstance(statement, exp.Create) else statement
        if not isinstance(tree, exp.Query):
            return spark_sql
        with_key = "with_" if "with_" in tree.args else "with"
        with_ = tree.args.get(with_key)
        if with_ is None:
            return spark_sql
        uses: dict[str, int] = {}
        for table in tree.find_all(exp.Table):
            uses[table.name] = uses.get(table.name, 0) + 1
        suffix = uuid.uuid4().hex[:8]
        renamed: dict[str, str] = {}
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
                with _active(self.session):
                    views[view] = self.session.sql(body.sql(dialect=self.dialect.sqlglot)).localCheckpoint()
                views[view].createOrReplaceTempView(view)
                renamed[cte.alias] = view
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
        if isinstance(statement, exp.Create):
            statement.set("expression", main)
            main = statement
        return main.sql(dialect=self.dialect.sqlglot)


def _quiet_query_errors() -> None:
    """PySpark logs every failed query's JVM stack trace to stderr; the DatabaseError says it in one sentence."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).disabled = True


def _identifier(name: str) -> str:
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise DatabaseError(f"{name!r} is not a plain table name.")
    return name
