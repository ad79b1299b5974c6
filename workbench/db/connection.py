"""Open the analysis database: ``connect()`` gives a :class:`SqlDatabase` holding a SQLAlchemy engine.

Analysis sessions are read-only where the engine supports it (DuckDB ``read_only``, PostgreSQL
``default_transaction_read_only``) and carry a statement timeout. Writers (loaders, generator,
ingestion) ask for ``read_only=False`` explicitly.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from workbench import paths
from workbench.db import Database as Database  # the protocol SqlDatabase implements, re-exported
from workbench.db.dialects import DIALECTS, Dialect
from workbench.db.settings import DatabaseSettings, resolve_database
from workbench.errors import DatabaseError
from workbench.redaction import redact

DEFAULT_ROW_LIMIT = 100_000  # rows db.sql() returns unless asked for more (limit=None: all)
SLOW_QUERY_S = 2.0  # queries running longer than this print their elapsed time


class RowLimitWarning(UserWarning):
    """``db.sql()`` returned only the first ``limit`` rows of a longer result."""


warnings.simplefilter("always", RowLimitWarning)  # every cut is announced, not only the first one


class SqlDatabase:
    """A DuckDB or PostgreSQL session (a :class:`~workbench.db.Database`) that runs SQL into
    DataFrames (:meth:`sql`).

    It holds the SQLAlchemy :class:`~sqlalchemy.engine.Engine` as ``engine`` for code that needs
    one (``pandas.read_sql(q, db.engine)``, ``db.engine.connect()``) and its
    :class:`~workbench.db.dialects.Dialect` as ``dialect``. Its ``repr`` and every message it
    raises hide the password.
    """

    def __init__(
        self,
        engine: sa.Engine,
        settings: DatabaseSettings,
        read_only: bool,
        statement_timeout_s: float,
        config_path: Path,
    ) -> None:
        self.engine = engine
        self.dialect: Dialect = DIALECTS[engine.dialect.name]
        self.settings = settings
        self.read_only = read_only
        self.statement_timeout_s = statement_timeout_s  # 0: none
        self.config_path = config_path  # where database.statement_timeout_seconds is set

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "writable"
        return f"<workbench.Database {self.settings.display_url} ({mode})>"

    __str__ = __repr__

    def dispose(self) -> None:
        """Close the pooled connections (DuckDB releases the file); the session can be used again."""
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection whose statements run in one transaction, committed at the end and rolled
        back on error; driver errors become one :class:`~workbench.errors.DatabaseError` sentence."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise explain_error(exc, self) from None

    def sql(self, query: str, /, *, limit: int | None = DEFAULT_ROW_LIMIT, **params: Any):
        """Run ``query`` with bound ``params`` (``:name`` placeholders) and return a DataFrame.

        At most ``limit`` rows come back (``None``: all); when the result is longer, a
        :class:`RowLimitWarning` says so and ``frame.attrs["truncated"]`` is True. Queries slower
        than ``SLOW_QUERY_S`` seconds print their elapsed time on one line (stderr);
        ``frame.attrs["elapsed_s"]`` always holds it. A failed query raises
        :class:`~workbench.errors.DatabaseError` with the database's message and the line of
        ``query`` it points to.
        """
        import pandas as pd

        check_limit(limit)
        started = time.perf_counter()
        try:
            with self.engine.begin() as conn:
                if self.dialect.server_side_cursors and _READS_ROWS.match(query):
                    conn = conn.execution_options(stream_results=True)  # server-side cursor: only the rows kept travel
                result = conn.execute(sa.text(query), params)
                if not result.returns_rows:
                    return pd.DataFrame()
                columns = list(result.keys())
                rows = result.fetchall() if limit is None else result.fetchmany(limit + 1)
                result.close()
        except sa.exc.SQLAlchemyError as exc:
            raise _query_error(exc, self, query) from None
        frame = pd.DataFrame([tuple(row) for row in rows], columns=columns)  # tuples: pandas probes Row objects slowly
        return limited_frame(frame, limit, time.perf_counter() - started)


def check_limit(limit: object) -> None:
    """``limit`` must be a positive number of rows or None (all rows)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive number of rows or None (all rows), not {limit!r}")


