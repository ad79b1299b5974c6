"""Every difference between the SQL engines the workbench runs on: DuckDB, PostgreSQL, Spark SQL.

Each engine is one frozen :class:`Dialect` in :data:`DIALECTS`; code asks ``db.dialect.<fact>``
(or calls one of its SQL-snippet methods) instead of comparing engine names, so adding a dialect
is one entry here. The rest of this module is what all dialects share: the one rule for a plain
SQL identifier (:data:`IDENTIFIER`) and the transpilation of the workbench's SQL into another
engine's dialect (:func:`transpile`).

The SQL the workbench writes (experiment queries, ``sql/``) is the text DuckDB and PostgreSQL
both run, read by sqlglot as :data:`SOURCE_DIALECT`; engines that need other text (Spark SQL)
transpile it. Opening a session (driver arguments, read-only mode, statement timeout) is the
driver's business: ``_ENGINE_BUILDERS`` in :mod:`workbench.db.connection` for engines reached
through SQLAlchemy, :func:`workbench.db.spark.open_spark` for Spark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

# A plain SQL identifier (table, column, schema, variable name): letters, digits and _, not
# starting with a digit, at most 63 characters (PostgreSQL cuts identifiers at 63). \Z, not $:
# $ also matches before a trailing newline, which would let "name\n" through.
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
# The same in lower case only: names spliced in unquoted that must mean the same on every engine
# (PostgreSQL folds unquoted names to lower case, DuckDB keeps them).
LOWER_CASE_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")

# sqlglot's name for the text the workbench writes (DuckDB and PostgreSQL both run it)
SOURCE_DIALECT = "postgres"


@dataclass(frozen=True)
class Dialect:
    """What differs on one SQL engine. Facts are fields; SQL that differs is built by the methods."""

    name: str  # the workbench's name, the key of DIALECTS and SQLAlchemy's backend name: duckdb, postgresql, spark
    title: str  # its name in messages
    sqlglot: str  # sqlglot's name for it (transpile(), parsing)
    # -- URLs and sessions (workbench.db.settings, workbench.db.connection)
    url_example: str | None  # a URL naming it, for messages; None: connect() does not open it
    url_drivername: str | None  # the SQLAlchemy driver every URL is normalised to; None: the URL's own
    url_drivers: tuple[str, ...]  # drivers a URL may name (normalised to url_drivername); empty: any
    embedded: (
        bool  # an in-process file (path resolved, no password) rather than a server (password from the environment)
    )
    server_side_cursors: bool  # row-returning queries stream through a server-side cursor, so only the rows kept travel
    # -- SQL text
    identifier_quote: str  # the character that quotes an identifier
    double_type: str  # the 8-byte float type in CAST
    regexp_full_match: str | None  # "{expression}" fully matches '{pattern}'; None: not needed (read-only engine)
    set_local: bool  # SET LOCAL exists (a setting ends with the transaction); otherwise RESET it afterwards
    folds_to_lower_case: (
        bool  # unquoted identifiers are folded to lower case (PostgreSQL), so a quoted name must be lower case
    )
    drop_table_cascade: bool  # DROP TABLE takes CASCADE (drops what depends on the table)
    serial_sequences: bool  # SERIAL columns draw from a sequence that rows written with explicit ids do not advance
    on_commit_drop: bool  # CREATE TEMP TABLE … ON COMMIT DROP: temporary tables drop themselves at commit
    # -- bulk writes (workbench.db.bulk_write)
    bulk_load: (
        Literal["arrow", "copy", "catalog"] | None
    )  # Arrow scan into the table, COPY … FROM STDIN (FORMAT csv), or Parquet-backed catalog tables (Spark); None: not writable
    autocommit_driver: (
        bool  # the driver connection autocommits: a write transaction begins, commits and rolls back on it
    )
    # ANALYZE written tables before commit: the planner estimates from table statistics (without
    # them joins plan as nested loops), so an incremental update also stages its units in a table
    # (CTEs get default estimates: 200 rows for an aggregate, planned as merge joins sorted on disk)
    analyze_after_write: bool
    cheap_index_updates: bool  # an index on an often-updated column is cheap; DuckDB rewrites the row and its index entries on each update
    # an aggregate: "{value}" (one of the "{order}" columns, a comma-separated list) of the row whose "{order}" is least,
    # in the text the workbench writes; None: the engine has none (a window function ranks the rows)
    first_by: str | None = None
    # constant date bounds on each metric scan (pushed into date partitions and Parquet row groups);
    # False on DuckDB: it takes them as 20% selective and then builds its hash join on the whole
    # metric table instead of on the units (50M rows: 6.2 s with them, 3.3 s without)
    scan_date_bounds: bool = True
    # the per-unit relations join and group on each unit's row number (ROW_NUMBER() OVER () over a
    # materialized CTE) instead of its id, often a long string: cheaper hashing; False on Spark, where
    # a window without a partition gathers every unit in one task
    numbered_units: bool = True
    # an aggregate: the value of rank ceil(n·{q}) (1-based, ascending, n·{q} in doubles) among the
    # "{value}" rows, the nearest-rank percentile a percentile cap takes, used for {q} ≥ 0.5 (a
    # DOUBLE literal); None: a window ranks the values (ROW_NUMBER over all of them, then the one at
    # that rank)
    rank_value: str | None = None
    # URL schemes that name this dialect with a driver: "sc" (Spark Connect's own scheme) -> "spark+connect"
    url_aliases: tuple[tuple[str, str], ...] = ()
    # where an incremental refresh keeps its state: "file" (a state file attached writable beside the
    # read-only database file), "schema" (a schema of the same database, written in one transaction),
    # "tables" (a database of the catalog without transactions: each run writes a new generation of
    # the state table, then appends its bookkeeping row, the one step that publishes it); None: not supported
    state_store: Literal["file", "schema", "tables"] | None = None
    # an aggregate: the "{value}" of a group's rows as an array sorted ascending (NULLs kept on DuckDB
    # and PostgreSQL, skipped by Spark's COLLECT_LIST: equal either way for two sets of the same rows)
    sorted_array: str = "ARRAY_AGG({value} ORDER BY {value})"

    @property
    def state_in_generations(self) -> bool:
        """The incremental state is kept in generations: a store without transactions (Spark's catalog)."""
        return self.state_store == "tables"

    def quote(self, name: str) -> str:
        """``name`` as a quoted identifier (any text; the quote character doubled inside)."""
        q = self.identifier_quote
        return q + name.replace(q, q + q) + q

    def full_match(self, expression: str, pattern: str) -> str:
        """A condition: the text ``expression`` matches the regular expression ``pattern`` whole
        (``pattern`` anchored with ^…$; it is written as a string literal)."""
        if self.regexp_full_match is None:
            raise NotImplementedError(f"{self.name}: no regular-expression match is defined for this dialect")
        return self.regexp_full_match.format(expression=expression, pattern=pattern.replace("'", "''"))

    def set_search_path(self, schema: str, local: bool = True) -> str:
        """The statement pointing unqualified names at ``schema`` (a validated identifier).

        ``local``: only until the transaction ends, where the engine can (:attr:`set_local`);
        elsewhere run :meth:`reset_search_path` afterwards."""
        if (
            self.folds_to_lower_case
        ):  # quoted lower case: what the engine makes of a bare name, keywords (e.g. user) included
            return f'SET {"LOCAL " if local and self.set_local else ""}search_path TO "{schema.lower()}"'
        return f"SET search_path = '{schema}'"

    def reset_search_path(self) -> str | None:
        """The statement undoing :meth:`set_search_path` (``None``: it ended with the transaction)."""
        return None if self.set_local else "RESET search_path"

    def drop_table(self, table: str, cascade: bool = False) -> str:
        """``DROP TABLE IF EXISTS table``; with ``cascade``, also what depends on it where the engine can."""
        return f"DROP TABLE IF EXISTS {table}{' CASCADE' if cascade and self.drop_table_cascade else ''}"

    def sequence_reset(self, table: str, column: str = "id") -> str | None:
        """After rows were written with explicit ``column`` values: the statement moving the
        column's sequence past them (``None``: the engine has no such sequence)."""
        if not self.serial_sequences:
            return None
        return f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), GREATEST((SELECT max({column}) FROM {table}), 1))"