def limited_frame(frame, limit: int | None, elapsed_s: float):
    """``frame`` (fetched with at most ``limit + 1`` rows) cut to ``limit`` rows, with
    ``attrs["truncated"]`` and ``attrs["elapsed_s"]`` (seconds) set; a cut warns
    (:class:`RowLimitWarning`) and a query slower than ``SLOW_QUERY_S`` prints its time (stderr)."""
    truncated = limit is not None and len(frame) > limit
    if truncated:
        frame = frame.iloc[:limit]
    frame.attrs.update(truncated=truncated, elapsed_s=elapsed_s)
    if truncated:
        warnings.warn(
            f"The result has more than {limit:,} rows: only the first {limit:,} are returned; "
            "pass limit=None for all rows, or aggregate in SQL.",
            RowLimitWarning,
            stacklevel=3,
        )
    if elapsed_s > SLOW_QUERY_S:
        print(f"query ran in {elapsed_s:.1f} s ({len(frame):,} rows)", file=sys.stderr)
    return frame


_READS_ROWS = re.compile(r"^\s*(?:--[^\n]*\n\s*)*\(?\s*(?:SELECT|WITH|VALUES|TABLE)\b", re.IGNORECASE)
_SQL_LINE = re.compile(r"^LINE (\d+):", re.MULTILINE)


def _failed_line(exc: sa.exc.SQLAlchemyError, query: str) -> int | None:
    """The 1-based line of ``query`` a failed statement points to, when the database says.

    DuckDB and PostgreSQL print ``LINE n:``; PostgreSQL also gives a character position in the
    statement it ran. Bound parameters never span lines, so line numbers carry over unchanged.
    """
    original = getattr(exc, "orig", None) or exc
    if match := _SQL_LINE.search(str(original)):
        number = int(match.group(1))
    else:
        position = getattr(getattr(original, "diag", None), "statement_position", None)
        statement = getattr(exc, "statement", None)
        if not position or not statement:
            return None
        number = statement[: int(position) - 1].count("\n") + 1
    return number if 1 <= number <= len(query.splitlines()) else None


def _query_error(exc: sa.exc.SQLAlchemyError, db: SqlDatabase, query: str) -> DatabaseError:
    """:func:`explain_error` plus the line of ``query`` the database points to."""
    error = explain_error(exc, db)
    number = _failed_line(exc, query)
    error.sql_line_number = number  # type: ignore[attr-defined]
    if number is None:
        return error
    line = query.splitlines()[number - 1].strip()
    error.args = (f"{str(error).rstrip('.')}; at line {number} of the query: {redact(line)}",)
    return error


def connect(
    url: str | None = None,
    *,
    read_only: bool = True,
    config_path: Path | None = None,
    statement_timeout_s: float | None = None,
    check: bool = True,
) -> SqlDatabase:
    """Open the project database (see :mod:`workbench.db.settings` for where the URL comes from).

    ``read_only`` sessions refuse writes; ``statement_timeout_s`` (seconds) stops runaway
    queries; ``check`` opens one connection at once so that a wrong URL or a server that is down
    fails here with one clear sentence. Spark URLs (``sc://``, ``spark+local://``) give a
    :class:`~workbench.db.spark.SparkDatabase`, which implements the same
    :class:`~workbench.db.Database` protocol.
    """
    settings = resolve_database(url, config_path)
    timeout = statement_timeout_s if statement_timeout_s is not None else settings.statement_timeout_s
    if opener := _SESSION_OPENERS.get(settings.dialect):
        return opener(settings, read_only, timeout, config_path or paths.config_path(), check)
    engine = _ENGINE_BUILDERS[settings.dialect](settings, read_only, timeout)
    db = SqlDatabase(engine, settings, read_only, timeout, config_path or paths.config_path())
    if check:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            db.dispose()
            raise explain_error(exc, db) from None
    return db


def connect_state(db: Database, schema: str) -> Database:
    """A session for an incremental refresh of ``db``'s experiments: it reads ``db`` as an analysis
    does and writes only the refresh state, named ``<schema>.<table>``. On Spark, ``db``'s session
    allowed to write the tables of the catalog database ``schema`` too. On DuckDB, one in-process
    connection with ``db``'s file attached read-only (the default catalog: its tables keep their
    names) and the state file (:func:`workbench.paths.state_path`) attached writable as ``schema``;
    nothing else outside them is reachable. On PostgreSQL, a writable session on the same
    database (the state is the schema ``schema``, created by the refresh if missing), with JIT
    compilation off: the planner's estimates for the refresh's CTEs are off by orders of magnitude,
    so it compiled hundreds of functions (0.2-0.7 s) for queries that read a day of rows.
    ``schema`` is a validated lower-case identifier."""
    settings = db.settings
    store = DIALECTS[settings.dialect].state_store
    if store == "tables":  # Spark: the same session, its writes checked (it has no read-only sessions)
        from workbench.db.spark import SparkDatabase

        return SparkDatabase(
            db.session, settings=settings, read_only=True, statement_timeout_s=db.statement_timeout_s,
            config_path=db.config_path, writes_to=schema,
        )  # fmt: skip
    if store == "file":
        source = settings.url.database
        if source in (None, "", ":memory:"):
            raise DatabaseError("An incremental refresh needs a DuckDB database file, not an in-memory database.")
        in_memory = dataclasses.replace(settings, url=settings.url.set(database=":memory:"))
        state = (Path(source), paths.state_path(Path(source)), schema)
        engine = _duckdb_engine(in_memory, read_only=False, timeout_s=db.statement_timeout_s, attach=state)
    else:  # a "schema" state store: PostgreSQL
        engine = _postgresql_engine(settings, read_only=False, timeout_s=db.statement_timeout_s, jit=False)
    return SqlDatabase(engine, settings, False, db.statement_timeout_s, db.config_path)


def _duckdb_engine(
    settings: DatabaseSettings, read_only: bool, timeout_s: float, attach: tuple[Path, Path, str] | None = None
) -> sa.Engine:
    path = settings.url.database
    in_memory = path in (None, "", ":memory:")
    if not in_memory:
        file = Path(path)
        if read_only and not file.exists():
            raise DatabaseError(
                f"The database file {file} does not exist yet: load data first with "
                "`make demo`, `workbench generate` or `workbench load growthbook-sample DIR`."
            )
        file.parent.mkdir(parents=True, exist_ok=True)
    config = {"memory_limit": settings.duckdb_memory_limit, "threads": settings.duckdb_threads}
    connect_args: dict[str, Any] = {"config": config}
    if read_only and not in_memory:
        connect_args["read_only"] = True
    # attached files (an incremental refresh): one connection, which holds them
    pool = {"poolclass": sa.pool.StaticPool} if attach else {}
    engine = sa.create_engine(settings.url, connect_args=connect_args, **pool)

    @event.listens_for(engine, "connect")
    def _session_settings(dbapi_connection, connection_record):
        # The settings belong to the database instance, which DuckDB shares between the connections of
        # one process to one file: the first connection sets and locks them, later ones find them so.
        if dbapi_connection.execute("SELECT current_setting('lock_configuration')").fetchone()[0]:
            return
        # DuckDB draws its own bars on stdout for statements over 2 s; ours (tqdm) are enough
        dbapi_connection.execute("SET enable_progress_bar = false")
        # config dates are UTC: a naive bound start/end meets TIMESTAMPTZ columns as UTC, whatever $TZ says
        dbapi_connection.execute("SET GLOBAL TimeZone = 'UTC'")
        if attach:  # the analysis database read-only, as the default catalog; the state file writable
            source, state, schema = attach
            state.parent.mkdir(parents=True, exist_ok=True)
            quoted = [str(p).replace("'", "''") for p in (source, state)]
            dbapi_connection.execute(f"ATTACH '{quoted[0]}' AS wb_source (READ_ONLY)")
            dbapi_connection.execute(f"ATTACH '{quoted[1]}' AS {schema}")
            dbapi_connection.execute("USE wb_source")
        # Nothing outside this database: no file read or written (COPY … TO over the database file or a
        # .pth file, read_csv('/etc/passwd'), glob), no ATTACH, no extension installed. Every session
        # reads and writes through SQL on its own tables and Arrow batches only. Locked last, so no
        # statement can turn it back on (or change TimeZone, threads or memory_limit).
        dbapi_connection.execute("SET enable_external_access = false")
        dbapi_connection.execute("SET lock_configuration = true")

    _install_duckdb_timeout(engine, timeout_s)
    return engine