DUCKDB = Dialect(
    name="duckdb",
    title="DuckDB",
    sqlglot="duckdb",
    url_example="duckdb:///path/to/file.duckdb",
    url_drivername=None,
    url_drivers=(),
    embedded=True,
    server_side_cursors=False,
    identifier_quote='"',
    double_type="DOUBLE",
    regexp_full_match="regexp_full_match({expression}, '{pattern}')",
    set_local=False,
    folds_to_lower_case=False,
    drop_table_cascade=False,
    serial_sequences=False,
    on_commit_drop=False,
    bulk_load="arrow",
    autocommit_driver=True,
    analyze_after_write=False,
    cheap_index_updates=False,
    # one MIN over a struct of the order columns (its fields named after them; the value is one of
    # them): at 50M rows a third faster than arg_min with a row() key
    first_by="struct_extract(MIN(struct_pack({order})), '{value}')",
    scan_date_bounds=False,
    # DuckDB's discrete quantile of a DOUBLE q is the value at index max(1, n - floor(n - n·q)) - 1;
    # for q ≥ 0.5, n - n·q is exact (Sterbenz), so that is ceil(n·q) - 1, the window's rank. At 50M
    # rows (a capped metric among 7) the overall analysis took 1.87 s instead of 1.94 s (best of 6)
    rank_value="quantile_disc({value}, {q})",
    state_store="file",
)
POSTGRESQL = Dialect(
    name="postgresql",
    title="PostgreSQL",
    sqlglot="postgres",
    url_example="postgresql+psycopg://user@host:5432/dbname",
    url_drivername="postgresql+psycopg",
    url_drivers=("psycopg", "postgresql", "psycopg2"),
    embedded=False,
    server_side_cursors=True,
    identifier_quote='"',
    double_type="DOUBLE PRECISION",
    regexp_full_match="{expression} ~ '{pattern}'",
    set_local=True,
    folds_to_lower_case=True,
    drop_table_cascade=True,
    serial_sequences=True,
    on_commit_drop=True,
    bulk_load="copy",
    autocommit_driver=False,
    analyze_after_write=True,
    cheap_index_updates=True,
    # percentile_disc takes the row K = ceil(N·q) of the sorted values, N·q in float8 (PostgreSQL's
    # orderedsetaggs.c): the window's rank for every q. The statistics from an incremental state at
    # 10M rows took 0.29 s instead of 0.33 s
    rank_value="percentile_disc({q}) WITHIN GROUP (ORDER BY {value})",
    state_store="schema",
)
SPARK = Dialect(
    name="spark",
    title="Spark SQL",
    sqlglot="spark",
    url_example="sc://host:15002 (Spark Connect) or spark+local:// (in-process)",
    url_drivername=None,
    url_drivers=("connect", "local"),
    embedded=False,
    server_side_cursors=False,
    identifier_quote="`",
    double_type="DOUBLE",
    regexp_full_match=None,
    set_local=False,
    folds_to_lower_case=False,
    drop_table_cascade=False,
    serial_sequences=False,
    on_commit_drop=False,
    bulk_load="catalog",
    autocommit_driver=False,
    analyze_after_write=False,
    cheap_index_updates=False,
    first_by="min_by({value}, struct({order}))",  # transpiled as written
    numbered_units=False,
    url_aliases=(("sc", "spark+connect"),),
    state_store="tables",
    sorted_array="SORT_ARRAY(COLLECT_LIST({value}))",  # transpiled as written; ARRAY_AGG's ORDER BY would be lost
)
DIALECTS: dict[str, Dialect] = {d.name: d for d in (DUCKDB, POSTGRESQL, SPARK)}


def transpile(sql: str, dialect: str | Dialect, params: dict[str, Any] | None = None) -> str:
    """``sql`` (DuckDB/PostgreSQL text) in ``dialect`` (a :class:`Dialect` or a sqlglot name:
    ``spark``, ``bigquery``, ``snowflake``, ``trino``, …); with ``params`` the ``:name``
    placeholders become typed literals built by sqlglot (for engines without bound parameters,
    e.g. Spark SQL), never string concatenation."""
    import sqlglot
    from sqlglot import exp

    target = dialect.sqlglot if isinstance(dialect, Dialect) else dialect
    tree = sqlglot.parse_one(sql, read=SOURCE_DIALECT)
    if params is not None:

        def literal(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Placeholder) and node.name:
                if node.name not in params:
                    raise KeyError(f"no value for the parameter :{node.name}")
                return _literal(params[node.name])
            return node

        tree = tree.transform(literal)
    return tree.sql(dialect=target)


def _literal(value: Any):
    import datetime as dt

    from sqlglot import exp

    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(repr(value) if isinstance(value, float) else value)
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    return exp.Literal.string(str(value))