def _install_duckdb_timeout(engine: sa.Engine, timeout_s: float) -> None:
    """DuckDB has no statement timeout: interrupt a statement from a timer thread instead."""
    if not timeout_s or timeout_s <= 0:
        return

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn, cursor, statement, parameters, context, executemany):
        raw = conn.connection.driver_connection
        timer = threading.Timer(timeout_s, raw.interrupt)
        timer.daemon = True
        conn.info["workbench_timer"] = timer
        timer.start()

    @event.listens_for(engine, "after_cursor_execute")
    def _stop(conn, cursor, statement, parameters, context, executemany):
        if timer := conn.info.pop("workbench_timer", None):
            timer.cancel()

    @event.listens_for(engine, "handle_error")
    def _stop_on_error(ctx):
        if ctx.connection is not None and (timer := ctx.connection.info.pop("workbench_timer", None)):
            timer.cancel()
            if "interrupt" in str(ctx.original_exception).lower():
                ctx.connection.info["workbench_timed_out"] = timeout_s


CLIENT_CHECK_INTERVAL_MS = 2000


def _postgresql_engine(settings: DatabaseSettings, read_only: bool, timeout_s: float, jit: bool = True) -> sa.Engine:
    # config dates are UTC: naive bound start/end meet TIMESTAMPTZ columns as UTC, whatever the server's TimeZone
    options = [
        f"-c statement_timeout={int(max(timeout_s, 0) * 1000)}",
        "-c TimeZone=UTC",
        # the server checks every few seconds that the client is still there, and cancels the query
        # of one that died (a killed kernel or command) instead of running it to the end
        f"-c client_connection_check_interval={CLIENT_CHECK_INTERVAL_MS}",
    ] + ([] if jit else ["-c jit=off"])
    if read_only:
        options.append("-c default_transaction_read_only=on")
    connect_args = {"options": " ".join(options), "connect_timeout": 10, "application_name": "workbench"}
    if read_only:
        connect_args["prepare_threshold"] = 0  # every statement prepared: the server refuses "a; b" in one execution
    engine = sa.create_engine(settings.url, connect_args=connect_args, pool_pre_ping=True)
    if read_only:
        _keep_read_only(engine, settings)
    return engine


class PrivilegedRoleWarning(UserWarning):
    """An analysis session runs as a PostgreSQL role that can reach the server's files or programs
    (``database.allow_privileged_role: true``)."""


# What a PostgreSQL role may do beyond SQL on tables: run programs and read or write files on the
# server (COPY … TO PROGRAM, pg_read_file). Empty for a role that may do none of it.
_PRIVILEGES_SQL = (
    "SELECT concat_ws(', ', CASE WHEN r.rolsuper THEN 'superuser' END, "
    + ", ".join(
        f"CASE WHEN pg_has_role(current_user, '{role}', 'USAGE') THEN '{role}' END"
        for role in ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")
    )
    + ") FROM pg_roles r WHERE r.rolname = current_user"
)
# The state a read-only session must keep after every statement: this transaction and the session default.
_READ_ONLY_STATE_SQL = (
    "SELECT current_setting('transaction_read_only'), current_setting('default_transaction_read_only')"
)


def _keep_read_only(engine: sa.Engine, settings: DatabaseSettings) -> None:
    """Read-only enforced by the PostgreSQL server, not by reading the SQL: every transaction is
    declared ``READ ONLY`` and takes its first snapshot at once (after which the server refuses to
    turn it read-write), every statement is prepared (so one execution runs one statement), and
    after each statement the session must still be read-only, else the connection is discarded and
    the transaction with it. New connections as a privileged role are refused unless
    ``database.allow_privileged_role`` is true (then a :class:`PrivilegedRoleWarning`)."""
    where = settings.display_url

    @event.listens_for(engine, "connect")
    def _check_role(dbapi_connection, connection_record):
        # prepared (prepare_threshold=0) but never kept: the same text may return other columns later,
        # e.g. after SET LOCAL search_path, and PostgreSQL refuses a cached plan whose result type changed
        dbapi_connection.prepared_max = 0
        privileges = dbapi_connection.execute(_PRIVILEGES_SQL).fetchone()[0]
        dbapi_connection.rollback()
        if not privileges:
            return
        user = settings.url.username or "the connecting role"
        if not settings.allow_privileged_role:
            raise DatabaseError(
                f"The role {user} on {where} may run programs or read and write files on the server ({privileges}): "
                "analysis refuses such roles; connect as a role with SELECT grants only (docs/reliability.md#a-least-privilege-analysis-role), "
                "or set database.allow_privileged_role: true to accept the risk."
            )
        warnings.warn(
            f"Analysing on {where} as {user}, which may run programs or read and write files on the server ({privileges}): "
            "database.allow_privileged_role is true.",
            PrivilegedRoleWarning,
            stacklevel=2,
        )

    @event.listens_for(engine, "begin")
    def _begin_read_only(conn):
        raw = conn.connection.driver_connection
        raw.execute("SET TRANSACTION READ ONLY")
        raw.execute(
            "SELECT 1"
        )  # the first snapshot: from here on the server refuses to turn this transaction read-write

    @event.listens_for(engine, "after_cursor_execute")
    def _still_read_only(conn, cursor, statement, parameters, context, executemany):
        state = conn.connection.driver_connection.execute(_READ_ONLY_STATE_SQL).fetchone()
        if tuple(state) != ("on", "on"):
            conn.invalidate()  # the connection, its transaction and whatever it did are gone
            raise DatabaseError(
                f"This analysis session on {where} is read-only and stays so: a statement turned it read-write, so its "
                "connection was discarded and nothing it did was kept; writes go through the loaders, the generator or "
                "ingestion (connect(read_only=False))."
            )


def _open_spark(settings: DatabaseSettings, read_only: bool, timeout_s: float, config_path: Path, check: bool):
    from workbench.db.spark import open_spark  # pyspark and its client load only for Spark URLs

    return open_spark(settings, read_only, timeout_s, config_path, check)


# how connect() opens each dialect not reached through SQLAlchemy: a Database of its own
_SESSION_OPENERS = {"spark": _open_spark}
# how connect() opens each dialect reached through SQLAlchemy (the Dialect's name, as in DIALECTS):
# driver arguments, read-only analysis sessions and the statement timeout
_ENGINE_BUILDERS = {"duckdb": _duckdb_engine, "postgresql": _postgresql_engine}

_CONNECTION_LOST = (
    "server closed the connection",
    "terminating connection",
    "connection is lost",
    "connection is closed",
    "consuming input failed",
    "ssl syscall error",
)


# lines of an engine's message that say what was meant: DuckDB's "Did you mean …?" and "Candidate
# bindings: …", PostgreSQL's "HINT:  Perhaps you meant …"
_ENGINE_HINT = re.compile(r"^(Did you mean .*|Candidate bindings: .*|HINT:\s+.*)$", re.MULTILINE)
# SQLAlchemy's "(Background on this error at: https://sqlalche.me/…)" tail
_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")
_MISSING_BIND = re.compile(r"A value is required for bind parameter '([^']+)'")


def explain_error(exc: BaseException, db: SqlDatabase | None = None) -> DatabaseError:
    """Turn a driver error into one sentence naming what to fix, keeping the engine's own hint
    (a table or column it suggests); secrets are masked."""
    original = getattr(exc, "orig", None) or exc
    text = _BACKGROUND.sub("", redact(str(original))).strip()
    message = text.splitlines()[0] if text else type(original).__name__
    if hint := _ENGINE_HINT.search(text):
        message += " " + re.sub(r"^HINT:\s+", "", hint.group(1))
    where = db.settings.display_url if db is not None else "the database"
    low = message.lower()
    if missing := _MISSING_BIND.search(message):
        name = missing.group(1)
        return DatabaseError(
            f"The query has a placeholder :{name} with no value: pass one, e.g. db.sql(query, {name}=…)."
        )
    if "could not open file" in low or "conflicting lock" in low or "could not set lock" in low:
        return DatabaseError(
            f"The DuckDB file {where} is locked by another process (a notebook, a dashboard or a writer): close it and retry. ({message})"
        )
    if "password authentication failed" in low or "no password supplied" in low:
        return DatabaseError(
            f"The database {where} rejected the credentials: set WORKBENCH_DATABASE_PASSWORD in the environment or .env. ({message})"
        )
    if "does not exist" in low and "database" in low and "relation" not in low and "table" not in low:
        return DatabaseError(
            f"The database named in {where} does not exist: create it or fix WORKBENCH_DATABASE_URL. ({message})"
        )
    if "connection refused" in low or "could not connect" in low or "connection failed" in low:
        return DatabaseError(
            f"Cannot reach the database {where}: start the server or fix WORKBENCH_DATABASE_URL. ({message})"
        )
    if any(lost in low for lost in _CONNECTION_LOST):
        return DatabaseError(
            f"The connection to the database {where} was lost (the server stopped or restarted): check that it runs, then run again. ({message})"
        )
    if (
        ("relation" in low and "does not exist" in low)
        or ("table with name" in low and "does not exist" in low)
        or "table_or_view_not_found" in low
    ):
        return DatabaseError(
            f"A table the query reads is missing from {where}: load data with `workbench load` or `workbench generate`, or fix the SQL. ({message})"
        )
    if "cannot insert multiple commands" in low:
        return DatabaseError(
            f"Send one statement at a time to {where}: an analysis session runs each call as one prepared statement. ({message})"
        )
    if "file system operations are disabled" in low or "configuration has been locked" in low:
        return DatabaseError(
            f"Sessions on {where} read and write their own tables only: files (COPY … TO/FROM, read_csv, glob), "
            f"ATTACH, extensions and session settings are off. ({message})"
        )
    if "read-only" in low or "read only" in low:
        return DatabaseError(
            f"This analysis session on {where} is read-only: writes go through the loaders, the generator or ingestion. ({message})"
        )
    if "statement timeout" in low or "canceling statement" in low or "interrupt" in low:
        return timeout_error(db, message)
    return DatabaseError(f"The database {where} reported an error: {message}")


def timeout_error(db: Any, message: str) -> DatabaseError:
    """The sentence for a query stopped by ``db``'s statement timeout (``message``: the engine's words)."""
    where = db.settings.display_url if db is not None else "the database"
    limit = f" ({db.statement_timeout_s:g} s)" if db is not None else ""
    setting = (
        f"database.statement_timeout_seconds in {db.config_path}"
        if db is not None
        else "database.statement_timeout_seconds"
    )
    return DatabaseError(
        f"The query ran longer than the statement timeout{limit} on {where} and was stopped: narrow it or raise "
        f"{setting} (in Python: connect(statement_timeout_s=…)). ({message})"
    )
